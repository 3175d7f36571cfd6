"""Outbound webhook rules with fakes: the SSRF guard, backoff, retry then dead-letter, dedupe, pausing."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from crm.integrations.webhooks import (
    Attempt,
    Subscription,
    SubscriptionState,
    WebhookService,
    check_url,
    is_public_address,
    retry_delay,
)
from crm.platform.errors import InvalidInput, VersionConflict
from crm.platform.signatures import sign


class FakeStore:
    def __init__(self) -> None:
        self.subscriptions: dict[str, Subscription] = {}
        self.delivered: set[tuple[str, str]] = set()
        self.attempts: list[tuple[str, str, dict[str, Any], str]] = []

    def create(self, subscription: Subscription) -> None:
        self.subscriptions[subscription.id] = subscription

    def get(self, subscription_id: str) -> Subscription | None:
        return self.subscriptions.get(subscription_id)

    def all(self) -> list[Subscription]:
        return list(self.subscriptions.values())

    def replace(self, subscription: Subscription, expected_version: int) -> None:
        if self.subscriptions[subscription.id].version != expected_version:
            raise VersionConflict("changed")
        self.subscriptions[subscription.id] = subscription

    def delete(self, subscription_id: str) -> bool:
        return self.subscriptions.pop(subscription_id, None) is not None

    def mark_failing(self, subscription_id: str, since: datetime) -> None:
        current = self.subscriptions[subscription_id]
        if current.failing_since is None:
            self.subscriptions[subscription_id] = current.model_copy(update={"failing_since": since})

    def mark_succeeding(self, subscription_id: str) -> None:
        current = self.subscriptions[subscription_id]
        self.subscriptions[subscription_id] = current.model_copy(update={"failing_since": None})

    def claim_delivery(self, subscription_id: str, event_id: str, event_type: str, lease: timedelta) -> bool:
        return (subscription_id, event_id) not in self.delivered

    def record_attempt(
        self, subscription_id: str, event_id: str, attempt: dict[str, Any], state: str
    ) -> None:
        self.attempts.append((subscription_id, event_id, attempt, state))
        if state == "delivered":
            self.delivered.add((subscription_id, event_id))

    def deliveries(self, subscription_id: str, limit: int) -> list[dict[str, Any]]:
        return []


class FakeSender:
    def __init__(self, *answers: Attempt) -> None:
        self.answers = list(answers)
        self.sent: list[tuple[str, bytes, dict[str, str]]] = []

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> Attempt:
        self.sent.append((url, body, headers))
        return self.answers.pop(0) if self.answers else Attempt(200, 5)


class FakeQueue:
    def __init__(self) -> None:
        self.sent: list[tuple[dict[str, Any], int]] = []
        self.dead: list[tuple[dict[str, Any], str]] = []

    def send(self, message: dict[str, Any], delay_seconds: int = 0) -> None:
        self.sent.append((message, delay_seconds))

    def dead_letter(self, message: dict[str, Any], reason: str) -> None:
        self.dead.append((message, reason))


class Clock:
    def __init__(self) -> None:
        self.moment = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.moment


def service(
    sender: FakeSender, clock: Clock | None = None
) -> tuple[WebhookService, FakeStore, FakeQueue, list]:
    store, queue = FakeStore(), FakeQueue()
    notified: list[Subscription] = []
    built = WebhookService(
        store,
        sender,
        queue,
        allow_loopback=False,
        retry_base_seconds=30,
        notify_owner=notified.append,
        now=clock or Clock(),
    )
    return built, store, queue, notified


EVENT = {"source": "leadflow", "detail-type": "lead.captured", "detail": {"id": "e1", "lead_id": "L1"}}


@pytest.mark.parametrize(
    "url",
    [
        "http://hooks.example.com/x",
        "https://127.0.0.1/x",
        "https://10.1.2.3/x",
        "https://192.168.0.1/x",
        "https://169.254.169.254/latest",
        "https://[::1]/x",
        "https://localhost/x",
        "https://user:pw@hooks.example.com/x",
        "ftp://hooks.example.com/x",
        "http://127.0.0.1:8080/x",  # only the local stack allows it
    ],
)
def test_urls_that_could_reach_inside_are_refused(url: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        check_url(url, allow_loopback=False)
    assert refused.value.problems[0].field == "url"


def test_https_to_a_public_host_is_allowed_and_loopback_http_only_locally() -> None:
    assert check_url("https://hooks.example.com/leadflow?x=1", allow_loopback=False)
    assert check_url("http://127.0.0.1:8080/x", allow_loopback=True)
    assert not is_public_address("10.0.0.1") and not is_public_address("::ffff:127.0.0.1")
    assert is_public_address("93.184.216.34")


def test_backoff_doubles_with_jitter_honours_retry_after_and_caps_at_15_minutes() -> None:
    for attempt, ceiling in ((1, 30), (2, 60), (3, 120), (10, 900)):
        delays = {retry_delay(attempt, 30, None) for _ in range(50)}
        assert min(delays) >= ceiling // 2 and max(delays) <= ceiling
    assert retry_delay(1, 30, 600) == 600
    assert retry_delay(1, 30, 5000) == 900


def test_a_delivery_is_signed_and_a_redelivered_event_is_not_sent_again() -> None:
    sender = FakeSender()
    webhooks, _, _, _ = service(sender)
    subscription = webhooks.create("https://hooks.example.com/x", ["lead.captured"], None, "user:a", None)

    assert webhooks.fan_out({**EVENT, "id": "eventbridge-id", "time": "t"}) == 1
    message = {
        "subscription_id": subscription.id,
        "event": EVENT,
        "attempt": 1,
        "first_at": "2026-03-01T12:00:00Z",
    }
    assert webhooks.deliver(message) == "delivered"
    assert webhooks.deliver(message) == "duplicate"

    [(_, body, headers)] = sender.sent
    timestamp = int(headers["X-Signature"].split(",")[0].removeprefix("t="))
    assert headers["X-Signature"].endswith(f"v1={sign(subscription.secret, timestamp, body)}")
    assert headers["X-Event-Id"] == "e1"


def test_5xx_and_429_are_retried_later_then_dead_lettered_after_24_hours() -> None:
    clock = Clock()
    sender = FakeSender(Attempt(503, 10), Attempt(429, 10, retry_after=120), Attempt(500, 10))
    webhooks, store, queue, notified = service(sender, clock)
    subscription = webhooks.create("https://hooks.example.com/x", ["lead.captured"], None, "user:a", "o@x.io")
    message = {
        "subscription_id": subscription.id,
        "event": EVENT,
        "attempt": 1,
        "first_at": "2026-03-01T12:00:00Z",
    }

    assert webhooks.deliver(message) == "retrying"
    retry, delay = queue.sent[-1]
    assert retry["attempt"] == 2 and 15 <= delay <= 30
    assert webhooks.deliver(retry) == "retrying"
    assert queue.sent[-1][1] == 120  # Retry-After
    clock.moment += timedelta(hours=24, minutes=1)
    assert webhooks.deliver(queue.sent[-1][0]) == "dead"
    assert queue.dead and "500" in queue.dead[0][1]
    # Every delivery failed for 24 hours: the subscription is paused and its owner told.
    assert store.subscriptions[subscription.id].state is SubscriptionState.PAUSED
    assert [s.id for s in notified] == [subscription.id]


def test_a_4xx_is_not_retried_and_a_paused_subscription_gets_nothing() -> None:
    webhooks, _, queue, _ = service(FakeSender(Attempt(404, 3)))
    subscription = webhooks.create("https://hooks.example.com/x", ["lead.captured"], None, "user:a", None)
    message = {
        "subscription_id": subscription.id,
        "event": EVENT,
        "attempt": 1,
        "first_at": "2026-03-01T12:00:00Z",
    }
    assert webhooks.deliver(message) == "dead"
    assert not queue.sent and "404" in queue.dead[0][1]
    webhooks.update(subscription.id, state=SubscriptionState.PAUSED)
    assert webhooks.fan_out(EVENT) == 0
    assert webhooks.deliver({**message, "event": {**EVENT, "detail": {"id": "e2"}}}) == "dropped"
