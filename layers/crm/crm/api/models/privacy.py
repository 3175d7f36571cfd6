"""HTTP models of a person's data on request: erasure requests and jobs, the export's query."""

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from crm.leads.model import UtcDatetime
from crm.platform.fields import Email, LongText
from crm.privacy.model import ErasureJob


class ErasureRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Email
    reason: LongText = Field(min_length=1, max_length=1000, description="Why (a ticket, the request's date)")
    include_converted: StrictBool = Field(
        default=False,
        description="true: also delete the contact made from the lead and the person's name on its deal; "
        "false: a converted lead's contact is kept (the job says so in contacts_kept)",
    )


class ErasureAccepted(BaseModel):
    id: str
    state: str


class ErasureJobResponse(BaseModel):
    id: str
    state: str = Field(description="queued, running, completed or failed")
    email_hash: str = Field(description="The keyed hash of the normalised email: the job holds no email")
    reason: str
    include_converted: bool
    requested_by: str
    requested_at: UtcDatetime
    completed_at: UtcDatetime | None
    leads_erased: int
    contacts_kept: int = Field(description="Converted leads whose contact was kept (include_converted false)")
    erased: dict[str, int] = Field(description="Items erased by kind (for a deal: its person fields)")

    @classmethod
    def from_job(cls, job: ErasureJob) -> "ErasureJobResponse":
        return cls.model_validate(job.model_dump())


class ExportQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Email = Field(description="The person's email address")


class ExportResponse(BaseModel):
    model_config = ConfigDict(extra="allow")

    email_hash: str
    lead: dict[str, Any] | None
    activities: list[dict[str, Any]]
    score_ledger: dict[str, Any] | None
    tasks: list[dict[str, Any]]
    emails_sent: list[dict[str, Any]]
    nurture_enrollment: dict[str, Any] | None
    consent: dict[str, Any]
    contact: dict[str, Any] | None
    deal: dict[str, Any] | None
    other_records: list[dict[str, Any]]
