"""HTTP models of outbound webhook subscriptions (`/webhook-subscriptions`)."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictStr

from crm.integrations.events import EVENT_NAMES
from crm.integrations.webhooks import Attempt, Subscription
from crm.leads.model import UtcDatetime

_EVENTS = f"Domain events to receive, any of: {', '.join(EVENT_NAMES)}"


class CreateWebhookSubscriptionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: StrictStr = Field(
        max_length=2048, description="An https URL (the local stack also takes http://127.0.0.1)"
    )
    events: list[StrictStr] = Field(min_length=1, max_length=len(EVENT_NAMES), description=_EVENTS)
    description: StrictStr | None = Field(default=None, max_length=500)


class UpdateWebhookSubscriptionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    state: Literal["active", "paused"] | None = Field(default=None, description="paused: nothing is sent")
    events: list[StrictStr] | None = Field(
        default=None, min_length=1, max_length=len(EVENT_NAMES), description=_EVENTS
    )
    description: StrictStr | None = Field(default=None, max_length=500)
    url: StrictStr | None = Field(default=None, max_length=2048)


class WebhookSubscriptionResponse(BaseModel):
    id: str
    url: str
    events: list[str]
    description: str | None
    state: str
    paused_reason: str | None
    failing_since: UtcDatetime | None
    created_by: str
    created_at: UtcDatetime
    updated_at: UtcDatetime
    version: int

    @classmethod
    def of(cls, subscription: Subscription) -> "WebhookSubscriptionResponse":
        return cls.model_validate(subscription.model_dump(exclude={"secret", "owner_email"}))


class CreatedWebhookSubscriptionResponse(WebhookSubscriptionResponse):
    secret: str = Field(
        description="The signing secret, shown only in this answer: verify X-Signature "
        '(t=<unix>,v1=<HMAC-SHA256 of "{t}.{body}">) with it'
    )

    @classmethod
    def created(cls, subscription: Subscription) -> "CreatedWebhookSubscriptionResponse":
        return cls.model_validate(subscription.model_dump(exclude={"owner_email"}))


class WebhookSubscriptionListResponse(BaseModel):
    items: list[WebhookSubscriptionResponse]
    next_cursor: str | None = None


class WebhookTestResponse(BaseModel):
    delivered: bool = Field(description="The receiver answered 2xx")
    status_code: int | None = Field(description="null: no answer (timeout, refused, connection failed)")
    latency_ms: int
    error: str | None

    @classmethod
    def of(cls, attempt: Attempt) -> "WebhookTestResponse":
        return cls(
            delivered=attempt.ok,
            status_code=attempt.status_code,
            latency_ms=attempt.latency_ms,
            error=attempt.error,
        )


class WebhookDeliveryAttemptResponse(BaseModel):
    event_id: str
    event_type: str | None
    attempt: int
    at: datetime
    state: str | None = Field(
        description="The delivery's state: delivered, retrying, dead, failed (a test ping)"
    )
    status_code: int | None
    latency_ms: int
    error: str | None = None


class WebhookDeliveryListResponse(BaseModel):
    items: list[WebhookDeliveryAttemptResponse]
