"""Models of the HTTP API: what clients send and what they get back (separate from domain and items)."""

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from crm.leads.model import Activity, Channel, Lead, LeadStatus, LeadSubmission, UtcDatetime
from crm.platform.fields import (
    CustomFields,
    Email,
    JsonData,
    LongText,
    MoneyAmount,
    OptionalEmployeeCount,
    OptionalMoney,
    OptionalPhone,
    OptionalSource,
    OptionalText100,
    OptionalText255,
    PersonName,
    StrictEmployeeCount,
    Text100,
    Timestamp,
)

TRANSCRIPT_MAX_BYTES = 64 * 1024


class LeadFields(BaseModel):
    """The person and company fields every capture channel accepts (seed schema names)."""

    model_config = ConfigDict(extra="forbid", defer_build=True)

    first_name: PersonName
    last_name: PersonName
    email: Email
    phone: OptionalPhone = None
    company: OptionalText255 = None
    title: OptionalText100 = None
    industry: OptionalText100 = None
    employee_count: OptionalEmployeeCount = None
    annual_revenue: OptionalMoney = None
    lead_source: OptionalSource = None
    custom_fields: CustomFields = Field(default_factory=dict)
    # A form's checkbox ("on", "true", "yes"), a chat's or a partner's true/false; absent: not asked.
    marketing_consent: bool | None = Field(
        default=None, description="Whether the person agreed to marketing email; absent if not asked"
    )

    def to_submission(
        self,
        channel: Channel,
        default_source: str,
        submitted_by: str,
        transcript: list[dict[str, Any]] | None = None,
    ) -> LeadSubmission:
        return LeadSubmission(
            channel=channel,
            first_name=self.first_name,
            last_name=self.last_name,
            email=self.email,
            lead_source=self.lead_source or default_source,
            submitted_by=submitted_by,
            phone=self.phone,
            company=self.company,
            title=self.title,
            industry=self.industry,
            employee_count=self.employee_count,
            annual_revenue=self.annual_revenue,
            custom_fields=dict(self.custom_fields),
            transcript=transcript,
            marketing_consent=self.marketing_consent,
        )


class CreateLeadRequest(LeadFields):
    """System API (`POST /leads`): strict, unknown fields are refused."""

    # JSON only: a number sent as text is refused (the capture channels take what forms send).
    employee_count: StrictEmployeeCount | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    author: Text100
    text: LongText
    sent_at: Timestamp | None = None


class ChatCaptureRequest(LeadFields):
    model_config = ConfigDict(extra="forbid", defer_build=True)

    chat_id: OptionalText100 = None
    transcript: list[ChatMessage] | LongText | None = None

    @field_validator("transcript")
    @classmethod
    def bounded_transcript(cls, value: list[ChatMessage] | str | None) -> list[ChatMessage] | str | None:
        if value is None:
            return value
        dumped = value if isinstance(value, str) else [message.model_dump(mode="json") for message in value]
        if len(json.dumps(dumped)) > TRANSCRIPT_MAX_BYTES:
            raise ValueError(f"must be at most {TRANSCRIPT_MAX_BYTES // 1024} KB")
        return value

    def transcript_messages(self) -> list[dict[str, Any]] | None:
        if self.transcript is None:
            return None
        if isinstance(self.transcript, str):
            return [{"author": "transcript", "text": self.transcript}]
        return [message.model_dump(mode="json", exclude_none=True) for message in self.transcript]


# ---------------------------------------------------------------- responses


class CaptureResponse(BaseModel):
    """Capture answers to a caller who may know: a partner (signed) or a signed-in user."""

    id: str
    created: bool


class PublicCaptureResponse(BaseModel):
    """Public capture answers (website forms, chat): the same whether the email was new or already a lead's,
    so nobody learns who is one. The lead's id only, never another person's data."""

    id: str


class MarketingConsentResponse(BaseModel):
    given: bool
    at: UtcDatetime
    channel: str
    recorded_by: str


class LeadResponse(BaseModel):
    id: str
    first_name: str
    last_name: str
    email: str
    phone: str | None
    company: str | None
    title: str | None
    industry: str | None
    employee_count: int | None
    annual_revenue: MoneyAmount | None  # a JSON number
    lead_source: str
    lead_status: LeadStatus
    score: int
    grade: str | None
    qualified: bool
    qualified_at: UtcDatetime | None
    assigned_to: str | None
    assigned_at: UtcDatetime | None
    team: str | None
    nurture: bool = False
    do_not_email: bool = False
    do_not_email_reason: str | None = None
    do_not_email_at: UtcDatetime | None = None
    marketing_consent: MarketingConsentResponse | None = None
    converted: bool
    converted_at: UtcDatetime | None
    contact_id: str | None
    company_id: str | None = None
    deal_id: str | None = None
    custom_fields: JsonData
    created_at: UtcDatetime
    updated_at: UtcDatetime
    version: int

    @classmethod
    def from_lead(cls, lead: Lead) -> "LeadResponse":
        return cls.model_validate(lead.model_dump())


class ActivityResponse(BaseModel):
    id: str
    type: str
    description: str
    created_by: str
    created_at: UtcDatetime
    data: JsonData

    @classmethod
    def from_activity(cls, activity: Activity) -> "ActivityResponse":
        return cls.model_validate(activity.model_dump(exclude={"lead_id"}))


class LeadDetailResponse(LeadResponse):
    activities: list[ActivityResponse]
