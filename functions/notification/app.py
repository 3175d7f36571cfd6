"""Notification jobs from the notification queue: emails through SES, at most once per (lead, event)."""

from typing import Any

from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.typing import LambdaContext
from crm import bootstrap
from crm.notifications.messages import NotificationRequest
from crm.platform.batches import process_jobs
from crm.platform.observability import logger, metrics, tracer
from crm.platform.queues import parse_job


def deliver(body: dict[str, Any]) -> None:
    sent = bootstrap.notification_service().deliver(parse_job(NotificationRequest, body))
    if sent:
        metrics.add_metric(name="NotificationsSent", unit="Count", value=sent)


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict, context: LambdaContext) -> PartialItemFailureResponse:
    return process_jobs(event, context, deliver)
