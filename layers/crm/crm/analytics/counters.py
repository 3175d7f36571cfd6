"""Funnel, sources and speed-to-lead figures as counters and small histograms (plain Python, no AWS).

Figures are kept per *cohort*: the day (UTC) a lead was captured. A lead contributes, for its cohort day
and month, to one counter item per dimension (`all`, its `source`, its `owner` or `unassigned`, its `team`
or `none`): `leads`, one `s_<status>` for its current status, `qualified` and `converted`. A change of a
lead moves its contribution (new minus old), so the counters always describe the leads as they are now,
and a dashboard reads a handful of items instead of the leads.

Speed to lead is the time from capture to first contact (the status leaving `new`; a chat capture is a
contact at once). Each first contact adds one observation to a histogram of its cohort day and month,
overall and for the lead's rep at that moment. A lead contacted before anyone held it (a chat lead, contacted
at capture and assigned a moment later) is credited to the first rep it is assigned to, so a rep's figures
count the leads the funnel's `group_by=owner` counts under them. Buckets grow by 10%, so a median or p90
read back from them is within 5% of the exact figure, and a histogram stays a few dozen numbers however many
leads it counts.
"""

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import StrEnum

from crm.leads.model import Lead, LeadStatus

BUCKET_GROWTH = 1.1
MAX_RANGE_DAYS = 366
DEFAULT_RANGE_DAYS = 30
STATUS_FIELDS = {status: f"s_{status.value}" for status in LeadStatus}
COUNTER_FIELDS = ("leads", *STATUS_FIELDS.values(), "qualified", "converted")
UNASSIGNED = "unassigned"
NO_TEAM = "none"


class Dimension(StrEnum):
    ALL = "all"
    SOURCE = "source"
    OWNER = "owner"
    TEAM = "team"


class GroupBy(StrEnum):
    SOURCE = "source"
    OWNER = "owner"
    TEAM = "team"
    DAY = "day"


def cohort_day(lead: Lead) -> date:
    return lead.created_at.date()


def dimension_values(lead: Lead) -> dict[Dimension, str]:
    return {
        Dimension.ALL: "all",
        Dimension.SOURCE: lead.lead_source.lower(),
        Dimension.OWNER: lead.assigned_to or UNASSIGNED,
        Dimension.TEAM: lead.team or NO_TEAM,
    }


def lead_counts(lead: Lead) -> Counter[str]:
    counts: Counter[str] = Counter(leads=1)
    counts[STATUS_FIELDS[lead.lead_status]] = 1
    counts["qualified"] = int(lead.qualified)
    counts["converted"] = int(lead.converted)
    return counts


CounterKey = tuple[date, Dimension, str]  # (cohort day, dimension, value)


def contributions(lead: Lead | None) -> dict[CounterKey, Counter[str]]:
    if lead is None:
        return {}
    day, counts = cohort_day(lead), lead_counts(lead)
    return {(day, dimension, value): counts for dimension, value in dimension_values(lead).items()}


def counter_delta(old: Lead | None, new: Lead | None) -> dict[CounterKey, dict[str, int]]:
    """What a change of a lead does to the counters: its new contribution minus its old one."""
    before, after = contributions(old), contributions(new)
    delta: dict[CounterKey, dict[str, int]] = {}
    for key in before.keys() | after.keys():
        fields = {
            name: after.get(key, Counter())[name] - before.get(key, Counter())[name]
            for name in COUNTER_FIELDS
        }
        nonzero = {name: value for name, value in fields.items() if value}
        if nonzero:
            delta[key] = nonzero
    return delta


@dataclass(frozen=True)
class FirstContact:
    day: date  # the lead's cohort day
    rep: str  # who held the lead when it was contacted ("unassigned" if nobody)
    seconds: float


def first_contact(old: Lead | None, new: Lead | None) -> FirstContact | None:
    """The first contact this change makes, if it is one: a status leaving `new` (or born past it)."""
    if new is None or new.lead_status is LeadStatus.NEW:
        return None
    if old is not None and old.lead_status is not LeadStatus.NEW:
        return None
    seconds = max(0.0, (new.updated_at - new.created_at).total_seconds())
    return FirstContact(day=cohort_day(new), rep=new.assigned_to or UNASSIGNED, seconds=seconds)


@dataclass(frozen=True)
class ContactCredit:
    """A first contact counted while nobody held the lead, to be moved to the rep it is now assigned to."""

    day: date  # the lead's cohort day
    rep: str


def contact_credit(old: Lead | None, new: Lead | None) -> ContactCredit | None:
    """The credit this change makes: the lead gets its first rep after it was contacted unassigned."""
    if old is None or new is None or old.assigned_to or not new.assigned_to:
        return None
    if old.lead_status is LeadStatus.NEW:
        return None  # not contacted before this change (a contact in it is counted under the new rep)
    return ContactCredit(day=cohort_day(new), rep=new.assigned_to)


