"""A person's data on request: the `/privacy/*` routes (JWT authorizer; admins), the erasure worker (one
SQS message is one lead of an erasure job to erase) and the daily retention run (`{"action": "retention"}`).
"""

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from crm import bootstrap
from crm.api import privacy
from crm.platform.batches import process_jobs
from crm.platform.http import build_resolver
from crm.platform.observability import logger, metrics, tracer
from crm.platform.queues import parse_job
from crm.platform.settings import get_settings
from crm.privacy.model import ErasurePage

RETENTION = "retention"
app = build_resolver()
app.include_router(privacy.build_router())


def handle_page(body: dict[str, Any]) -> None:
    bootstrap.privacy_service().process_page(parse_job(ErasurePage, body))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if "Records" in event:  # the erasure queue
        return dict(process_jobs(event, context, handle_page))
    if event.get("action") == RETENTION:
        job = bootstrap.privacy_service().start_retention(get_settings().inactive_lead_retention_days)
        return {"job_id": job.id if job else None, "leads": len(job.lead_ids) if job else 0}
    return app.resolve(event, context)
