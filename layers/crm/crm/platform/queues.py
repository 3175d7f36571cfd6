"""SQS, behind a small port: sending jobs, and how a queue consumer treats a job that fails.

Consumers (assignment, notifications) run under Powertools' BatchProcessor with ReportBatchItemFailures, so
one failed message never fails its batch. What happens to the failed one (`consume`):

- a transient failure (throttling, a conflict, anything unexpected) raises: the message comes back after a
  backoff that doubles with each receive (`ChangeMessageVisibility`: base, 2 x base, 4 x base ... <= 15 min);
- on its last allowed receive (the queue's maxReceiveCount) it is moved to the dead-letter queue by the
  consumer itself, with the reason as message attributes (`failure_reason`, `failure_type`,
  `receive_count`, `source_queue`, `failed_at`). Had the consumer crashed instead, SQS's redrive policy
  moves it on the next receive anyway, without the reason;
- a PermanentFailure (a message that is not a valid job, an unknown recipient, an email SES refuses)
  goes to the dead-letter queue at once, with its reason.

Redrive: `make redrive` locally; in AWS `aws sqs start-message-move-task --source-arn <DLQ arn>`.
"""

import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any, Protocol, TypeVar

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from botocore.exceptions import ClientError
from pydantic import BaseModel, ValidationError

from crm.platform import aws, clock
from crm.platform.errors import PermanentFailure, RetryableError
from crm.platform.observability import logger

MAX_VISIBILITY_SECONDS = 900
JobModel = TypeVar("JobModel", bound=BaseModel)
MAX_REASON_LENGTH = 1000


class MessagePublisher(Protocol):
    def send(self, queue_url: str, body: dict[str, Any]) -> None: ...

    def send_many(self, queue_url: str, bodies: list[dict[str, Any]]) -> None: ...


class SqsPublisher:
    """The real adapter. Failures become RetryableError (the caller's job is retried)."""

    def send(self, queue_url: str, body: dict[str, Any]) -> None:
        if not queue_url:
            raise RetryableError("No queue is configured for this job")
        try:
            aws.client("sqs").send_message(QueueUrl=queue_url, MessageBody=json.dumps(body, default=str))
        except ClientError as exc:
            raise RetryableError("The job could not be queued; try again") from exc

    def send_many(self, queue_url: str, bodies: list[dict[str, Any]]) -> None:
        if not queue_url:
            raise RetryableError("No queue is configured for this job")
        for start in range(0, len(bodies), 10):
            entries = [
                {"Id": str(index), "MessageBody": json.dumps(body, default=str)}
                for index, body in enumerate(bodies[start : start + 10])
            ]
            try:
                response = aws.client("sqs").send_message_batch(QueueUrl=queue_url, Entries=entries)
            except ClientError as exc:
                raise RetryableError("The jobs could not be queued; try again") from exc
            if response.get("Failed"):
                raise RetryableError(f"{len(response['Failed'])} job(s) could not be queued; try again")


@dataclass(frozen=True)
class DeadLetterPolicy:
    dead_letter_queue_url: str
    max_receive_count: int
    retry_base_seconds: int


def backoff_seconds(receive_count: int, base: int) -> int:
    """base x 2^(n-1), with up to 10 % jitter so a burst of failures does not return all at once."""
    delay = base * 2 ** max(receive_count - 1, 0)
    jitter = random.uniform(0, delay / 10) if delay else 0  # noqa: S311
    return int(min(MAX_VISIBILITY_SECONDS, delay + jitter))


@cache
def _queue_url(arn: str) -> str:
    _, _, _, _, account, name = arn.split(":", 5)
    url: str = aws.client("sqs").get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
    return url


def _reason(exc: BaseException) -> str:
    text = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return text[:MAX_REASON_LENGTH]


def dead_letter(record: SQSRecord, exc: BaseException, policy: DeadLetterPolicy) -> None:
    attributes = {
        "failure_reason": _reason(exc),
        "failure_type": type(exc).__name__,
        "receive_count": str(record.attributes.approximate_receive_count),
        "source_queue": record.event_source_arn,
        "failed_at": clock.isoformat(clock.now()),
    }
    aws.client("sqs").send_message(
        QueueUrl=policy.dead_letter_queue_url,
        MessageBody=record.body,
        MessageAttributes={k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()},
    )


def _delay_retry(record: SQSRecord, receive_count: int, policy: DeadLetterPolicy) -> None:
    delay = backoff_seconds(receive_count, policy.retry_base_seconds)
    try:
        aws.client("sqs").change_message_visibility(
            QueueUrl=_queue_url(record.event_source_arn),
            ReceiptHandle=record.receipt_handle,
            VisibilityTimeout=delay,
        )
    except (ClientError, ValueError) as exc:  # the queue's own visibility timeout applies instead
        logger.warning(
            "Could not delay the retry", extra={"message_id": record.message_id, "error": str(exc)}
        )


def _json_object(body: str) -> dict[str, Any]:
    try:
        value = json.loads(body)
    except ValueError:
        raise PermanentFailure("The message body is not JSON") from None
    if not isinstance(value, dict):
        raise PermanentFailure("The message body is not a JSON object")
    return value


def parse_job(model: type[JobModel], body: dict[str, Any]) -> JobModel:
    """The job a message carries; a message that is not one can never succeed (PermanentFailure)."""
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        fields = ", ".join(".".join(str(part) for part in error["loc"]) or "body" for error in exc.errors())
        raise PermanentFailure(f"The message is not a valid {model.__name__} (fields: {fields})") from None


def consume(record: SQSRecord, handle: Callable[[dict[str, Any]], None], policy: DeadLetterPolicy) -> None:
    """Run `handle` on the record's JSON body with the failure handling described in the module docstring."""
    receive_count = int(record.attributes.approximate_receive_count or 1)
    try:
        handle(_json_object(record.body))
    except PermanentFailure as exc:
        logger.warning("Job cannot succeed; dead-lettered", extra={"message_id": record.message_id})
        dead_letter(record, exc, policy)
    except Exception as exc:
        last_try = receive_count >= policy.max_receive_count
        logger.warning(
            "Job failed",
            extra={
                "message_id": record.message_id,
                "receive_count": receive_count,
                "error_type": type(exc).__name__,
                "last_try": last_try,
            },
        )
        if last_try and policy.dead_letter_queue_url:
            try:
                dead_letter(record, exc, policy)
            except ClientError:
                logger.exception("Dead-lettering failed; SQS's redrive policy will move the message")
                raise exc from None
            return
        _delay_retry(record, receive_count, policy)
        raise
