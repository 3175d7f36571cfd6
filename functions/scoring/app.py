"""Scoring: the table's stream (lead inserts and changes, new activities, rule changes) rescores leads.

The event source mapping's filter criteria drop this function's own score writes; each record's handler is
idempotent (a redelivered record rescores to the same result and writes nothing).
"""

from aws_lambda_powertools.utilities.batch import EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from crm import bootstrap
from crm.platform.batches import batch_processor
from crm.platform.budget import record_budget, time_budget
from crm.platform.observability import logger, metrics, tracer
from crm.scoring.service import StreamBatch

processor = batch_processor(EventType.DynamoDBStreams)


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict, context: LambdaContext) -> PartialItemFailureResponse:
    batch = StreamBatch(bootstrap.scoring_service(), bootstrap.rescore_service())

    def handle(record: DynamoDBRecord) -> None:
        # Each record has its own time budget: one slow lead fails alone, not the batch by a timeout
        with time_budget(record_budget(context.get_remaining_time_in_millis())):
            batch.handle_record(record.raw_event)

    return process_partial_response(event=event, record_handler=handle, processor=processor, context=context)
