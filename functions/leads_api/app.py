"""Authenticated system API for leads (JWT authorizer in front)."""

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from crm import capture_http, leads_http
from crm.auth import principal_from_event
from crm.http import build_resolver
from crm.observability import logger, metrics, tracer

app = build_resolver()


@app.post("/leads")
def create_lead() -> Response[str]:
    event = app.current_event.raw_event
    return capture_http.create_lead(event, principal_from_event(event), app.lambda_context)


@app.get("/leads/<lead_id>")
def get_lead(lead_id: str) -> Response[str]:
    return leads_http.get_lead(lead_id, principal_from_event(app.current_event.raw_event))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
