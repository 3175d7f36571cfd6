"""The lead aggregate and its rules, as plain Python (no AWS)."""

import json
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, PlainSerializer

from crm.platform import clock
from crm.platform.fields import CUSTOM_FIELDS_MAX_BYTES
from crm.platform.ids import new_id

UtcDatetime = Annotated[datetime, PlainSerializer(clock.isoformat, return_type=str, when_used="json")]


class LeadStatus(StrEnum):
    NEW = "new"
    CONTACTED = "contacted"
    QUALIFIED = "qualified"
    UNQUALIFIED = "unqualified"
    CONVERTED = "converted"


class Channel(StrEnum):
    """How a lead reached us; decides its default source and first status."""

    WEBSITE_FORM = "website_form"
    LIVE_CHAT = "live_chat"
    PARTNER_WEBHOOK = "partner_webhook"
    API = "api"


# Person and company details a later submission may fill in when the lead lacks them.
MERGEABLE_FIELDS = ("phone", "company", "title", "industry", "employee_count", "annual_revenue")


class MarketingConsent(BaseModel):
    """Whether the person agreed to marketing email: what they said last, when, and through which route."""

    given: bool
    at: UtcDatetime
    channel: str  # website_form | live_chat | partner_webhook | api | unsubscribe
    recorded_by: str  # who recorded it: website_form, partner:acme, user:<sub>, system:unsubscribe


class Lead(BaseModel):
    model_config = ConfigDict(validate_assignment=False)

    id: str
    first_name: str
    last_name: str
    email: str
    phone: str | None = None
    company: str | None = None
    title: str | None = None
    industry: str | None = None
    employee_count: int | None = None
    annual_revenue: Decimal | None = None
    lead_source: str
    lead_status: LeadStatus = LeadStatus.NEW
    score: int = 0
    grade: str | None = None
    qualified: bool = False
    qualified_at: UtcDatetime | None = None
    assigned_to: str | None = None
    assigned_at: UtcDatetime | None = None
    team: str | None = None
    # Below the sales threshold when scored: left to nurture sequences instead of a rep
    # (crm.assignment.routing).
    nurture: bool = False
    # No marketing email may reach the lead (crm.nurture.unsubscribe): it unsubscribed, bounced or complained.
    do_not_email: bool = False
    do_not_email_reason: str | None = None  # unsubscribed | bounced | complained
    do_not_email_at: UtcDatetime | None = None
    # None: the person was never asked (nurture then mails them only if consent is not required).
    marketing_consent: MarketingConsent | None = None
    converted: bool = False
    converted_at: UtcDatetime | None = None
    contact_id: str | None = None
    # Set by conversion, beside contact_id (crm.conversion.service).
    company_id: str | None = None
    deal_id: str | None = None
    custom_fields: dict[str, Any] = {}
    created_at: UtcDatetime
    updated_at: UtcDatetime
    version: int = 1


# The lead fields a rule may test. A rule on the lead's own score or grade would change the score each
# time it is recomputed; custom fields are addressed one by one, as custom_fields.<name>.
_NOT_SCOREABLE = frozenset({"score", "grade", "custom_fields"})
LEAD_FIELDS = frozenset(name for name in Lead.model_fields if name not in _NOT_SCOREABLE)


class Activity(BaseModel):
    id: str
    lead_id: str
    type: str
    description: str
    created_by: str
    created_at: UtcDatetime
    data: dict[str, Any] = {}


@dataclass(frozen=True)
class LeadSubmission:
    """One capture of a person, from any channel, already validated."""

    channel: Channel
    first_name: str
    last_name: str
    email: str
    lead_source: str
    submitted_by: str
    phone: str | None = None
    company: str | None = None
    title: str | None = None
    industry: str | None = None
    employee_count: int | None = None
    annual_revenue: Decimal | None = None
    custom_fields: dict[str, Any] = field(default_factory=dict)
    transcript: list[dict[str, Any]] | None = None
    marketing_consent: bool | None = None  # None: the submission did not say
    form_type: str | None = None  # what a website form says it is (`demo_request`, `contact`, ...)

    def consent_at(self, now: datetime) -> MarketingConsent | None:
        if self.marketing_consent is None:
            return None
        return MarketingConsent(
            given=self.marketing_consent, at=now, channel=self.channel.value, recorded_by=self.submitted_by
        )

    @property
    def initial_status(self) -> LeadStatus:
        # A chat is a conversation already: the person has been contacted.
        return LeadStatus.CONTACTED if self.channel is Channel.LIVE_CHAT else LeadStatus.NEW


def new_lead(submission: LeadSubmission, now: datetime) -> Lead:
    return Lead(
        id=new_id(),
        first_name=submission.first_name,
        last_name=submission.last_name,
        email=submission.email,
        phone=submission.phone,
        company=submission.company,
        title=submission.title,
        industry=submission.industry,
        employee_count=submission.employee_count,
        annual_revenue=submission.annual_revenue,
        lead_source=submission.lead_source,
        lead_status=submission.initial_status,
        custom_fields=dict(submission.custom_fields),
        marketing_consent=submission.consent_at(now),
        created_at=now,
        updated_at=now,
    )


