"""CSV imports: the `/imports` routes (JWT authorizer; managers and admins), the upload's S3 event (it starts
the import) and the import worker (one SQS message is one chunk of the file; it queues the next).
"""

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.data_classes import S3Event
from aws_lambda_powertools.utilities.typing import LambdaContext
from crm import bootstrap
from crm.api import imports
from crm.imports.model import ImportChunk
from crm.platform.batches import process_jobs
from crm.platform.http import build_resolver
from crm.platform.observability import logger, metrics, tracer
from crm.platform.queues import parse_job

app = build_resolver()
app.include_router(imports.build_router())


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    records = event.get("Records") or []
    if records and records[0].get("eventSource") == "aws:s3":  # the upload arrived
        for record in S3Event(event).records:
            bootstrap.import_service().on_upload(record.s3.get_object.key, record.s3.get_object.size or 0)
        return {}
    if "Records" in event:  # the import queue: a chunk per message

        def handle_chunk(body: dict[str, Any]) -> None:
            chunk = parse_job(ImportChunk, body)
            bootstrap.import_service().process_chunk(chunk, context.get_remaining_time_in_millis)

        return dict(process_jobs(event, context, handle_chunk))
    return app.resolve(event, context)
