"""The rescore queue: where a rescore job's pages go (SQS in AWS, a list in unit tests and benchmarks)."""

import json
from typing import Any, Protocol

from botocore.exceptions import ClientError

from crm.platform import aws
from crm.platform.errors import RetryableError
from crm.scoring.rescoring import RescorePage

_BATCH = 10  # SendMessageBatch's limit


class RescoreQueue(Protocol):
    def send(self, pages: list[RescorePage]) -> None:
        """Enqueue every page or raise RetryableError (a page sent twice is harmless: it is idempotent)."""


class SqsRescoreQueue:
    def __init__(self, queue_url: str, client: Any = None) -> None:
        self.queue_url = queue_url
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = aws.client("sqs")
        return self._client

    def send(self, pages: list[RescorePage]) -> None:
        if not self.queue_url:
            raise RetryableError("RESCORE_QUEUE_URL is not configured")
        for start in range(0, len(pages), _BATCH):
            chunk = pages[start : start + _BATCH]
            entries = [
                {"Id": str(index), "MessageBody": page.model_dump_json(exclude_none=True)}
                for index, page in enumerate(chunk)
            ]
            try:
                response = self.client.send_message_batch(QueueUrl=self.queue_url, Entries=entries)
            except ClientError as exc:
                raise RetryableError("The rescore queue is unavailable; try again") from exc
            if response.get("Failed"):
                raise RetryableError(f"{len(response['Failed'])} rescore page(s) could not be enqueued")


class InMemoryRescoreQueue:
    """A queue in a list, for unit tests and the benchmark (which drains it with worker threads)."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    def send(self, pages: list[RescorePage]) -> None:
        self.messages.extend(page.model_dump_json(exclude_none=True) for page in pages)

    def take(self) -> RescorePage | None:
        try:
            body = self.messages.pop(0)  # atomic: worker threads may share one queue
        except IndexError:
            return None
        return RescorePage.model_validate(json.loads(body))
