"""Public lead capture: website forms, live chat and partner webhooks."""

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from crm import capture_http
from crm.http import build_resolver
from crm.observability import logger, metrics, tracer

app = build_resolver()


@app.post("/capture/form")
def capture_form() -> Response[str]:
    return capture_http.capture_form(app.current_event.raw_event, app.lambda_context)


@app.post("/capture/chat")
def capture_chat() -> Response[str]:
    return capture_http.capture_chat(app.current_event.raw_event, app.lambda_context)


@app.post("/webhooks/<partner>")
def partner_webhook(partner: str) -> Response[str]:
    return capture_http.capture_webhook(app.current_event.raw_event, partner, app.lambda_context)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
