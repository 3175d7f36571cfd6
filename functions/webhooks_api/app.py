"""Outbound webhook subscriptions API (`/webhook-subscriptions`, admins). Behind the JWT authorizer."""

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from crm.api import webhooks
from crm.platform.http import build_resolver
from crm.platform.observability import logger, metrics, tracer

app = build_resolver()
app.include_router(webhooks.build_router())


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
