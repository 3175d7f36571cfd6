"""HTTP models of the reading API: list and analytics query parameters, pages and reports.

Query-parameter models are strict (an unknown parameter is a 422 naming it) and documented as OpenAPI
parameters through the `x-query-model` extension (crm.api.docs).
"""

import re
from datetime import UTC, date, timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from crm.analytics.counters import DEFAULT_RANGE_DAYS, MAX_RANGE_DAYS, FunnelFigures, GroupBy
from crm.analytics.service import FunnelReport, SpeedFigures, SpeedReport
from crm.api.models.leads import ActivityResponse, LeadResponse
from crm.leads.index import Sort
from crm.leads.model import LeadStatus
from crm.platform import clock
from crm.platform.errors import InvalidInput
from crm.platform.fields import FIRST_YEAR, LAST_YEAR, Day, Source
from crm.queries.lists import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    CreatedRange,
    LeadListQuery,
    Order,
    created_bound,
)

Grade = Literal["A+", "A", "B", "C", "D", "F"]  # crm.scoring.engine's grades (a unit test keeps them equal)
_DATE_OR_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}([T ][0-9:.]+(Z|[+-]\d{2}:?\d{2})?)?$")
# No length or pattern here: crm.platform.cursor judges every cursor (one 400 for anything not ours).
Cursor = Annotated[str, Field(description="`next_cursor` of the previous page")]
PageSize = Annotated[
    int,
    Field(ge=1, le=MAX_PAGE_SIZE, description=f"Page size, 1-{MAX_PAGE_SIZE} (default {DEFAULT_PAGE_SIZE})"),
]


def _date_or_time(value: str | None) -> str | None:
    if value is None:
        return None
    text = value.strip()
    if not _DATE_OR_TIME.match(text):
        raise ValueError("must be a date (2026-11-25) or an ISO-8601 date-time (2026-11-25T09:30:00Z)")
    try:
        start = created_bound(text, upper=False)
        created_bound(text, upper=True)
    except ValueError:
        raise ValueError("is not a real date or time") from None
    except OverflowError:  # the end of 9999-12-31, or a time past the year 9999 once in UTC
        raise ValueError(f"must be before the end of the year {LAST_YEAR}") from None
    if start.year < FIRST_YEAR:
        raise ValueError(f"must not be before the year {FIRST_YEAR}")
    return text


class LeadFilterParams(BaseModel):
    """The filters of `GET /leads` (and of `POST /exports`, which exports that list)."""

    model_config = ConfigDict(extra="forbid")

    q: (
        Annotated[
            str,
            Field(
                min_length=1,
                max_length=100,
                description="Prefix search over first name, last name, email and company (case and accents "
                "ignored); combines only with limit and cursor",
            ),
        ]
        | None
    ) = None
    status: LeadStatus | None = None
    owner: (
        Annotated[
            str,
            Field(
                min_length=1,
                max_length=128,
                pattern=r"^[A-Za-z0-9_.@:\-]+$",
                description="`me`, `unassigned` or a user id",
            ),
        ]
        | None
    ) = None
    source: Source | None = None
    grade: Grade | None = Field(default=None, description="A+, A, B, C, D or F (listed by score)")
    min_score: Annotated[int, Field(ge=0, le=99_999)] | None = None
    max_score: Annotated[int, Field(ge=0, le=99_999)] | None = None
    qualified: bool | None = None
    converted: bool | None = None
    created_from: Annotated[str, Field(description="Date or date-time, inclusive")] | None = None
    created_to: Annotated[str, Field(description="Date (the whole day) or date-time, inclusive")] | None = (
        None
    )
    sort: Sort | None = Field(
        default=None, description="created_at (default) or score (default with score filters)"
    )
    order: Order = Order.DESC

    @field_validator("created_from", "created_to")
    @classmethod
    def date_or_time(cls, value: str | None) -> str | None:
        return _date_or_time(value)

    def list_parameters_sent(self) -> list[str]:
        """The list filters given alongside `q` (which stands alone)."""
        skip = {"q", "limit", "cursor"}
        return [
            name for name in type(self).model_fields if name not in skip and name in self.model_fields_set
        ]

    def to_query(self, limit: int = DEFAULT_PAGE_SIZE) -> LeadListQuery:
        if self.min_score is not None and self.max_score is not None and self.min_score > self.max_score:
            raise InvalidInput.single("min_score", "must not be greater than max_score")
        if self.created_from and self.created_to:
            start = created_bound(self.created_from, upper=False)
            if created_bound(self.created_to, upper=True) <= start:
                raise InvalidInput.single("created_from", "must be before created_to")
        return LeadListQuery(
            status=self.status,
            owner=self.owner,
            source=self.source,
            grade=self.grade,
            min_score=self.min_score,
            max_score=self.max_score,
            qualified=self.qualified,
            converted=self.converted,
            created=CreatedRange(
                start=created_bound(self.created_from, upper=False) if self.created_from else None,
                end=created_bound(self.created_to, upper=True) if self.created_to else None,
            ),
            sort=self.sort,
            order=self.order,
            limit=limit,
        )


class LeadListParams(LeadFilterParams):
    """`GET /leads` query parameters."""

    limit: PageSize = DEFAULT_PAGE_SIZE
    cursor: Cursor | None = None

    def to_query(self, limit: int | None = None) -> LeadListQuery:
        return super().to_query(self.limit if limit is None else limit)


