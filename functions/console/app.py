"""The web console: its page, script and style (static/) and its sign-in settings, under /app/."""

from pathlib import Path

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from crm.api import console
from crm.platform.http import build_resolver
from crm.platform.observability import logger, metrics, tracer
from crm.platform.settings import get_settings

app = build_resolver()
app.include_router(
    console.build_router(
        Path(__file__).parent / "static", console.ConsoleConfig.from_settings(get_settings())
    )
)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
