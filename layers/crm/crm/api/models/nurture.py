"""HTTP models of nurture sequences and unsubscribe (input and output), apart from the domain.

A new sequence is
`crm.nurture.sequences.NurtureSequenceInput` (shared with the domain's checks).
"""

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator

from crm.leads.criteria import MAX_CONDITIONS, MAX_PRIORITY, Condition
from crm.leads.model import UtcDatetime
from crm.nurture.sequences import MAX_STEPS, NurtureSequence, NurtureStep
from crm.platform.fields import StrictInteger, Text100


class UpdateNurtureSequenceRequest(BaseModel):
    """A partial change: fields left out keep their value; `steps` and `conditions` are replaced whole."""

    model_config = ConfigDict(extra="forbid")

    name: Text100 | None = None
    active: StrictBool | None = None
    priority: StrictInteger | None = Field(default=None, ge=0, le=MAX_PRIORITY)
    conditions: list[Condition] | None = Field(default=None, max_length=MAX_CONDITIONS)
    steps: list[NurtureStep] | None = Field(default=None, min_length=1, max_length=MAX_STEPS)
    version: StrictInteger | None = Field(
        default=None, ge=1, description="the version you read (or If-Match)"
    )

    @field_validator("name", "active", "priority", "conditions", "steps", mode="before")
    @classmethod
    def not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("may not be null")
        return value

    def changes(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True, exclude={"version"})


class NurtureSequenceResponse(BaseModel):
    id: str
    name: str
    active: bool
    priority: int
    conditions: list[Condition]
    steps: list[NurtureStep]
    created_at: UtcDatetime
    updated_at: UtcDatetime
    updated_by: str | None = Field(default=None, description="Who made the last change (`user:<sub>`)")
    version: int

    @classmethod
    def from_sequence(cls, sequence: NurtureSequence) -> "NurtureSequenceResponse":
        return cls.model_validate(sequence.model_dump())


class NurtureSequenceListResponse(BaseModel):
    # In the order they are tried: ascending priority, then creation.
    items: list[NurtureSequenceResponse]
    next_cursor: str | None = Field(default=None, description="Always null: the whole list is one page")
    sequences: list[NurtureSequenceResponse] = Field(description="Deprecated alias of `items` (one release)")


class UnsubscribeForm(BaseModel):
    """`POST /unsubscribe`: RFC 8058 one-click sends `List-Unsubscribe=One-Click` with the token in the
    link's query string; the token may also come in the (form or JSON) body."""

    model_config = ConfigDict(populate_by_name=True)

    list_unsubscribe: str | None = Field(
        default=None, alias="List-Unsubscribe", description="`One-Click` from a mail client"
    )
    token: str | None = Field(
        default=None, max_length=200, description="the link's token, if not in the query"
    )


class UnsubscribeLinkQuery(BaseModel):
    """`GET /unsubscribe?token=…` (documents the query; the route checks the token itself)."""

    token: str = Field(
        max_length=200, description="The link's signed token (`<lead id>.<signature>`), from the email"
    )


class OneClickUnsubscribeQuery(BaseModel):
    """`POST /unsubscribe?token=…`: the token is in the query, or else in the body."""

    token: str | None = Field(
        default=None,
        max_length=200,
        description="The signed token of the email's List-Unsubscribe URL (or send it in the body)",
    )


class UnsubscribeResponse(BaseModel):
    unsubscribed: bool = True
    message: str = "You are unsubscribed: you will not get marketing email from us any more."
