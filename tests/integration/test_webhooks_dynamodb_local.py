"""Webhook deliveries against Amazon's DynamoDB Local: concurrent deliveries of one event (a duplicate SQS
message, the bus delivering twice) POST it once; a delivered event stays delivered; the failure clock."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest
from crm.integrations.repository import WebhookRepository
from crm.integrations.webhooks import Attempt, SubscriptionState, WebhookService
from crm.platform.errors import RetryableError, VersionConflict

pytestmark = pytest.mark.ddblocal


class SlowReceiver:
    """Counts POSTs; each takes a moment, so concurrent senders overlap."""

    def __init__(self) -> None:
        self.posts = 0
        self.lock = threading.Lock()

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> Attempt:
        with self.lock:
            self.posts += 1
        time.sleep(0.2)
        return Attempt(200, 200)


class NoQueue:
    def send(self, message: dict[str, Any], delay_seconds: int = 0) -> None:
        raise AssertionError("nothing to retry")

    def dead_letter(self, message: dict[str, Any], reason: str) -> None:
        raise AssertionError("nothing to dead-letter")


def test_eight_concurrent_deliveries_of_one_event_post_it_once(local_aws: dict[str, Any]) -> None:
    receiver = SlowReceiver()
    store = WebhookRepository(local_aws["table"], client=local_aws["dynamodb"])
    webhooks = WebhookService(
        store, receiver, NoQueue(), allow_loopback=False, retry_base_seconds=1, notify_owner=lambda _s: None
    )
    subscription = webhooks.create("https://hooks.example.com/x", ["lead.captured"], None, "user:a", None)
    message = {
        "subscription_id": subscription.id,
        "event": {
            "source": "leadflow",
            "detail-type": "lead.captured",
            "detail": {"id": "evt-1", "lead_id": "L"},
        },
        "attempt": 1,
        "first_at": "2026-01-01T00:00:00Z",
    }

    def deliver() -> str:
        try:
            return webhooks.deliver(message)
        except RetryableError:
            return "busy"  # another sender holds the lease: SQS would try this message again later

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(lambda _: deliver(), range(8)))

    assert receiver.posts == 1
    assert outcomes.count("delivered") == 1
    assert set(outcomes) <= {"delivered", "busy", "duplicate"}
    # Redelivered later (after the lease): still not sent again.
    assert webhooks.deliver(message) == "duplicate" and receiver.posts == 1
    [attempt] = webhooks.deliveries(subscription.id)
    assert (attempt["event_id"], attempt["state"], attempt["status_code"]) == ("evt-1", "delivered", 200)


def test_failing_since_is_set_once_and_cleared_by_a_success_and_edits_are_versioned(
    local_aws: dict[str, Any],
) -> None:
    store = WebhookRepository(local_aws["table"], client=local_aws["dynamodb"])
    webhooks = WebhookService(
        store,
        SlowReceiver(),
        NoQueue(),
        allow_loopback=False,
        retry_base_seconds=1,
        notify_owner=lambda _s: None,
    )
    subscription = webhooks.create("https://hooks.example.com/y", ["lead.converted"], None, "user:a", None)
    first, later = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC)
    store.mark_failing(subscription.id, first)
    store.mark_failing(subscription.id, later)
    assert webhooks.get(subscription.id).failing_since == first
    store.mark_succeeding(subscription.id)
    assert webhooks.get(subscription.id).failing_since is None

    # Two admins pausing from the same read: one wins, the other is told it changed.
    current = webhooks.get(subscription.id)
    store.replace(current.model_copy(update={"state": SubscriptionState.PAUSED, "version": 2}), 1)
    with pytest.raises(VersionConflict):
        store.replace(current.model_copy(update={"description": "x", "version": 2}), 1)
