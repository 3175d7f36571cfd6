"""Fakes and builders shared by the nurture tests (unit, integration, DynamoDB Local)."""

import email
import email.policy
import uuid
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

from crm.leads.model import MarketingConsent
from crm.notifications.templates import EmailTemplate
from crm.nurture.sequences import NurtureSequence, NurtureStep
from crm.nurture.unsubscribe import UnsubscribeTokens
from crm.platform.email import OutgoingEmail

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
# A person who ticked "email me" on the form: nurture mails only such people (NURTURE_REQUIRES_CONSENT).
CONSENTED = MarketingConsent(given=True, at=NOW, channel="website_form", recorded_by="website_form")
# The local stack's key (devstack/seed.json), so the sample events' tokens verify in tests too.
UNSUBSCRIBE_KEY = "local-unsubscribe-signing-key"


def tokens(*keys: str) -> UnsubscribeTokens:
    return UnsubscribeTokens(lambda: [key.encode() for key in (keys or (UNSUBSCRIBE_KEY,))])


class InMemoryTemplates:
    """The template store port, in memory: what SES would hold."""

    def __init__(self, *templates: EmailTemplate) -> None:
        self.templates = {template.name: template for template in templates}
        self.reads = 0

    def get(self, name: str) -> EmailTemplate | None:
        self.reads += 1
        return self.templates.get(name)


class RecordingSender:
    """The email port, recording what would have been sent."""

    def __init__(self) -> None:
        self.sent: list[OutgoingEmail] = []

    def send(self, message: OutgoingEmail) -> str:
        self.sent.append(message)
        return f"message-{len(self.sent)}"


def simple_template(name: str = "welcome") -> EmailTemplate:
    return EmailTemplate(
        name=name,
        subject="Hello {{first_name}}",
        html="<p>Hello {{first_name}}{{#company}} from {{company}}{{/company}}</p>"
        '<a href="{{unsubscribe_url}}">x</a>',
        text="Hello {{first_name}}{{#company}} from {{company}}{{/company}}\n"
        "Unsubscribe: {{unsubscribe_url}}",
    )


def sequence(
    *steps: tuple[int, str],
    priority: int = 100,
    conditions: list[dict[str, Any]] | None = None,
    active: bool = True,
    created_at: datetime = NOW,
) -> NurtureSequence:
    return NurtureSequence.model_validate(
        {
            "id": str(uuid.uuid4()),
            "name": f"Sequence {uuid.uuid4().hex[:6]}",
            "active": active,
            "priority": priority,
            "conditions": conditions or [],
            "steps": [NurtureStep(delay_hours=hours, template=name) for hours, name in steps]
            or [NurtureStep(delay_hours=1, template="welcome")],
            "created_at": created_at,
            "updated_at": created_at,
        }
    )


def parse_raw(raw: str | bytes) -> EmailMessage:
    parsed = (
        email.message_from_bytes(raw, policy=email.policy.default)
        if isinstance(raw, bytes)
        else email.message_from_string(raw, policy=email.policy.default)
    )
    assert isinstance(parsed, EmailMessage)
    return parsed


def url_from_header(value: str) -> str:
    """The https/http URI of a List-Unsubscribe header (`<https://…>`)."""
    return value.strip().removeprefix("<").split(">", 1)[0]
