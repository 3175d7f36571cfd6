"""Assignment jobs from the assignment queue: one lead each, assigned by crm.assignment.service."""

from typing import Any

from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.typing import LambdaContext
from crm import bootstrap
from crm.assignment.routing import AssignmentJob
from crm.platform.batches import process_jobs
from crm.platform.observability import logger, metrics, tracer
from crm.platform.queues import parse_job


def assign(body: dict[str, Any]) -> None:
    job = parse_job(AssignmentJob, body)
    bootstrap.assignment_service().assign(job.lead_id, job.trigger)


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict, context: LambdaContext) -> PartialItemFailureResponse:
    return process_jobs(event, context, assign)
