"""CSV exports of leads: the `/exports` routes (JWT authorizer; managers and admins) and the export worker
(one SQS message is one multipart part of an export's file to write; it queues the next).
"""

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from crm import bootstrap
from crm.api import exports
from crm.exports.model import ExportPage
from crm.platform.batches import process_jobs
from crm.platform.http import build_resolver
from crm.platform.observability import logger, metrics, tracer
from crm.platform.queues import parse_job

app = build_resolver()
app.include_router(exports.build_router())


def handle_page(body: dict[str, Any]) -> None:
    bootstrap.export_service().process_page(parse_job(ExportPage, body))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if "Records" in event:  # the export queue
        return dict(process_jobs(event, context, handle_page))
    return app.resolve(event, context)
