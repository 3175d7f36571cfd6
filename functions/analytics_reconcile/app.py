"""Nightly: recount yesterday's analytics from the leads and report any drift (log, metric, stored result).

The scheduled event may name another day to check: {"day": "2026-11-24"}.
"""

from datetime import date

from aws_lambda_powertools.utilities.typing import LambdaContext
from crm import bootstrap
from crm.platform.errors import InvalidInput
from crm.platform.observability import logger, metrics, tracer


def requested_day(event: dict) -> date | None:
    value = event.get("day") if isinstance(event, dict) else None
    if value is None:
        return None
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise InvalidInput.single("day", "must be a date: YYYY-MM-DD") from None


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    result = bootstrap.analytics_service().reconcile(requested_day(event))
    return {"day": result.day.isoformat(), "leads": result.leads, "drift": len(result.drift)}
