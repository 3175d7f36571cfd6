"""Rescoring a lead, as plain Python: what a rescore changes, which stream records call for one, and the
rescore jobs that fan a rule change (or the daily decay pass) out over every open lead.

No AWS here: the services (crm.scoring.service) read and write through crm.scoring.repository.
"""

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from crm.leads.index import STATUS_BY_CREATED, UNASSIGNED_BY_CREATED, status_pk, unassigned_owner_pk
from crm.leads.model import LEAD_FIELDS, Activity, Lead, LeadStatus, UtcDatetime
from crm.platform import clock
from crm.platform.ids import new_id
from crm.scoring.engine import AUTO_QUALIFY_SCORE, CompiledRules, should_auto_qualify
from crm.scoring.rules import ACTIVITY_TYPE_FIELD, ScoreBreakdown, ScoringCategory, ScoringRule

# Activities the scoring function writes itself; its stream filter and `lead_to_rescore` skip them.
SCORING_ACTOR = "system:scoring"
SCORE_CHANGED = "score_changed"
AUTO_QUALIFIED = "lead_auto_qualified"
OWN_ACTIVITY_TYPES = frozenset({SCORE_CHANGED, AUTO_QUALIFIED})
# The lead item's `written_by` on the scoring function's own writes (see crm.leads.repository.LeadItem).
SCORING_WRITER = "scoring"
SCORE_ITEM_ENTITY = "score"
RULE_SET_ENTITY = "scoring_rules"

# Lead attributes a rule can read (any lead field, custom fields one by one). A change to anything else
# (the version, updated_at, index keys, the score itself) cannot change the score.
_SCORED_ATTRIBUTES = (LEAD_FIELDS | {"custom_fields"}) - {"version", "updated_at"}
OPEN_STATUSES = tuple(status for status in LeadStatus if status is not LeadStatus.CONVERTED)


class StoredRule(ScoringRule):
    """A scoring rule as kept in the table: with the version its optimistic locking checks."""

    version: int = Field(default=1, ge=1)
    updated_at: UtcDatetime
    updated_by: str | None = None  # who made the last change (`user:<sub>`); None for the seeded defaults


@dataclass(frozen=True)
class RuleSet:
    """Every scoring rule, and the rule set's revision (it goes up by one with every change)."""

    revision: int
    rules: list[StoredRule]

    def find(self, rule_id: str) -> StoredRule | None:
        return next((rule for rule in self.rules if rule.id == rule_id), None)


@dataclass(frozen=True)
class RuleBook:
    """A rule set compiled once, for scoring many leads."""

    revision: int
    compiled: CompiledRules
    # Whether any active rule reads activities (else a rescore needs only the lead item).
    reads_activities: bool
    # Whether scores change with time alone: decay is on, or a behavioural rule has a window.
    time_dependent: bool

    @classmethod
    def build(cls, rule_set: RuleSet, half_life_days: float | None) -> "RuleBook":
        behavioural = [r for r in rule_set.rules if r.active and r.field == ACTIVITY_TYPE_FIELD]
        windowed = any(rule.window_days is not None for rule in behavioural)
        return cls(
            revision=rule_set.revision,
            compiled=CompiledRules(rule_set.rules),
            reads_activities=bool(behavioural),
            time_dependent=bool(behavioural) and (half_life_days is not None or windowed),
        )


# ---------------------------------------------------------------- one lead


@dataclass(frozen=True)
class ScoreUpdate:
    """What one rescore writes: the lead's new score (and status when it auto-qualifies), its ledger,
    and the activities that say what happened. Written in one transaction, on the lead's version."""

    lead: Lead
    breakdown: ScoreBreakdown
    previous_score: int
    previous_grade: str | None
    qualified: bool
    activities: list[Activity] = field(default_factory=list)

    @property
    def lead_changed(self) -> bool:
        """False when only the ledger changed (e.g. a rule was renamed): the lead item stays as it is."""
        return self.qualified or (self.lead.score, self.lead.grade) != (
            self.previous_score,
            self.previous_grade,
        )

    @property
    def score_changed(self) -> bool:
        return self.lead.score != self.previous_score