# ---------------------------------------------------------------- histograms


def bucket_of(seconds: float) -> int:
    """Bucket 0 holds [0, 1) s; bucket i >= 1 holds [1.1^(i-1), 1.1^i) s."""
    if seconds < 1:
        return 0
    return 1 + math.floor(math.log(seconds) / math.log(BUCKET_GROWTH) + 1e-9)


def bucket_value(bucket: int) -> float:
    """A bucket's representative duration: the geometric middle of its bounds."""
    if bucket <= 0:
        return 0.0
    return BUCKET_GROWTH ** (bucket - 0.5)


@dataclass
class Histogram:
    buckets: Counter[int] = field(default_factory=Counter)
    total_seconds: float = 0.0

    @property
    def count(self) -> int:
        return sum(self.buckets.values())

    def add(self, other: "Histogram") -> None:
        self.buckets.update(other.buckets)
        self.total_seconds += other.total_seconds

    def percentile(self, fraction: float) -> float | None:
        """Nearest-rank percentile (0 < fraction <= 1), as its bucket's representative duration."""
        count = self.count
        if count == 0:
            return None
        rank = max(1, math.ceil(fraction * count))
        seen = 0
        for bucket in sorted(self.buckets):
            seen += self.buckets[bucket]
            if seen >= rank:
                return round(bucket_value(bucket), 1)
        return None  # unreachable: the ranks add up to count


# ---------------------------------------------------------------- date ranges


@dataclass(frozen=True)
class Period:
    """Part of a date range as stored: a whole month (`days` None) or some days of one month."""

    month: str  # YYYY-MM
    first_day: int | None = None
    last_day: int | None = None

    @property
    def whole_month(self) -> bool:
        return self.first_day is None


def month_of(day: date) -> str:
    return day.strftime("%Y-%m")


def split_range(start: date, end: date, whole_months: bool = True) -> list[Period]:
    """[start, end] as whole months where a month is covered entirely, and runs of days elsewhere."""
    periods: list[Period] = []
    cursor = start
    while cursor <= end:
        next_month = (cursor.replace(day=28) + timedelta(days=4)).replace(day=1)
        last_of_month = next_month - timedelta(days=1)
        run_end = min(end, last_of_month)
        if whole_months and cursor.day == 1 and run_end == last_of_month:
            periods.append(Period(month_of(cursor)))
        else:
            periods.append(Period(month_of(cursor), cursor.day, run_end.day))
        cursor = run_end + timedelta(days=1)
    return periods


def days_in(start: date, end: date) -> Iterable[date]:
    day = start
    while day <= end:
        yield day
        day += timedelta(days=1)


# ---------------------------------------------------------------- reports


@dataclass(frozen=True)
class FunnelFigures:
    key: str
    counts: Mapping[str, int]

    @property
    def leads(self) -> int:
        return self.counts.get("leads", 0)

    @property
    def by_status(self) -> dict[str, int]:
        return {status.value: self.counts.get(name, 0) for status, name in STATUS_FIELDS.items()}

    def rate(self, name: str) -> float:
        return round(self.counts.get(name, 0) / self.leads, 4) if self.leads else 0.0


def total_of(groups: Iterable[Mapping[str, int]]) -> Counter[str]:
    total: Counter[str] = Counter()
    for counts in groups:
        total.update(counts)
    return total


@dataclass(frozen=True)
class Drift:
    dimension: str
    value: str
    field: str
    expected: int
    stored: int


def compare(
    expected: Mapping[tuple[str, str], Mapping[str, int]], stored: Mapping[tuple[str, str], Mapping[str, int]]
) -> list[Drift]:
    """Every (dimension, value, field) whose stored counter differs from the recount."""
    drift: list[Drift] = []
    for key in sorted(expected.keys() | stored.keys()):
        want, have = expected.get(key, {}), stored.get(key, {})
        for name in sorted(set(want) | set(have)):
            if want.get(name, 0) != have.get(name, 0):
                drift.append(Drift(key[0], key[1], name, want.get(name, 0), have.get(name, 0)))
    return drift


def recount(leads: Iterable[Lead]) -> dict[tuple[str, str], Counter[str]]:
    """Counters of one cohort day recomputed from its leads, by (dimension, value)."""
    counts: dict[tuple[str, str], Counter[str]] = {}
    for lead in leads:
        for (_, dimension, value), lead_count in contributions(lead).items():
            counts.setdefault((dimension.value, value), Counter()).update(lead_count)
        if lead.lead_status is not LeadStatus.NEW:
            counts.setdefault(("speed", "all"), Counter())["contacted"] += 1
    return counts