def new_activity(
    lead_id: str, type_: str, description: str, created_by: str, now: datetime, **data: Any
) -> Activity:
    return Activity(
        id=new_id(),
        lead_id=lead_id,
        type=type_,
        description=description,
        created_by=created_by,
        created_at=now,
        data={key: value for key, value in data.items() if value is not None},
    )


@dataclass(frozen=True)
class MergePlan:
    """What a repeat submission changes on an existing lead, and what it could not change."""

    changes: dict[str, tuple[Any, Any]]  # field -> (old, new)
    kept: dict[str, tuple[Any, Any]]  # field -> (existing, submitted) where both had a value
    dropped_custom_fields: tuple[str, ...] = ()  # new keys left out: the lead's custom fields were full

    @property
    def custom_fields_added(self) -> bool:
        return "custom_fields" in self.changes


def _is_empty(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def plan_merge(lead: Lead, submission: LeadSubmission, now: datetime) -> MergePlan:
    """Fill the lead's empty fields from the submission; never overwrite a value, never blank one.

    The first source is kept, and the lead's status is never changed: whoever sends a form or starts a chat
    with someone's address must not be able to move that lead on (a `new` lead moved to `contacted` would
    silence its speed-to-lead escalation). New custom fields are added while the whole stays within
    CUSTOM_FIELDS_MAX_BYTES (what one submission may bring), so no sender can grow the item towards
    DynamoDB's 400 KB limit, past which nothing could write the lead any more. A stated marketing consent
    replaces the earlier one: the latest word counts.
    """
    changes: dict[str, tuple[Any, Any]] = {}
    kept: dict[str, tuple[Any, Any]] = {}
    for name in MERGEABLE_FIELDS:
        current, submitted = getattr(lead, name), getattr(submission, name)
        if _is_empty(submitted):
            continue
        if _is_empty(current):
            changes[name] = (current, submitted)
        elif current != submitted:
            kept[name] = (current, submitted)

    for key, value in submission.custom_fields.items():
        if key in lead.custom_fields and lead.custom_fields[key] != value:
            kept[f"custom_fields.{key}"] = (lead.custom_fields[key], value)
    merged, dropped = _add_new_custom_fields(lead.custom_fields, submission.custom_fields)
    if len(merged) > len(lead.custom_fields):
        changes["custom_fields"] = (dict(lead.custom_fields), merged)

    consent = submission.consent_at(now)
    current_consent = lead.marketing_consent.given if lead.marketing_consent else None
    if consent is not None and consent.given != current_consent:
        changes["marketing_consent"] = (lead.marketing_consent, consent)
    return MergePlan(changes=changes, kept=kept, dropped_custom_fields=dropped)


def _json_size(value: Any) -> int:
    return len(json.dumps(value, default=str).encode())


def _add_new_custom_fields(
    existing: dict[str, Any], submitted: dict[str, Any]
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The existing fields plus each submitted new key that still fits, in the order sent; and the names of
    those that did not. Sizes are counted as `json.dumps` writes a dict: `{"k": v, "k2": v2}`."""
    merged = dict(existing)
    size = _json_size(merged)
    dropped: list[str] = []
    for key, value in submitted.items():
        if key in merged:
            continue
        entry = _json_size(key) + 2 + _json_size(value) + (2 if merged else 0)  # `"k": v` and its `, `
        if size + entry > CUSTOM_FIELDS_MAX_BYTES:
            dropped.append(key)
            continue
        merged[key] = value
        size += entry
    return merged, tuple(dropped)


def is_open(lead: Lead) -> bool:
    """Still being worked: neither converted nor ruled out."""
    return not lead.converted and lead.lead_status not in (LeadStatus.UNQUALIFIED, LeadStatus.CONVERTED)


def awaits_first_contact(lead: Lead) -> bool:
    """Still nobody has talked to this lead (a nurture lead whose score later reached the threshold is
    assigned like any other, and is then for sales whatever its `nurture` flag)."""
    return lead.lead_status is LeadStatus.NEW and not lead.converted


def sla_stop_reason(lead: Lead) -> str | None:
    """Why the lead's speed-to-lead clock no longer runs, or None while it does."""
    if lead.converted:
        return "converted"
    if lead.lead_status is not LeadStatus.NEW:
        return "contacted"
    if lead.nurture and lead.assigned_to is None:
        return "nurture"
    return None


GRADE_THRESHOLDS = ((90, "A+"), (80, "A"), (70, "B"), (60, "C"), (50, "D"))


LOWEST_GRADE = "F"


def grade_for(score: int) -> str:
    for threshold, grade in GRADE_THRESHOLDS:
        if score >= threshold:
            return grade
    return LOWEST_GRADE