def _canonical(value: Any) -> Any:
    """Values as stored and read back compare equal: numbers as normalised Decimals, times as text."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | Decimal):
        return Decimal(value).normalize()
    if isinstance(value, float):
        return Decimal(repr(value)).normalize() if math.isfinite(value) else repr(value)
    if isinstance(value, datetime):
        return clock.isoformat(value)
    if isinstance(value, Mapping):
        return {str(key): _canonical(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical(item) for item in value]
    return str(value)


def ledger_key(breakdown: ScoreBreakdown) -> Any:
    """Everything a ledger says except when it was computed."""
    return _canonical(breakdown.model_dump(exclude={"scored_at"}))


def describe_change(old: int, new: int, old_grade: str | None, new_grade: str) -> str:
    grades = f" (grade {old_grade or 'none'} → {new_grade})" if old_grade != new_grade else ""
    return f"Score {old} → {new}{grades}"


def plan_rescore(
    lead: Lead,
    activities: Iterable[Activity],
    stored: ScoreBreakdown | None,
    rules: RuleBook,
    *,
    now: datetime,
    half_life_days: float | None,
) -> ScoreUpdate | None:
    """The write a rescore needs, or None when the lead and its ledger are already right (idempotence:
    the same inputs never write twice)."""
    activities = list(activities)
    breakdown = rules.compiled.score(lead, activities, now, half_life_days)
    qualify = should_auto_qualify(lead, breakdown.score)
    scored = lead
    if qualify:
        scored = lead.model_copy(
            update={
                "qualified": True,
                "qualified_at": now,
                "lead_status": LeadStatus.QUALIFIED,
                "updated_at": now,
            }
        )
        # A rule may read the status or `qualified`: the stored score is the qualified lead's.
        breakdown = rules.compiled.score(scored, activities, now, half_life_days)
    updated = scored.model_copy(update={"score": breakdown.score, "grade": breakdown.grade})
    update = ScoreUpdate(
        lead=updated,
        breakdown=breakdown,
        previous_score=lead.score,
        previous_grade=lead.grade,
        qualified=qualify,
    )
    if not update.lead_changed and stored is not None and ledger_key(stored) == ledger_key(breakdown):
        return None
    if update.score_changed:
        update.activities.append(
            Activity(
                id=new_id(),
                lead_id=lead.id,
                type=SCORE_CHANGED,
                description=describe_change(lead.score, breakdown.score, lead.grade, breakdown.grade),
                created_by=SCORING_ACTOR,
                created_at=now,
                data={
                    "old_score": lead.score,
                    "new_score": breakdown.score,
                    "old_grade": lead.grade,
                    "new_grade": breakdown.grade,
                    "rules_revision": rules.revision,
                },
            )
        )
    if qualify:
        update.activities.append(
            Activity(
                id=new_id(),
                lead_id=lead.id,
                type=AUTO_QUALIFIED,
                description=(
                    f"Qualified automatically: the score reached {breakdown.score} "
                    f"(the threshold is {AUTO_QUALIFY_SCORE})"
                ),
                created_by=SCORING_ACTOR,
                created_at=now,
                data={
                    "score": breakdown.score,
                    "threshold": AUTO_QUALIFY_SCORE,
                    "old_status": lead.lead_status.value,
                    "new_status": LeadStatus.QUALIFIED.value,
                },
            )
        )
    return update


def has_decaying_points(breakdown: ScoreBreakdown) -> bool:
    """Whether the score can change with time alone: some behavioural rule still gives points.

    Rounding never hides a change: behavioural points that all round to 0 add up to less than half a
    point, and decay only brings them closer to 0, so such a score is final until something happens.
    """
    return any(
        entry.category is ScoringCategory.BEHAVIOURAL and entry.points != 0 for entry in breakdown.entries
    )


# ---------------------------------------------------------------- stream records


def _changed(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    return any(_canonical(old.get(name)) != _canonical(new.get(name)) for name in _SCORED_ATTRIBUTES)


def lead_to_rescore(
    event_name: str, new_image: Mapping[str, Any], old_image: Mapping[str, Any]
) -> str | None:
    """The lead a stream record asks to rescore, or None.

    The event source mapping's filter already drops the scoring function's own writes; this repeats
    the test in code (a score write sets `scored_version` to the version it writes), so that even with
    no filter no write of ours leads to another, and skips changes no rule can see.
    """
    entity = new_image.get("entity")
    if entity == "lead" and event_name in ("INSERT", "MODIFY"):
        scored_version = new_image.get("scored_version")
        if scored_version is not None and scored_version == new_image.get("version"):
            return None
        if event_name == "MODIFY" and not _changed(old_image, new_image):
            return None
        lead_id = new_image.get("id")
        return str(lead_id) if lead_id else None
    if entity == "activity" and event_name == "INSERT":
        if new_image.get("type") in OWN_ACTIVITY_TYPES or new_image.get("created_by") == SCORING_ACTOR:
            return None
        lead_id = new_image.get("lead_id")
        return str(lead_id) if lead_id else None
    return None


def rule_set_revision(event_name: str, new_image: Mapping[str, Any]) -> int | None:
    """The rule set's new revision, when a stream record is a change of the scoring rules."""
    if new_image.get("entity") != RULE_SET_ENTITY or event_name not in ("INSERT", "MODIFY"):
        return None
    revision = new_image.get("revision")
    return int(revision) if isinstance(revision, int | Decimal) else None


