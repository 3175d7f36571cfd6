"""Rescore worker: one SQS message is one page of leads to rescore (it enqueues the next page).

The daily schedule starts the decay pass here too: `{"action": "start_decay"}`; the hourly one the
reconciler (open leads the stream pipeline left unscored or unrouted): `{"action": "start_reconcile"}`.
"""

from typing import Any

from aws_lambda_powertools.utilities.batch import EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from crm import bootstrap
from crm.platform.batches import batch_processor
from crm.platform.observability import logger, metrics, tracer
from crm.scoring.rescoring import RescorePage

START_DECAY = "start_decay"
START_RECONCILE = "start_reconcile"
processor = batch_processor(EventType.SQS)


def handle_page(record: SQSRecord) -> None:
    bootstrap.rescore_service().process_page(RescorePage.model_validate_json(record.body))


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if event.get("action") == START_DECAY:
        job = bootstrap.rescore_service().start_decay_job()
        return {"job_id": job.job_id if job else None}
    if event.get("action") == START_RECONCILE:
        return {"job_id": bootstrap.rescore_service().start_reconcile_job().job_id}
    response = process_partial_response(
        event=event, record_handler=handle_page, processor=processor, context=context
    )
    return dict(response)
