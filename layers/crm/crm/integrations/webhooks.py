"""Outbound webhooks: subscriptions, signed deliveries, retries, and the SSRF guard, as plain Python.

A subscription names an `https` URL and the domain events it wants (`crm.integrations.events`). Each event
on the bus is fanned out to one delivery message per subscription that wants it; a delivery POSTs the event
(the same JSON a bus rule receives) signed like partner webhooks (`X-Signature: t=<unix>,v1=<HMAC-SHA256 of
"{t}.{body}">`, `crm.platform.signatures`) with `X-Event-Id`. Timeouts, 5xx and 429 are retried with
exponential backoff and jitter (honouring `Retry-After`) for `MAX_AGE`; then the delivery is dead-lettered.
A delivery record per (subscription, event id) makes a redelivered event a no-op once delivered. A
subscription whose deliveries all fail for `MAX_AGE` is paused and its owner emailed.
"""

import ipaddress
import json
import random
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol
from urllib.parse import urlsplit

from pydantic import BaseModel

from crm.integrations.events import EVENT_NAMES, PING, SCHEMA_VERSION, SOURCE
from crm.platform import clock
from crm.platform.errors import InvalidInput, NotFound, VersionConflict
from crm.platform.ids import new_id
from crm.platform.observability import logger
from crm.platform.signatures import signature_header

MAX_AGE = timedelta(hours=24)
MAX_DELAY_SECONDS = 900  # SQS DelaySeconds
ATTEMPTS_KEPT = 20
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