# ---------------------------------------------------------------- rescore jobs


class JobReason(StrEnum):
    RULES_CHANGED = "rules_changed"
    DECAY = "decay"
    # The sales threshold changed and the manager asked to route the nurture leads again.
    REROUTE_NURTURE = "reroute_nurture"
    # The reconciler (hourly, or by hand): open leads the pipeline left behind, scored and routed.
    RECONCILE = "reconcile"


class JobState(StrEnum):
    QUEUED = "queued"  # the rule change is committed; the job item is not written yet
    STARTING = "starting"
    RUNNING = "running"
    COMPLETED = "completed"
    SUPERSEDED = "superseded"  # a newer rule change started its own job before this one began


_RULES_JOB = re.compile(r"^rules-(?P<revision>[1-9][0-9]{0,9})$")
_DECAY_JOB = re.compile(r"^decay-\d{4}-\d{2}-\d{2}$")
_REROUTE_JOB = re.compile(r"^reroute-[1-9][0-9]{0,9}$")
_RECONCILE_JOB = re.compile(r"^reconcile-\d{4}-\d{2}-\d{2}T\d{4}$")


def rules_job_id(revision: int) -> str:
    """One job per rule-set revision: a redelivered change record never starts a second one."""
    return f"rules-{revision}"


def decay_job_id(day: datetime) -> str:
    """One decay pass per day, however often the schedule fires."""
    return f"decay-{day:%Y-%m-%d}"


def reroute_job_id(settings_version: int) -> str:
    """One re-routing per saved routing-settings version."""
    return f"reroute-{settings_version}"


def reconcile_job_id(now: datetime) -> str:
    """One reconciler pass per minute, however often the schedule (or an operator) starts it."""
    return f"reconcile-{now:%Y-%m-%dT%H%M}"


def job_reason(job_id: str) -> JobReason:
    if _RECONCILE_JOB.match(job_id):
        return JobReason.RECONCILE
    if _DECAY_JOB.match(job_id):
        return JobReason.DECAY
    if _REROUTE_JOB.match(job_id):
        return JobReason.REROUTE_NURTURE
    return JobReason.RULES_CHANGED


def rules_job_revision(job_id: str) -> int | None:
    match = _RULES_JOB.match(job_id)
    return int(match["revision"]) if match else None


def is_job_id(job_id: str) -> bool:
    return bool(
        _RULES_JOB.match(job_id)
        or _DECAY_JOB.match(job_id)
        or _REROUTE_JOB.match(job_id)
        or _RECONCILE_JOB.match(job_id)
    )


