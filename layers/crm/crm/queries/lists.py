"""Lead lists: which index answers which filters for which caller (plain Python, no AWS).

`plan_list` turns a caller and a `LeadListQuery` into a `ListPlan`: one index, the partitions to read
(the caller's visibility is part of every partition key, so a list never holds a lead the caller may not
see), and the sort-key range. A combination that no index serves is refused with `BadQuery` naming the
parameters, never answered by scanning or by filtering pages.

Who sees what (crm.leads.permissions): an admin everything; a manager the leads of their teams and of no team
yet; a rep the leads assigned to them and their teams' unassigned queue. A caller with several roles lists
with the broadest one.

| caller  | filters                                        | index (sort)                                   |
|---------|------------------------------------------------|------------------------------------------------|
| admin   | status/qualified/converted, grade, score range | AllStageByCreated / AllStageByScore            |
| admin   | owner=<user or me> [+ status/qualified/conv.]  | HolderByCreated/ByScore [HolderStageByCreated] |
| admin   | owner=unassigned                               | UnassignedByCreated (created_at)               |
| admin   | source                                         | SourceByCreated (created_at)                   |
| manager | status/qualified/converted, grade, score range | TeamStageByCreated / TeamStageByScore          |
| manager | owner=unassigned [+ status/qualified/conv.]    | HolderByCreated/ByScore [HolderStageByCreated] |
| manager | owner=<user or me>                             | TeamOwnerByCreated (created_at)                |
| rep     | owner=me/unassigned/none, grade, score range   | HolderByCreated / HolderByScore                |
| rep     | status/qualified/converted [+ owner]           | HolderStageByCreated (created_at)              |

Every list also takes a created_at range (with sort=created_at) or a score range / grade (with
sort=score), a page size and a cursor. `q` (search) stands alone: see crm.queries.search.
"""

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum

from crm.leads.index import (
    ALL_STAGE_BY_CREATED,
    ALL_STAGE_BY_SCORE,
    HOLDER_BY_CREATED,
    HOLDER_BY_SCORE,
    HOLDER_STAGE_BY_CREATED,
    SOURCE_BY_CREATED,
    STAGE_STATE,
    TEAM_OWNER_BY_CREATED,
    TEAM_STAGE_BY_CREATED,
    TEAM_STAGE_BY_SCORE,
    UNASSIGNED_BY_CREATED,
    ListIndex,
    Sort,
    Stage,
    all_stage_pk,
    owner_holder_pk,
    owner_stage_pk,
    queue_holder_pk,
    queue_stage_pk,
    score_prefix,
    source_pk,
    stages_matching,
    team_owner_pk,
    team_stage_pk,
    unassigned_owner_pk,
)
from crm.leads.model import GRADE_THRESHOLDS, LOWEST_GRADE, Lead, LeadStatus
from crm.leads.permissions import can_view
from crm.platform import clock
from crm.platform.auth import Principal, Role
from crm.platform.errors import BadQuery, FieldProblem, Forbidden

DEFAULT_PAGE_SIZE = 25
MAX_PAGE_SIZE = 100
OWNER_ME = "me"
OWNER_UNASSIGNED = "unassigned"
GRADES = (*(grade for _, grade in GRADE_THRESHOLDS), LOWEST_GRADE)


class Order(StrEnum):
    ASC = "asc"
    DESC = "desc"


def grade_band(grade: str) -> tuple[int, int | None]:
    """The score range [low, high] (high None: no upper bound) that a grade stands for."""
    upper: int | None = None
    for threshold, name in GRADE_THRESHOLDS:
        if name == grade:
            return threshold, upper
        upper = threshold - 1
    if grade == LOWEST_GRADE:
        return 0, upper
    raise ValueError(f"unknown grade {grade}")


@dataclass(frozen=True)
class CreatedRange:
    """created_at bounds: `start` inclusive, `end` exclusive (either may be open)."""

    start: datetime | None = None
    end: datetime | None = None


def created_bound(text: str, upper: bool) -> datetime:
    """A date (the whole day: an upper bound ends at the next midnight) or an ISO-8601 date-time."""
    value = text.strip()
    if len(value) == 10:
        day = date.fromisoformat(value)
        moment = datetime.combine(day, time(), tzinfo=UTC)
        return moment + timedelta(days=1) if upper else moment
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    parsed = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)  # naive: UTC
    return parsed + timedelta(microseconds=1) if upper else parsed


