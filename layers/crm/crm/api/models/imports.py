"""HTTP models of CSV imports: the request, the job with its progress, the list of jobs."""

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

from crm.api.models.queries import Cursor
from crm.imports.model import ImportJob
from crm.imports.service import Link
from crm.leads.model import UtcDatetime
from crm.platform.fields import Source
from crm.queries.lists import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE

_FILENAME = re.compile(r"^[^/\\\x00-\x1f\x7f]{1,251}\.csv$", re.IGNORECASE)
DEFAULT_SOURCE = "csv_import"


class ImportRequest(BaseModel):
    """`POST /imports`."""

    model_config = ConfigDict(extra="forbid")

    filename: str = Field(
        description="The file's name, ending in .csv (no folders); shown back, names the rejects file"
    )
    default_source: Source = Field(
        default=DEFAULT_SOURCE,
        description="lead_source of the rows whose lead_source column is empty or absent",
    )

    @field_validator("filename")
    @classmethod
    def csv_file_name(cls, value: str) -> str:
        value = value.strip()
        if not _FILENAME.match(value):
            raise ValueError("must be a file name ending in .csv (at most 255 characters, no folders)")
        return value


class ImportCreated(BaseModel):
    id: str
    state: str = Field(description="waiting_for_upload: PUT the file to upload_url")
    upload_url: str = Field(description="A presigned S3 PUT of the CSV file (UTF-8), good until expires_at")
    expires_at: UtcDatetime = Field(description="When upload_url stops working")


class ImportResponse(BaseModel):
    id: str
    state: str = Field(description="waiting_for_upload, running, completed or failed")
    filename: str
    default_source: str
    requested_by: str = Field(description="user:<id> of who asked")
    created_at: UtcDatetime
    upload_expires_at: UtcDatetime
    started_at: UtcDatetime | None
    finished_at: UtcDatetime | None
    rows_read: int = Field(description="Data rows read so far (counted a chunk at a time)")
    rows_done: int = Field(description="The same as rows_read")
    rows_total: int | None = Field(description="Data rows in the file, once completed (the file is streamed)")
    bytes_read: int = Field(description="Bytes of the file read so far")
    bytes_total: int | None = Field(description="The file's size, once uploaded")
    created: int = Field(description="Rows that made a new lead")
    merged: int = Field(description="Rows whose email was a lead's already: merged into it")
    rejected: int = Field(description="Rows refused (see rejects_url)")
    columns: list[str] | None = Field(description="The file's header, as written")
    rejects_url: str | None = Field(
        description="When completed with rejected rows: a presigned GET of a CSV of them (the original "
        "columns, then row_number and reason)"
    )
    rejects_expires_at: UtcDatetime | None
    error: str | None = Field(description="Why, when failed (e.g. a header without an email column)")

    @classmethod
    def from_job(cls, job: ImportJob, rejects: Link | None) -> "ImportResponse":
        return cls(
            id=job.id,
            state=job.state.value,
            filename=job.filename,
            default_source=job.default_source,
            requested_by=job.requested_by,
            created_at=job.created_at,
            upload_expires_at=job.upload_expires_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
            rows_read=job.rows_read,
            rows_done=job.rows_read,
            rows_total=job.rows_read if job.state.value == "completed" else None,
            bytes_read=job.offset,
            bytes_total=job.bytes_total,
            created=job.created,
            merged=job.merged,
            rejected=job.rejected,
            columns=job.columns,
            rejects_url=rejects.url if rejects else None,
            rejects_expires_at=rejects.expires_at if rejects else None,
            error=job.error,
        )


class ImportListParams(BaseModel):
    """`GET /imports` query parameters."""

    model_config = ConfigDict(extra="forbid")

    limit: int = Field(
        default=DEFAULT_PAGE_SIZE,
        ge=1,
        le=MAX_PAGE_SIZE,
        description=f"Page size, 1-{MAX_PAGE_SIZE} (default {DEFAULT_PAGE_SIZE})",
    )
    cursor: Cursor | None = None


class ImportPageResponse(BaseModel):
    items: list[ImportResponse] = Field(description="Newest first")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page")