class Partition(BaseModel):
    """One index partition a job pages through: a status shard of StatusByCreated, an unassigned shard of
    UnassignedByCreated, or a decay shard of GSI1 (score ledgers)."""

    index: str = Field(pattern=f"^(GSI1|{STATUS_BY_CREATED.name}|{UNASSIGNED_BY_CREATED.name})$")
    key: str = Field(min_length=1, max_length=200)
    # Decay pages: only entries scored before this (GSI1SK < before), i.e. before the pass started.
    before: str | None = None
    # Re-routing pages: the unassigned leads flagged for nurture.
    nurture_only: bool = False


def status_partitions(shards: int) -> list[Partition]:
    return [
        Partition(index=STATUS_BY_CREATED.name, key=status_pk(status.value, shard))
        for status in OPEN_STATUSES
        for shard in range(shards)
    ]


def nurture_partitions(shards: int) -> list[Partition]:
    """Where nurture leads are: unassigned (UnassignedByCreated `UNASSIGNED#<n>`) and flagged `nurture`."""
    return [
        Partition(index=UNASSIGNED_BY_CREATED.name, key=unassigned_owner_pk(shard), nurture_only=True)
        for shard in range(shards)
    ]


def decay_partition_key(shard: int) -> str:
    return f"DECAY#{shard}"


def decay_partitions(shards: int, started_at: datetime) -> list[Partition]:
    before = clock.isoformat(started_at)
    return [Partition(index="GSI1", key=decay_partition_key(shard), before=before) for shard in range(shards)]


class RescorePage(BaseModel):
    """One SQS message: a page of one partition to rescore. The worker enqueues the next page itself."""

    job_id: str = Field(min_length=1, max_length=64)
    partition: Partition
    page: int = Field(default=0, ge=0)
    # The index's LastEvaluatedKey from the previous page (attribute-value form), None for the first.
    start_key: dict[str, dict[str, str]] | None = None

    @property
    def marker(self) -> str:
        return f"{self.partition.key}#{self.page:06d}"


class RescoreJob(BaseModel):
    """Progress of a fan-out: counters are only ever changed by atomic ADDs, each page counted once."""

    job_id: str
    reason: JobReason
    state: JobState
    started_at: UtcDatetime
    started_by: str
    partitions: int = 0
    partitions_listed: int = 0
    leads_found: int = 0
    leads_done: int = 0
    leads_changed: int = 0
    finished_at: UtcDatetime | None = None
    superseded_by: str | None = None

    @property
    def listing_complete(self) -> bool:
        return self.partitions_listed >= self.partitions

    @property
    def effective_state(self) -> JobState:
        if self.state is JobState.RUNNING and self.listing_complete and self.leads_done >= self.leads_found:
            return JobState.COMPLETED
        return self.state

    def progress(self) -> str:
        if self.state is JobState.SUPERSEDED:
            return f"superseded by {self.superseded_by}: that job rescores every open lead"
        if self.state in (JobState.QUEUED, JobState.STARTING):
            return "starting"
        rerouting = self.reason is JobReason.REROUTE_NURTURE
        reconciling = self.reason is JobReason.RECONCILE
        what = (
            "nurture leads routed again"
            if rerouting
            else "open leads checked"
            if reconciling
            else "leads rescored"
        )
        done = f"{self.leads_done} of {self.leads_found} {what}"
        if not self.listing_complete:
            return f"{done} so far (still listing: the total grows until every page is read)"
        changed = "sent to sales" if rerouting else "brought up to date" if reconciling else "scores changed"
        return f"{done} ({self.leads_changed} {changed})"


def queued_job(job_id: str, now: datetime) -> RescoreJob:
    """What a rule change's job looks like before the stream has started it."""
    return RescoreJob(
        job_id=job_id, reason=JobReason.RULES_CHANGED, state=JobState.QUEUED, started_at=now, started_by=""
    )


def retry_delay(attempt: int) -> float:
    """Full-jitter upper bound for the n-th retry of a conflicting write (seconds)."""
    return min(0.2, 0.005 * 2**attempt)
