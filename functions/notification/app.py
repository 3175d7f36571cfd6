"""Notification jobs from the notification queue: emails through SES, at most once per (lead, event)."""

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from crm import bootstrap
from crm.notifications.messages import NotificationRequest
from crm.platform import queues
from crm.platform.observability import logger, metrics, tracer
from crm.platform.settings import get_settings

# A batch whose every message failed is reported like any partial failure, not raised as an error.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def deliver(body: dict[str, Any]) -> None:
    sent = bootstrap.notification_service().deliver(queues.parse_job(NotificationRequest, body))
    if sent:
        metrics.add_metric(name="NotificationsSent", unit="Count", value=sent)


def record_handler(record: SQSRecord) -> None:
    settings = get_settings()
    policy = queues.DeadLetterPolicy(
        settings.dead_letter_queue_url, settings.max_receive_count, settings.retry_base_seconds
    )
    queues.consume(record, deliver, policy)


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict, context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
