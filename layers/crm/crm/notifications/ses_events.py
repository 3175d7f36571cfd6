"""SES email events (through the configuration set's EventBridge destination) become lead activities.

The email's `lead_id` tag names the lead. Emails to the lead (`audience` tag "lead", e.g. future nurture
emails) give `email_opened`, `email_clicked`, `email_bounced`, `email_complained` and `email_delivered`,
which scoring counts as engagement. Notifications to staff (`audience` "staff") give `notification_*`
activities instead: a rep opening "you have a new lead" says nothing about the lead's interest.

Idempotent on (SES message id, event type): the activity's id and time derive from the event, and it is
written only if absent, so a redelivered event adds nothing.
"""

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from crm.leads.model import Activity
from crm.notifications.repository import NotificationRepository
from crm.platform import clock
from crm.platform.errors import InvalidInput
from crm.platform.observability import logger

# EventBridge detail-type -> (SES eventType detail key, activity suffix)
DETAIL_TYPES: dict[str, tuple[str, str]] = {
    "Email Delivered": ("delivery", "delivered"),
    "Email Opened": ("open", "opened"),
    "Email Clicked": ("click", "clicked"),
    "Email Bounced": ("bounce", "bounced"),
    "Email Complaint Received": ("complaint", "complained"),
    "Email Complaint": ("complaint", "complained"),
}
_NAMESPACE = uuid.UUID("5d0b8c52-8a55-4a5f-9d7e-4c1b2f0e6a11")
EMAIL_EVENTS = "system:ses"


def _tag(tags: dict[str, Any], name: str) -> str | None:
    values = tags.get(name)
    if isinstance(values, list) and values:
        return str(values[0])
    return str(values) if isinstance(values, str) else None


def _details(section: str, body: dict[str, Any]) -> dict[str, Any]:
    """What is worth keeping of each event (no recipient addresses)."""
    if section == "click":
        return {"link": body.get("link")}
    if section == "bounce":
        return {"bounce_type": body.get("bounceType"), "bounce_sub_type": body.get("bounceSubType")}
    if section == "complaint":
        return {"feedback_type": body.get("complaintFeedbackType")}
    return {}


def activity_for(event: dict[str, Any]) -> Activity | None:
    """The activity an SES event adds, or None when the event is not about a lead's email."""
    detail_type = str(event.get("detail-type", ""))
    if detail_type not in DETAIL_TYPES:
        return None
    section, suffix = DETAIL_TYPES[detail_type]
    detail = event.get("detail") or {}
    mail = detail.get("mail") or {}
    message_id = mail.get("messageId")
    tags = mail.get("tags") or {}
    lead_id = _tag(tags, "lead_id")
    if not message_id or not lead_id:
        return None
    try:
        uuid.UUID(lead_id)
    except ValueError:
        raise InvalidInput.single("detail.mail.tags.lead_id", "is not a lead id") from None
    body = detail.get(section) or {}
    happened = str(body.get("timestamp") or event.get("time") or mail.get("timestamp") or "")
    try:
        happened_at: datetime = clock.parse(happened)
    except ValueError:
        raise InvalidInput.single("detail.timestamp", "is not a timestamp") from None
    audience = _tag(tags, "audience") or "lead"
    prefix = "email" if audience == "lead" else "notification"
    kind = _tag(tags, "kind")
    return Activity(
        id=str(uuid.uuid5(_NAMESPACE, f"{message_id}:{section}")),
        lead_id=lead_id,
        type=f"{prefix}_{suffix}",
        description=f"{'Email' if prefix == 'email' else 'Notification email'} {suffix}"
        + (f" ({kind.replace('_', ' ')})" if kind else ""),
        created_by=EMAIL_EVENTS,
        created_at=happened_at,
        data={
            key: value
            for key, value in {"message_id": message_id, "kind": kind, **_details(section, body)}.items()
            if value is not None
        },
    )


class EmailEventRecorder:
    def __init__(
        self, deliveries: NotificationRepository, suppress: Callable[[Activity], object] | None = None
    ) -> None:
        self.deliveries = deliveries
        # Told every recorded (or repeated) event's activity: a permanent bounce or a complaint about an email
        # to a lead marks it do-not-email (crm.nurture.do_not_email); idempotent, so redeliveries are safe.
        self.suppress = suppress

    def record(self, event: dict[str, Any]) -> bool:
        """Add the event's activity once; False for events about no lead, malformed ones, or repeats."""
        try:
            activity = activity_for(event)
        except InvalidInput as exc:
            logger.warning(
                "Malformed SES event ignored", extra={"event_id": event.get("id"), "error": exc.message}
            )
            return False
        if activity is None:
            return False
        recorded = self.deliveries.record_email_event(activity)
        logger.info(
            "Email event recorded" if recorded else "Email event already recorded (or lead gone)",
            extra={"lead_id": activity.lead_id, "type": activity.type},
        )
        if self.suppress is not None:
            self.suppress(activity)
        return recorded
