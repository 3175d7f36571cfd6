"""HTTP models of CSV exports: the request (the filters of `GET /leads`), the job, the list of jobs."""

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt

from crm.api.models.queries import Cursor, LeadFilterParams
from crm.exports.model import ExportFilters, ExportJob
from crm.exports.service import DownloadLink
from crm.leads.model import UtcDatetime
from crm.queries.lists import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE


class ExportRequest(LeadFilterParams):
    """`POST /exports`: the filters of `GET /leads` as a JSON object (none: every lead the caller may list).
    `q` (search) stands alone, as in the list; there is no `limit` or `cursor`: the export holds them all."""

    # A JSON body is typed (docs/api.md): booleans and numbers as JSON ones, not text as in a query string.
    min_score: Annotated[StrictInt, Field(ge=0, le=99_999)] | None = None
    max_score: Annotated[StrictInt, Field(ge=0, le=99_999)] | None = None
    qualified: StrictBool | None = None
    converted: StrictBool | None = None

    def to_filters(self) -> ExportFilters:
        return ExportFilters.from_query(self.to_query(), self.q)


class ExportAccepted(BaseModel):
    id: str
    state: str = Field(description="queued: follow it at GET /exports/{id}")


class ExportFiltersResponse(BaseModel):
    q: str | None
    status: str | None
    owner: str | None
    source: str | None
    grade: str | None
    min_score: int | None
    max_score: int | None
    qualified: bool | None
    converted: bool | None
    created_from: UtcDatetime | None = Field(description="Inclusive")
    created_to: UtcDatetime | None = Field(
        description="Exclusive (a date sent as created_to: the next midnight)"
    )
    sort: str | None
    order: str


class ExportResponse(BaseModel):
    id: str
    state: str = Field(description="queued, running, completed or failed")
    requested_by: str = Field(description="user:<id> of who asked")
    filters: ExportFiltersResponse
    rows_written: int = Field(description="Rows in the file so far (counted a multipart part at a time)")
    created_at: UtcDatetime
    started_at: UtcDatetime | None
    finished_at: UtcDatetime | None
    download_url: str | None = Field(
        description="When completed: a presigned GET of the CSV (UTF-8 with BOM), good until expires_at"
    )
    expires_at: UtcDatetime | None = Field(description="When download_url stops working")
    error: str | None = Field(description="Why, when failed")

    @classmethod
    def from_job(cls, job: ExportJob, link: DownloadLink | None) -> "ExportResponse":
        return cls(
            id=job.id,
            state=job.state.value,
            requested_by=job.requested_by,
            filters=ExportFiltersResponse.model_validate(job.filters.model_dump()),
            rows_written=job.rows_written,
            created_at=job.created_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
            download_url=link.url if link else None,
            expires_at=link.expires_at if link else None,
            error=job.error,
        )


class ExportListParams(BaseModel):
    """`GET /exports` query parameters."""

    model_config = ConfigDict(extra="forbid")

    limit: int = Field(
        default=DEFAULT_PAGE_SIZE,
        ge=1,
        le=MAX_PAGE_SIZE,
        description=f"Page size, 1-{MAX_PAGE_SIZE} (default {DEFAULT_PAGE_SIZE})",
    )
    cursor: Cursor | None = None


class ExportPageResponse(BaseModel):
    items: list[ExportResponse] = Field(description="Newest first")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page")
