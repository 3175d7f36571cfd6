"""CSV exports of leads: the job, its filters and its pages, as plain Python (no AWS).

An export job keeps who asked (their id, roles and teams at that moment: the export holds exactly the leads
`GET /leads` would list for them) and the list's filters, and writes one CSV object with an S3 multipart
upload. Its checkpoint is the part written last: `next_part`, the part numbers and ETags so far, and `after`,
the list's sort key after which the next part starts. A part is only ever counted by the conditional write
that moves `next_part` on, so a part written again after a crash or a redelivery replaces itself in S3 and
no row is written twice.
"""

from enum import StrEnum

from pydantic import BaseModel, Field

from crm.leads.index import Sort
from crm.leads.model import LeadStatus, UtcDatetime
from crm.platform.auth import Principal
from crm.queries.lists import CreatedRange, LeadListQuery, Order


class ExportState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


class ExportFilters(BaseModel):
    """The filters of `GET /leads` an export was asked with (`q` alone, or list filters)."""

    q: str | None = None
    status: LeadStatus | None = None
    owner: str | None = None
    source: str | None = None
    grade: str | None = None
    min_score: int | None = None
    max_score: int | None = None
    qualified: bool | None = None
    converted: bool | None = None
    created_from: UtcDatetime | None = None  # inclusive
    created_to: UtcDatetime | None = None  # exclusive
    sort: Sort | None = None
    order: Order = Order.DESC

    @classmethod
    def from_query(cls, query: LeadListQuery, q: str | None = None) -> "ExportFilters":
        return cls(
            q=q,
            status=query.status,
            owner=query.owner,
            source=query.source,
            grade=query.grade,
            min_score=query.min_score,
            max_score=query.max_score,
            qualified=query.qualified,
            converted=query.converted,
            created_from=query.created.start,
            created_to=query.created.end,
            sort=query.sort,
            order=query.order,
        )

    def to_query(self, limit: int) -> LeadListQuery:
        return LeadListQuery(
            status=self.status,
            owner=self.owner,
            source=self.source,
            grade=self.grade,
            min_score=self.min_score,
            max_score=self.max_score,
            qualified=self.qualified,
            converted=self.converted,
            created=CreatedRange(start=self.created_from, end=self.created_to),
            sort=self.sort,
            order=self.order,
            limit=limit,
        )


class Requester(BaseModel):
    """Who asked, as the list decides visibility: id, roles (groups) and teams when the export was asked."""

    subject: str
    groups: list[str]
    teams: list[str] = []

    @classmethod
    def of(cls, principal: Principal) -> "Requester":
        return cls(subject=principal.subject, groups=sorted(principal.groups), teams=sorted(principal.teams))

    def principal(self) -> Principal:
        return Principal(self.subject, None, frozenset(self.groups), frozenset(self.teams))


class UploadedPart(BaseModel):
    number: int
    etag: str


class ExportJob(BaseModel):
    id: str
    state: ExportState = ExportState.QUEUED
    requester: Requester
    requested_by: str  # "user:<sub>", as activities name people
    filters: ExportFilters
    created_at: UtcDatetime
    started_at: UtcDatetime | None = None
    finished_at: UtcDatetime | None = None
    rows_written: int = 0
    object_key: str
    upload_id: str | None = None
    next_part: int = 1  # the part the next page of work writes
    parts: list[UploadedPart] = []
    after: str | None = None  # the list's sort key the next part starts after
    listing_done: bool = False  # the last part is written: only the upload's completion remains
    queued_part: int = 1  # the highest part a message was sent for
    error: str | None = None

    @property
    def finished(self) -> bool:
        return self.state in (ExportState.COMPLETED, ExportState.FAILED)


class ExportPage(BaseModel):
    """One SQS message: write part `part` of export `export_id` (then queue the next part)."""

    export_id: str = Field(min_length=1, max_length=64)
    part: int = Field(ge=1, le=10_000)  # S3's largest part number


def file_name(job: ExportJob) -> str:
    return f"leads-{job.created_at.strftime('%Y%m%d-%H%M%S')}-{job.id[:8]}.csv"
