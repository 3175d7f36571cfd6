"""Logger, tracer and metrics, configured once; service name and namespace come from POWERTOOLS_* vars."""

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger()
tracer = Tracer()
metrics = Metrics()
