"""Lead changes from the table's stream: every handler of crm.leads.changes, then the domain events
(crm.integrations.publisher), per record."""

from aws_lambda_powertools.utilities.batch import EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from crm import bootstrap
from crm.platform.batches import batch_processor
from crm.platform.observability import logger, metrics, tracer

processor = batch_processor(EventType.DynamoDBStreams)


def record_handler(record: DynamoDBRecord) -> None:
    bootstrap.lead_events_dispatcher().handle(record)
    publisher = bootstrap.domain_event_publisher()
    if publisher is not None:
        publisher.handle(record)


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict, context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
