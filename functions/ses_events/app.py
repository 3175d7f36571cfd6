"""SES email events (opens, clicks, bounces, complaints, deliveries) from EventBridge, as lead activities."""

from aws_lambda_powertools.utilities.typing import LambdaContext
from crm import bootstrap
from crm.platform.observability import logger, metrics, tracer


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    recorded = bootstrap.email_event_recorder().record(event)
    if recorded:
        metrics.add_metric(name="EmailEventsRecorded", unit="Count", value=1)
    return {"recorded": recorded}