class SubscriptionState(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"


class Subscription(BaseModel):
    id: str
    url: str
    events: list[str]
    description: str | None = None
    state: SubscriptionState = SubscriptionState.ACTIVE
    secret: str
    created_by: str
    owner_email: str | None = None
    created_at: datetime
    updated_at: datetime
    paused_reason: str | None = None
    # Since when every delivery failed (cleared by a success); None while deliveries succeed.
    failing_since: datetime | None = None
    version: int = 1

    def wants(self, event_type: str) -> bool:
        return self.state is SubscriptionState.ACTIVE and event_type in self.events


@dataclass(frozen=True)
class Attempt:
    """One POST to a subscriber: its answer (None: no answer, e.g. a timeout) and how long it took."""

    status_code: int | None
    latency_ms: int
    error: str | None = None
    retry_after: float | None = None
    permanent: bool = False  # refused before sending (e.g. a private address): retrying cannot help

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def retryable(self) -> bool:
        if self.permanent:
            return False
        return self.status_code is None or self.status_code >= 500 or self.status_code == 429


class WebhookSender(Protocol):
    def post(self, url: str, body: bytes, headers: dict[str, str]) -> Attempt: ...


class DeliveryQueue(Protocol):
    def send(self, message: dict[str, Any], delay_seconds: int = 0) -> None: ...

    def dead_letter(self, message: dict[str, Any], reason: str) -> None: ...


class SubscriptionStore(Protocol):
    def create(self, subscription: Subscription) -> None: ...
    def get(self, subscription_id: str) -> Subscription | None: ...
    def all(self) -> list[Subscription]: ...
    def replace(self, subscription: Subscription, expected_version: int) -> None: ...
    def delete(self, subscription_id: str) -> bool: ...
    def mark_failing(self, subscription_id: str, since: datetime) -> None: ...
    def mark_succeeding(self, subscription_id: str) -> None: ...
    def claim_delivery(
        self, subscription_id: str, event_id: str, event_type: str, lease: timedelta
    ) -> bool: ...
    def record_attempt(
        self, subscription_id: str, event_id: str, attempt: dict[str, Any], state: str
    ) -> None: ...
    def deliveries(self, subscription_id: str, limit: int) -> list[dict[str, Any]]: ...


# ---------------------------------------------------------------- the SSRF guard


def is_public_address(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    return not (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_reserved
        or ip.is_multicast
        or ip.is_unspecified
        or (isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None)
    )


def is_loopback_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme == "http" and (parts.hostname or "") in LOOPBACK_HOSTS


def check_url(url: str, *, allow_loopback: bool) -> str:
    """A subscriber URL we may send to: `https` with a host (no credentials), not an IP literal of a private,
    loopback or link-local network; `http://127.0.0.1` only where `allow_loopback` (the local stack).
    Names are resolved and checked again at each send (crm.integrations.http)."""

    def bad(message: str) -> InvalidInput:
        return InvalidInput.single("url", message)

    if not isinstance(url, str) or len(url) > 2048:
        raise bad("url must be a URL of at most 2048 characters")
    parts = urlsplit(url.strip())
    host = parts.hostname or ""
    if allow_loopback and is_loopback_url(url):
        return url.strip()
    if parts.scheme != "https":
        raise bad("url must be an https URL")
    if not host or parts.username or parts.password:
        raise bad("url must name a host, without credentials")
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None and not is_public_address(str(literal)):
        raise bad("url must not point at a private, loopback or link-local address")
    if host in LOOPBACK_HOSTS or host.endswith(".localhost") or host.endswith(".internal"):
        raise bad("url must not point at a private, loopback or link-local address")
    return url.strip()


def check_events(events: list[str]) -> list[str]:
    unknown = sorted(set(events) - set(EVENT_NAMES))
    if unknown or not events:
        message = f"events must be a non-empty list of: {', '.join(EVENT_NAMES)}" + (
            f" (unknown: {', '.join(unknown)})" if unknown else ""
        )
        raise InvalidInput.single("events", message)
    return sorted(set(events), key=EVENT_NAMES.index)


# ---------------------------------------------------------------- what is sent


def body_of(envelope: dict[str, Any]) -> bytes:
    return json.dumps(envelope, separators=(",", ":"), sort_keys=True, default=str).encode()


def signed_headers(secret: str, envelope: dict[str, Any], body: bytes, now: datetime) -> dict[str, str]:
    detail = envelope.get("detail") or {}
    return {
        "Content-Type": "application/json",
        "User-Agent": "LeadFlow-Webhooks/1",
        "X-Event-Id": str(detail.get("id", "")),
        "X-Event-Type": str(envelope.get("detail-type", "")),
        "X-Signature": signature_header(secret, int(now.timestamp()), body),
    }


def ping_envelope(subscription_id: str, now: datetime) -> dict[str, Any]:
    return {
        "source": SOURCE,
        "detail-type": PING,
        "detail": {
            "schema_version": SCHEMA_VERSION,
            "id": str(uuid.uuid4()),
            "type": PING,
            "subscription_id": subscription_id,
            "occurred_at": clock.isoformat(now),
        },
    }


def retry_delay(attempt: int, base_seconds: float, retry_after: float | None) -> int:
    """Exponential backoff with jitter: base x 2^(attempt-1), between half and all of it; never sooner than
    the subscriber's Retry-After; at most SQS's 15 minutes (a longer wait takes several hops)."""
    ceiling = min(MAX_DELAY_SECONDS, base_seconds * 2 ** max(attempt - 1, 0))
    delay = ceiling / 2 + random.uniform(0, ceiling / 2)  # noqa: S311 (jitter, not a secret)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return int(min(MAX_DELAY_SECONDS, max(delay, 0)))


# ---------------------------------------------------------------- the service


class WebhookService:
    def __init__(
        self,
        store: SubscriptionStore,
        sender: WebhookSender,
        queue: DeliveryQueue,
        *,
        allow_loopback: bool,
        retry_base_seconds: float,
        notify_owner: Callable[[Subscription], None],
        now: Callable[[], datetime] = clock.now,
    ) -> None:
        self.store = store
        self.sender = sender
        self.queue = queue
        self.allow_loopback = allow_loopback
        self.retry_base_seconds = retry_base_seconds
        self.notify_owner = notify_owner
        self.now = now

    # -------------------------------------------------------- subscriptions
    def create(
        self, url: str, events: list[str], description: str | None, actor: str, owner_email: str | None
    ) -> Subscription:
        moment = self.now()
        subscription = Subscription(
            id=new_id(),
            url=check_url(url, allow_loopback=self.allow_loopback),
            events=check_events(events),
            description=description,
            secret="whsec_" + secrets.token_hex(24),
            created_by=actor,
            owner_email=owner_email,
            created_at=moment,
            updated_at=moment,
        )
        self.store.create(subscription)
        return subscription

    def get(self, subscription_id: str) -> Subscription:
        subscription = self.store.get(subscription_id)
        if subscription is None:
            raise NotFound(f"No webhook subscription with id {subscription_id}")
        return subscription

    def subscriptions(self) -> list[Subscription]:
        return sorted(self.store.all(), key=lambda s: (s.created_at, s.id))

    def update(
        self,
        subscription_id: str,
        *,
        state: SubscriptionState | None = None,
        events: list[str] | None = None,
        description: str | None = None,
        url: str | None = None,
    ) -> Subscription:
        current = self.get(subscription_id)
        changes: dict[str, Any] = {"updated_at": self.now(), "version": current.version + 1}
        if state is not None:
            changes["state"] = state
            if state is SubscriptionState.ACTIVE:  # resumed: a fresh start for the failure clock
                changes |= {"paused_reason": None, "failing_since": None}
            elif current.state is SubscriptionState.ACTIVE:
                changes["paused_reason"] = "paused by an admin"
        if events is not None:
            changes["events"] = check_events(events)
        if description is not None:
            changes["description"] = description
        if url is not None:
            changes["url"] = check_url(url, allow_loopback=self.allow_loopback)
        updated = current.model_copy(update=changes)
        self.store.replace(updated, current.version)
        return updated

    def delete(self, subscription_id: str) -> None:
        if not self.store.delete(subscription_id):
            raise NotFound(f"No webhook subscription with id {subscription_id}")

    def deliveries(self, subscription_id: str, limit: int = 50) -> list[dict[str, Any]]:
        self.get(subscription_id)
        return self.store.deliveries(subscription_id, limit)

    def test(self, subscription_id: str) -> Attempt:
        """Send a `ping` now (whatever the subscription's state) and say how it went."""
        subscription = self.get(subscription_id)
        envelope = ping_envelope(subscription.id, self.now())
        attempt = self._post(subscription, envelope)
        self.store.record_attempt(
            subscription.id,
            envelope["detail"]["id"],
            self._attempt_record(envelope, 1, attempt),
            "delivered" if attempt.ok else "failed",
        )
        return attempt

    # -------------------------------------------------------- deliveries
    def fan_out(self, envelope: dict[str, Any]) -> int:
        """One delivery message per active subscription that wants this event; returns how many."""
        event_type = str(envelope.get("detail-type", ""))
        # What subscribers get: the event's source, detail-type and detail (as its JSON Schema describes).
        envelope = {
            "source": envelope.get("source"),
            "detail-type": event_type,
            "detail": envelope.get("detail"),
        }
        wanted = [s for s in self.store.all() if s.wants(event_type)]
        first_at = clock.isoformat(self.now())
        for subscription in wanted:
            self.queue.send(
                {"subscription_id": subscription.id, "event": envelope, "attempt": 1, "first_at": first_at}
            )
        return len(wanted)

    def deliver(self, message: dict[str, Any]) -> str:
        """Send one delivery message; returns what became of it (delivered, duplicate, retrying, dead,
        dropped). RetryableError leaves the message to SQS (another worker holds the delivery's lease)."""
        subscription = self.store.get(str(message["subscription_id"]))
        envelope: dict[str, Any] = message["event"]
        event_id = str((envelope.get("detail") or {}).get("id", ""))
        event_type = str(envelope.get("detail-type", ""))
        if subscription is None or subscription.state is not SubscriptionState.ACTIVE:
            return "dropped"  # deleted or paused meanwhile
        if not self.store.claim_delivery(subscription.id, event_id, event_type, timedelta(seconds=60)):
            return "duplicate"
        number = int(message.get("attempt", 1))
        attempt = self._post(subscription, envelope)
        record = self._attempt_record(envelope, number, attempt)
        if attempt.ok:
            self.store.record_attempt(subscription.id, event_id, record, "delivered")
            if subscription.failing_since is not None:
                self.store.mark_succeeding(subscription.id)
            return "delivered"
        self._note_failure(subscription)
        first_at = clock.parse(str(message.get("first_at") or clock.isoformat(self.now())))
        delay = retry_delay(number, self.retry_base_seconds, attempt.retry_after)
        if not attempt.retryable or self.now() + timedelta(seconds=delay) - first_at > MAX_AGE:
            self.store.record_attempt(subscription.id, event_id, record, "dead")
            reason = f"HTTP {attempt.status_code}" if attempt.status_code else (attempt.error or "no answer")
            self.queue.dead_letter(message, reason)
            return "dead"
        self.store.record_attempt(subscription.id, event_id, record, "retrying")
        self.queue.send({**message, "attempt": number + 1}, delay_seconds=delay)
        return "retrying"

    def _note_failure(self, subscription: Subscription) -> None:
        now = self.now()
        if subscription.failing_since is None:
            self.store.mark_failing(subscription.id, now)
            return
        if now - subscription.failing_since < MAX_AGE:
            return
        paused = subscription.model_copy(
            update={
                "state": SubscriptionState.PAUSED,
                "paused_reason": "every delivery failed for 24 hours",
                "updated_at": now,
                "version": subscription.version + 1,
            }
        )
        try:
            self.store.replace(paused, subscription.version)
        except VersionConflict:
            return  # changed meanwhile (paused, resumed or edited): that change stands
        logger.warning("Webhook subscription paused after 24 h of failures", extra={"id": subscription.id})
        self.notify_owner(paused)

    def _post(self, subscription: Subscription, envelope: dict[str, Any]) -> Attempt:
        body = body_of(envelope)
        return self.sender.post(
            subscription.url, body, signed_headers(subscription.secret, envelope, body, self.now())
        )

    def _attempt_record(self, envelope: dict[str, Any], number: int, attempt: Attempt) -> dict[str, Any]:
        return {
            "event_type": str(envelope.get("detail-type", "")),
            "attempt": number,
            "at": clock.isoformat(self.now()),
            "status_code": attempt.status_code,
            "latency_ms": attempt.latency_ms,
            "error": attempt.error,
        }
