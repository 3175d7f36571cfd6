"""Assignment jobs from the assignment queue: one lead each, assigned by crm.assignment.service."""

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from crm import bootstrap
from crm.assignment.routing import AssignmentJob
from crm.platform import queues
from crm.platform.observability import logger, metrics, tracer
from crm.platform.settings import get_settings

# A batch whose every message failed is reported like any partial failure, not raised as an error.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


def assign(body: dict[str, Any]) -> None:
    job = queues.parse_job(AssignmentJob, body)
    bootstrap.assignment_service().assign(job.lead_id, job.trigger)


def record_handler(record: SQSRecord) -> None:
    settings = get_settings()
    policy = queues.DeadLetterPolicy(
        settings.dead_letter_queue_url, settings.max_receive_count, settings.retry_base_seconds
    )
    queues.consume(record, assign, policy)


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict, context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