@dataclass(frozen=True)
class LeadListQuery:
    status: LeadStatus | None = None
    owner: str | None = None  # a user id, "me" or "unassigned"
    source: str | None = None
    grade: str | None = None
    min_score: int | None = None
    max_score: int | None = None
    qualified: bool | None = None
    converted: bool | None = None
    created: CreatedRange = field(default_factory=CreatedRange)
    sort: Sort | None = None  # None: by score when a score filter is given, else by created_at
    order: Order = Order.DESC
    limit: int = DEFAULT_PAGE_SIZE

    @property
    def has_stage_filter(self) -> bool:
        return self.status is not None or self.qualified is not None or self.converted is not None

    @property
    def has_score_filter(self) -> bool:
        return self.grade is not None or self.min_score is not None or self.max_score is not None

    @property
    def has_created_filter(self) -> bool:
        return self.created.start is not None or self.created.end is not None

    def stage_filter_names(self) -> list[str]:
        names = [("status", self.status), ("qualified", self.qualified), ("converted", self.converted)]
        return [name for name, value in names if value is not None]

    def effective_sort(self) -> Sort:
        if self.sort is not None:
            return self.sort
        return Sort.SCORE if self.has_score_filter else Sort.CREATED_AT

    def fingerprint_parts(self) -> dict[str, object]:
        return {
            "status": self.status,
            "owner": self.owner,
            "source": self.source,
            "grade": self.grade,
            "min_score": self.min_score,
            "max_score": self.max_score,
            "qualified": self.qualified,
            "converted": self.converted,
            "created_from": self.created.start,
            "created_to": self.created.end,
            "sort": self.effective_sort(),
            "order": self.order,
            "limit": self.limit,
        }


@dataclass(frozen=True)
class ListPlan:
    """Read `partitions` of `index` between `lower` and `upper` (inclusive sort-key bounds), merged."""

    index: ListIndex
    partitions: tuple[str, ...]
    lower: str | None
    upper: str | None
    descending: bool


def list_role(principal: Principal) -> Role:
    for role in (Role.ADMIN, Role.MANAGER, Role.REP):
        if role in principal.roles:
            return role
    raise Forbidden("Only admins, managers and reps may list leads")


def _refuse(message: str, *names: str) -> BadQuery:
    return BadQuery([FieldProblem(name, message) for name in names], f"{', '.join(names)}: {message}")


def _check_ranges(query: LeadListQuery) -> Sort:
    sort = query.effective_sort()
    if sort is Sort.SCORE and query.has_created_filter:
        names = [
            n for n, v in (("created_from", query.created.start), ("created_to", query.created.end)) if v
        ]
        raise _refuse("a created_at range needs sort=created_at (score lists are ordered by score)", *names)
    if sort is Sort.CREATED_AT and query.has_score_filter:
        names = [
            n
            for n, v in (
                ("grade", query.grade),
                ("min_score", query.min_score),
                ("max_score", query.max_score),
            )
            if v is not None
        ]
        raise _refuse("grade and score ranges need sort=score (they are ranges of the score index)", *names)
    return sort


def _score_bounds(query: LeadListQuery) -> tuple[str | None, str | None]:
    low, high = query.min_score, query.max_score
    graded_only = False
    if query.grade is not None:
        band_low, band_high = grade_band(query.grade)
        graded_only = True
        low = band_low if low is None else max(low, band_low)
        if band_high is not None:
            high = band_high if high is None else min(high, band_high)
    lower: str | None = None
    if low is not None:
        # '#' marks graded leads, '!' leads not scored yet: a grade never lists an unscored lead.
        lower = score_prefix(low) + ("#" if graded_only else "")
    elif graded_only:
        lower = score_prefix(0) + "#"
    upper = score_prefix(high) + "~" if high is not None else None
    return lower, upper


def _created_bounds(query: LeadListQuery) -> tuple[str | None, str | None]:
    start, end = query.created.start, query.created.end
    # CREATEDSK is "<created_at>#<id>": a bare timestamp sorts before every key created at that moment.
    return (
        clock.isoformat(start) if start else None,
        clock.isoformat(end) if end else None,
    )


def _owner(query: LeadListQuery, principal: Principal) -> str | None:
    if query.owner is None or query.owner == OWNER_UNASSIGNED:
        return query.owner
    return principal.subject if query.owner == OWNER_ME else query.owner


