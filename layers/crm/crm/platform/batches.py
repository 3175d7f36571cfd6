"""The one way this system processes a batch from a queue or a stream (Powertools BatchProcessor).

Failed records are logged with their traceback through Powertools' JSON logger. A queue batch whose every
message failed is reported like any partial failure, so each message keeps its own retry count and
backoff (`crm.platform.queues.consume`); a stream batch whose every record failed raises, so the event
source mapping's bisect and retry rules apply. Records stay Powertools' data classes: a job body that is
not a valid job must reach `consume`, which dead-letters it at once with the reason.
"""

import logging
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from crm.platform.observability import logger
from crm.platform.queues import DeadLetterPolicy, consume
from crm.platform.settings import get_settings


def batch_processor(event_type: EventType) -> BatchProcessor:
    return BatchProcessor(
        event_type=event_type,
        logger=logging.getLogger(logger.name),
        raise_on_entire_batch_failure=event_type is EventType.DynamoDBStreams,
    )


def process_jobs(
    event: dict[str, Any], context: LambdaContext, handle_job: Callable[[dict[str, Any]], None]
) -> PartialItemFailureResponse:
    """An SQS job queue's batch: `handle_job` on each message's JSON body, failures as `consume` says."""
    settings = get_settings()
    policy = DeadLetterPolicy(
        settings.dead_letter_queue_url, settings.max_receive_count, settings.retry_base_seconds
    )

    def record_handler(record: SQSRecord) -> None:
        consume(record, handle_job, policy)

    return process_partial_response(
        # A processor per batch: it holds the batch's results, and it costs nothing to make.
        event=event,
        record_handler=record_handler,
        processor=batch_processor(EventType.SQS),
        context=context,
    )
