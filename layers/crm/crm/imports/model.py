"""CSV imports in plain Python: the job, the SQS chunk message, how a header names fields, how a row becomes
a submission or a rejection naming the field.

A row goes through the same field rules as `POST /leads` (crm.platform.fields) and then the same capture
service (email dedupe with merge; scoring and routing downstream). Header names match the lead's fields
case- and space-insensitively (`First Name`, `first_name`, `FIRSTNAME`); other columns are kept as custom
fields under their header as written.
"""

import re
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from crm.leads.model import Channel, LeadSubmission, UtcDatetime
from crm.platform.fields import (
    CustomFields,
    Email,
    OptionalEmployeeCount,
    OptionalMoney,
    OptionalPhone,
    OptionalSource,
    OptionalText100,
    OptionalText255,
    PersonName,
)

# The lead's fields a column may name; `lead_source` falls back to the import's default.
FIELDS = (
    "first_name",
    "last_name",
    "email",
    "phone",
    "company",
    "title",
    "industry",
    "employee_count",
    "annual_revenue",
    "lead_source",
    "marketing_consent",
)
MAX_COLUMNS = 100
MAX_ROW_BYTES = 64 * 1024
MAX_REASON_LENGTH = 500


def normalised_header(name: str) -> str:
    """`First Name`, `first_name`, ` FIRSTNAME ` → `firstname`: what field names are matched on."""
    return re.sub(r"[\s_\-]+", "", name.strip().lstrip("\ufeff")).lower()


_BY_NORMALISED = {normalised_header(name): name for name in FIELDS}


class ImportState(StrEnum):
    WAITING_FOR_UPLOAD = "waiting_for_upload"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


class ImportJob(BaseModel):
    """One import. Progress and the checkpoint (`offset`: the byte the next chunk reads from, `next_row`:
    its row number) move together, in one conditional write per chunk."""

    id: str
    state: ImportState = ImportState.WAITING_FOR_UPLOAD
    filename: str
    default_source: str
    requested_by: str  # user:<id>
    requester_subject: str
    object_key: str
    created_at: UtcDatetime
    upload_expires_at: UtcDatetime
    started_at: UtcDatetime | None = None
    finished_at: UtcDatetime | None = None
    columns: list[str] | None = None  # the header, as written
    bytes_total: int | None = None  # the uploaded file's size
    offset: int = 0  # bytes read so far
    eof: bool = False  # every row is counted; what is left is writing the rejects file
    next_row: int = 1  # data rows are numbered from 1 (the header is row 0)
    rows_read: int = 0
    created: int = 0
    merged: int = 0
    rejected: int = 0
    chunks_done: int = 0
    rejects_key: str | None = None
    error: str | None = None
    # The lease's chunk and when that chunk's first attempt began (a retry of it classifies carefully).
    lease_row: int | None = None
    chunk_started_at: UtcDatetime | None = None


class ImportChunk(BaseModel):
    """One SQS message: read the import's file from the checkpoint at `next_row` (a chunk already done is
    dropped; one redelivered while another runs waits for the lease)."""

    import_id: str = Field(min_length=1, max_length=64)
    next_row: int = Field(ge=1)


class RowOutcome(StrEnum):
    CREATED = "created"
    MERGED = "merged"
    REJECTED = "rejected"


class RejectedRow(BaseModel):
    row_number: int
    values: dict[str, str]  # the original row, by header as written
    reason: str


class ImportRow(BaseModel):
    """A row's lead fields, with the rules of `POST /leads` (custom fields: the unmatched columns)."""

    model_config = ConfigDict(extra="forbid")

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
    marketing_consent: bool | None = None


class RowRejected(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason[:MAX_REASON_LENGTH]


class HeaderMap:
    """Which column is which field: the first column whose normalised header names a field takes it; a later
    one naming the same field, and every other column, is a custom field under its header as written."""

    def __init__(self, columns: list[str]) -> None:
        self.columns = [column.strip().lstrip("\ufeff").strip() for column in columns]
        self.fields: dict[int, str] = {}
        taken: set[str] = set()
        for index, column in enumerate(self.columns):
            field = _BY_NORMALISED.get(normalised_header(column))
            if field is not None and field not in taken:
                self.fields[index] = field
                taken.add(field)
        self.missing = [name for name in ("first_name", "last_name", "email") if name not in taken]

    def values(self, cells: list[str]) -> dict[str, str]:
        """The row by header as written (what the rejects file repeats); extra cells are `column_<n>`."""
        named = {}
        for index, cell in enumerate(cells):
            name = self.columns[index] if index < len(self.columns) else f"column_{index + 1}"
            named[name or f"column_{index + 1}"] = cell
        return named

    def submission(self, cells: list[str], default_source: str, submitted_by: str) -> LeadSubmission:
        """The row as a capture (channel `api`, lead_source from its column or the import's default);
        RowRejected names the field that is wrong."""
        if len(cells) > MAX_COLUMNS:
            raise RowRejected(f"row: more than {MAX_COLUMNS} columns")
        known: dict[str, Any] = {}
        custom: dict[str, Any] = {}
        for index, cell in enumerate(cells):
            value = cell.strip()
            field = self.fields.get(index)
            if field is not None:
                if value:
                    known[field] = value
            elif value:
                name = self.columns[index] if index < len(self.columns) else f"column_{index + 1}"
                custom[name or f"column_{index + 1}"] = value
        try:
            row = ImportRow.model_validate({**known, "custom_fields": custom})
        except ValidationError as exc:
            raise RowRejected(_reason(exc)) from None
        return LeadSubmission(
            channel=Channel.API,
            first_name=row.first_name,
            last_name=row.last_name,
            email=row.email,
            lead_source=row.lead_source or default_source,
            submitted_by=submitted_by,
            phone=row.phone,
            company=row.company,
            title=row.title,
            industry=row.industry,
            employee_count=row.employee_count,
            annual_revenue=Decimal(row.annual_revenue) if row.annual_revenue is not None else None,
            custom_fields=dict(row.custom_fields),
            marketing_consent=row.marketing_consent,
        )


def _reason(exc: ValidationError) -> str:
    """`email: value is not a valid email address; first_name: field required` (the first few)."""
    parts = []
    for error in exc.errors()[:3]:
        location = ".".join(str(part) for part in error["loc"]) or "row"
        message = "is required" if error["type"] == "missing" else str(error["msg"])
        parts.append(f"{location}: {message}")
    return "; ".join(parts)


def object_key(import_id: str) -> str:
    return f"uploads/{import_id}.csv"


def rejects_key(import_id: str) -> str:
    return f"rejects/{import_id}.csv"


def import_id_from_key(key: str) -> str | None:
    match = re.fullmatch(r"uploads/([0-9a-f-]{36})\.csv", key)
    return match.group(1) if match else None


def elapsed(start: datetime | None, end: datetime | None) -> float | None:
    return (end - start).total_seconds() if start and end else None