class PageParams(BaseModel):
    """`GET /leads/{id}/activities` query parameters."""

    model_config = ConfigDict(extra="forbid")

    limit: PageSize = DEFAULT_PAGE_SIZE
    cursor: Cursor | None = None


class AnalyticsRangeParams(BaseModel):
    """A range of capture days (UTC), both ends included; the last 30 days by default."""

    model_config = ConfigDict(extra="forbid", validate_by_name=True)

    from_: Day | None = Field(default=None, alias="from", description="First capture day (YYYY-MM-DD)")
    to: Day | None = Field(default=None, description="Last capture day, included (default: today)")

    @field_validator("from_", "to", mode="before")
    @classmethod
    def plain_date(cls, value: Any) -> Any:
        if isinstance(value, str) and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.strip()):
            raise ValueError("must be a date: YYYY-MM-DD")
        return value

    def days(self) -> tuple[date, date]:
        """The range, checked: `from` not after `to`, at most MAX_RANGE_DAYS days."""
        end = self.to or clock.now().astimezone(UTC).date()
        start = self.from_ or end - timedelta(days=DEFAULT_RANGE_DAYS - 1)
        if start > end:
            raise InvalidInput.single("from", "must not be after to")
        if (end - start).days + 1 > MAX_RANGE_DAYS:
            raise InvalidInput.single("from", f"the range may cover at most {MAX_RANGE_DAYS} days")
        return start, end


class FunnelParams(AnalyticsRangeParams):
    group_by: GroupBy | None = Field(default=None, description="source, owner, team or day")


# ---------------------------------------------------------------- responses


class LeadPageResponse(BaseModel):
    items: list[LeadResponse]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page")


class ActivityPageResponse(BaseModel):
    items: list[ActivityResponse]
    next_cursor: str | None


class FunnelGroup(BaseModel):
    key: str
    leads: int
    by_status: dict[str, int]
    qualified: int
    converted: int
    qualification_rate: float
    conversion_rate: float

    @classmethod
    def from_figures(cls, figures: FunnelFigures) -> "FunnelGroup":
        return cls(
            key=figures.key,
            leads=figures.leads,
            by_status=figures.by_status,
            qualified=figures.counts.get("qualified", 0),
            converted=figures.counts.get("converted", 0),
            qualification_rate=figures.rate("qualified"),
            conversion_rate=figures.rate("converted"),
        )


class FunnelResponse(BaseModel):
    model_config = ConfigDict(validate_by_name=True, serialize_by_alias=True)

    from_: date = Field(alias="from")
    to: date
    group_by: GroupBy | None
    total: FunnelGroup
    groups: list[FunnelGroup]

    @classmethod
    def from_report(cls, report: FunnelReport) -> "FunnelResponse":
        return cls(
            from_=report.start,
            to=report.end,
            group_by=report.group_by,
            total=FunnelGroup.from_figures(report.total),
            groups=[FunnelGroup.from_figures(group) for group in report.groups],
        )


class SourceFiguresResponse(BaseModel):
    source: str
    leads: int
    qualified: int
    converted: int
    conversion_rate: float


class SourcesResponse(BaseModel):
    model_config = ConfigDict(validate_by_name=True, serialize_by_alias=True)

    from_: date = Field(alias="from")
    to: date
    sources: list[SourceFiguresResponse]

    @classmethod
    def from_figures(cls, start: date, end: date, figures: list[FunnelFigures]) -> "SourcesResponse":
        return cls(
            from_=start,
            to=end,
            sources=[
                SourceFiguresResponse(
                    source=f.key,
                    leads=f.leads,
                    qualified=f.counts.get("qualified", 0),
                    converted=f.counts.get("converted", 0),
                    conversion_rate=f.rate("converted"),
                )
                for f in figures
            ],
        )


class SpeedFiguresResponse(BaseModel):
    contacted: int = Field(description="Leads of the range contacted so far")
    median_seconds: float | None = Field(description="Median time from capture to first contact (±5%)")
    p90_seconds: float | None = Field(description="90th percentile (±5%)")
    mean_seconds: float | None

    @classmethod
    def from_figures(cls, figures: SpeedFigures) -> "SpeedFiguresResponse":
        return cls(
            contacted=figures.contacted,
            median_seconds=figures.median_seconds,
            p90_seconds=figures.p90_seconds,
            mean_seconds=figures.mean_seconds,
        )


class RepSpeedResponse(SpeedFiguresResponse):
    rep: str = Field(description="The rep's user id (`unassigned`: contacted before anyone owned it)")


class SpeedResponse(BaseModel):
    model_config = ConfigDict(validate_by_name=True, serialize_by_alias=True)

    from_: date = Field(alias="from")
    to: date
    overall: SpeedFiguresResponse
    reps: list[RepSpeedResponse]

    @classmethod
    def from_report(cls, report: SpeedReport) -> "SpeedResponse":
        return cls(
            from_=report.start,
            to=report.end,
            overall=SpeedFiguresResponse.from_figures(report.overall),
            reps=[
                RepSpeedResponse(rep=figures.key, **SpeedFiguresResponse.from_figures(figures).model_dump())
                for figures in report.reps
            ],
        )
