"""Outbound webhook deliveries: an event from the lead-events bus (its rule) is fanned out to one delivery
message per subscription that wants it; each delivery message (SQS) is POSTed, signed, and retried later
with backoff or dead-lettered (crm.integrations.webhooks)."""

import json
from typing import Any

from aws_lambda_powertools.utilities.batch import EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from crm import bootstrap
from crm.platform.batches import batch_processor
from crm.platform.observability import logger, metrics, tracer

processor = batch_processor(EventType.SQS)


def deliver(record: SQSRecord) -> None:
    outcome = bootstrap.webhook_service().deliver(json.loads(record.body))
    logger.info("Webhook delivery", extra={"outcome": outcome})


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if "detail-type" in event:  # the bus rule: one domain event
        return {"deliveries": bootstrap.webhook_service().fan_out(event)}
    response = process_partial_response(
        event=event, record_handler=deliver, processor=processor, context=context
    )
    return dict(response)
