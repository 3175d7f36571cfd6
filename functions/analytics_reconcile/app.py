"""Nightly: recount each day since the last reconciled one (a checkpoint; yesterday on the first run, at most
31 days) from the leads and report any drift (log, metric, stored result).

An event naming a day reconciles that day only, and leaves the checkpoint: {"day": "2026-11-24"}.
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
    day = requested_day(event)
    service = bootstrap.analytics_service()
    results = [service.reconcile(day)] if day is not None else service.reconcile_missed()
    return {
        "days": [
            {"day": result.day.isoformat(), "leads": result.leads, "drift": len(result.drift)}
            for result in results
        ]
    }