@dataclass(frozen=True)
class _Planner:
    principal: Principal
    query: LeadListQuery
    sort: Sort
    lower: str | None
    upper: str | None
    stages: list[Stage]
    shards: range
    owner: str | None

    @property
    def teams(self) -> list[str | None]:
        return [*sorted(self.principal.teams), None]

    def plan(self, index: ListIndex, partitions: list[str]) -> ListPlan:
        return ListPlan(index, tuple(partitions), self.lower, self.upper, self.query.order is Order.DESC)

    def by_sort(self, by_created: ListIndex, by_score: ListIndex, partitions: list[str]) -> ListPlan:
        return self.plan(by_score if self.sort is Sort.SCORE else by_created, partitions)

    def created_only(self, what: str, *names: str) -> None:
        if self.sort is not Sort.CREATED_AT:
            raise _refuse(f"{what} are only listed by created_at; use sort=created_at", *names, "sort")

    def source(self, role: Role) -> ListPlan:
        query = self.query
        others = (["owner"] if query.owner is not None else []) + query.stage_filter_names()
        if role is not Role.ADMIN:
            raise _refuse("only admins list by source (see /analytics/sources for figures)", "source")
        if others:
            raise _refuse("source cannot be combined with these filters", "source", *others)
        self.created_only("leads of a source", "source")
        assert query.source is not None
        return self.plan(SOURCE_BY_CREATED, [source_pk(query.source, n) for n in self.shards])

    def admin(self) -> ListPlan:
        query, owner = self.query, self.owner
        if owner == OWNER_UNASSIGNED:
            if query.has_stage_filter:
                raise _refuse("cannot be combined with owner=unassigned", *query.stage_filter_names())
            self.created_only("unassigned leads", "owner")
            return self.plan(UNASSIGNED_BY_CREATED, [unassigned_owner_pk(n) for n in self.shards])
        if owner is not None:
            if query.has_stage_filter:
                self.created_only("an owner's leads by status", "owner", *query.stage_filter_names())
                return self.plan(HOLDER_STAGE_BY_CREATED, [owner_stage_pk(owner, s) for s in self.stages])
            return self.by_sort(HOLDER_BY_CREATED, HOLDER_BY_SCORE, [owner_holder_pk(owner)])
        partitions = [all_stage_pk(s, n) for s in self.stages for n in self.shards]
        return self.by_sort(ALL_STAGE_BY_CREATED, ALL_STAGE_BY_SCORE, partitions)

    def manager(self) -> ListPlan:
        query, owner, teams = self.query, self.owner, self.teams
        if owner == OWNER_UNASSIGNED:
            if query.has_stage_filter:
                self.created_only("the unassigned queue by status", "owner", *query.stage_filter_names())
                partitions = [
                    queue_stage_pk(t, s, n) for t in teams for s in self.stages for n in self.shards
                ]
                return self.plan(HOLDER_STAGE_BY_CREATED, partitions)
            partitions = [queue_holder_pk(t, n) for t in teams for n in self.shards]
            return self.by_sort(HOLDER_BY_CREATED, HOLDER_BY_SCORE, partitions)
        if owner is not None:
            if query.has_stage_filter:
                names = query.stage_filter_names()
                raise _refuse("managers list a rep's leads without status filters", *names)
            self.created_only("a rep's leads", "owner")
            return self.plan(TEAM_OWNER_BY_CREATED, [team_owner_pk(t, owner) for t in teams])
        partitions = [team_stage_pk(t, s, n) for t in teams for s in self.stages for n in self.shards]
        return self.by_sort(TEAM_STAGE_BY_CREATED, TEAM_STAGE_BY_SCORE, partitions)

    def rep(self) -> ListPlan:
        """Their own leads and their teams' unassigned queue, nothing else."""
        query, owner, me, teams = self.query, self.owner, self.principal.subject, self.teams
        own = owner in (None, me)
        queue = owner in (None, OWNER_UNASSIGNED)
        if query.has_stage_filter:
            self.created_only("a rep's leads by status", *query.stage_filter_names())
            partitions = [owner_stage_pk(me, s) for s in self.stages] if own else []
            if queue:
                partitions += [
                    queue_stage_pk(t, s, n) for t in teams for s in self.stages for n in self.shards
                ]
            return self.plan(HOLDER_STAGE_BY_CREATED, partitions)
        partitions = [owner_holder_pk(me)] if own else []
        if queue:
            partitions += [queue_holder_pk(t, n) for t in teams for n in self.shards]
        return self.by_sort(HOLDER_BY_CREATED, HOLDER_BY_SCORE, partitions)


def plan_list(principal: Principal, query: LeadListQuery, shards: int) -> ListPlan:
    """The index and partitions that hold exactly the leads this caller may see and asked for."""
    role = list_role(principal)
    sort = _check_ranges(query)
    lower, upper = _score_bounds(query) if sort is Sort.SCORE else _created_bounds(query)
    planner = _Planner(
        principal=principal,
        query=query,
        sort=sort,
        lower=lower,
        upper=upper,
        stages=stages_matching(query.status, query.qualified, query.converted),
        shards=range(shards),
        owner=_owner(query, principal),
    )
    if query.source is not None:
        return planner.source(role)
    if role is Role.ADMIN:
        return planner.admin()
    if role is Role.MANAGER:
        return planner.manager()
    return planner.rep()


def matches(query: LeadListQuery, lead: Lead, principal: Principal) -> bool:
    """Whether a lead read back for a page still belongs on it.

    The plan already selects exactly the right leads; this only guards against the index lagging behind a
    write by a moment (GSIs are eventually consistent): a lead reassigned or moved on a split second ago
    is left out rather than shown to someone who may no longer see it.
    """
    if not can_view(principal, lead):
        return False
    state = (lead.lead_status, lead.qualified, lead.converted)
    allowed = {
        STAGE_STATE[stage] for stage in stages_matching(query.status, query.qualified, query.converted)
    }
    if query.has_stage_filter and state not in allowed:
        return False
    owner = _owner(query, principal)
    if owner == OWNER_UNASSIGNED and lead.assigned_to is not None:
        return False
    if owner not in (None, OWNER_UNASSIGNED) and lead.assigned_to != owner:
        return False
    if query.source is not None and lead.lead_source.lower() != query.source.lower():
        return False
    if query.grade is not None and lead.grade != query.grade:
        return False
    if query.min_score is not None and lead.score < query.min_score:
        return False
    if query.max_score is not None and lead.score > query.max_score:
        return False
    start, end = query.created.start, query.created.end
    return not ((start and lead.created_at < start) or (end and lead.created_at >= end))
