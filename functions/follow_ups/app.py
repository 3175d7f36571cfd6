"""Every minute: send the reminders, SLA escalations and nurture steps that have come due (once each)."""

from aws_lambda_powertools.utilities.typing import LambdaContext
from crm import bootstrap
from crm.platform.observability import logger, metrics, tracer


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    report = bootstrap.follow_up_scheduler().run()
    metrics.add_metric(name="FollowUpsFired", unit="Count", value=report.fired)
    metrics.add_metric(name="FollowUpsFailed", unit="Count", value=report.failed)
    return {name: vars(source) for name, source in report.sources.items()}
