"""Every few minutes: leads waiting for a rep go back on the assignment queue (someone may be free now)."""

from aws_lambda_powertools.utilities.typing import LambdaContext
from crm import bootstrap
from crm.assignment.choice import Trigger
from crm.platform.observability import logger, metrics, tracer


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    requeued = bootstrap.routing_service().requeue_waiting(Trigger.SWEEP)
    metrics.add_metric(name="WaitingLeadsRequeued", unit="Count", value=requeued)
    return {"requeued": requeued}
