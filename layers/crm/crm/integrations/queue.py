"""The delivery queue port's SQS adapter: delivery messages (delayed for a retry), the dead-letter queue."""

import json
from typing import Any

from botocore.exceptions import ClientError

from crm.platform import aws, clock
from crm.platform.errors import RetryableError


class SqsDeliveryQueue:
    def __init__(self, queue_url: str, dead_letter_queue_url: str) -> None:
        self.queue_url = queue_url
        self.dead_letter_queue_url = dead_letter_queue_url

    def send(self, message: dict[str, Any], delay_seconds: int = 0) -> None:
        self._send(self.queue_url, message, delay_seconds, {})

    def dead_letter(self, message: dict[str, Any], reason: str) -> None:
        attributes = {"failure_reason": reason[:1000], "failed_at": clock.isoformat(clock.now())}
        self._send(self.dead_letter_queue_url, message, 0, attributes)

    def _send(self, url: str, message: dict[str, Any], delay: int, attributes: dict[str, str]) -> None:
        if not url:
            raise RetryableError("No webhook delivery queue is configured")
        try:
            aws.client("sqs").send_message(
                QueueUrl=url,
                MessageBody=json.dumps(message, default=str),
                DelaySeconds=max(0, min(900, delay)),
                MessageAttributes={
                    k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()
                },
            )
        except ClientError as exc:
            raise RetryableError("The webhook delivery could not be queued; try again") from exc
