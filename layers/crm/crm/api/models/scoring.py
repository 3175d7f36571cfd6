"""HTTP models of the scoring API: scoring rules, rescore jobs, a lead's score ledger, behavioural events."""

import re
from decimal import Decimal
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
)

from crm.conditions import Operator
from crm.leads.model import Lead, UtcDatetime
from crm.platform.fields import AwareTimestamp, CustomFields, OptionalText255, StrictInteger
from crm.scoring.preview import MAX_CHANGES, MOVERS, Outcome, Preview, RuleChange
from crm.scoring.rescoring import OWN_ACTIVITY_TYPES, JobState, RescoreJob, RuleSet, StoredRule
from crm.scoring.rules import (
    ScoreBreakdown,
    ScoringCategory,
    ScoringRuleEdits,
    ScoringRuleInput,
)

# Types a client may not record: the system writes them (capture, merges, scoring).
RESERVED_ACTIVITY_TYPES = OWN_ACTIVITY_TYPES | {"lead_captured", "submission_merged", "chat_transcript"}
BEHAVIOURAL_ACTIVITY_TYPES = (
    "email_opened",
    "email_clicked",
    "page_viewed",
    "form_submitted",
    "demo_requested",
)
_ACTIVITY_TYPE = re.compile(r"^[a-z][a-z0-9_]{1,49}$")


def _json_number(value: Any) -> Any:
    """Decimals (how DynamoDB returns numbers) as JSON numbers, not strings."""
    if isinstance(value, bool):
        return value
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, list):
        return [_json_number(item) for item in value]
    if isinstance(value, dict):
        return {key: _json_number(item) for key, item in value.items()}
    return value


JsonValue = Annotated[Any, PlainSerializer(_json_number, when_used="json")]


def _activity_type(value: str) -> str:
    if not _ACTIVITY_TYPE.match(value):
        raise ValueError("must be 2-50 characters: lower-case letters, digits and _, starting with a letter")
    if value in RESERVED_ACTIVITY_TYPES:
        raise ValueError("is written by the system and cannot be recorded through the API")
    return value


ActivityType = Annotated[str, StringConstraints(strip_whitespace=True), AfterValidator(_activity_type)]
EventId = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9._:@/+=-]{1,128}$")]


# ---------------------------------------------------------------- requests


class ScoringRuleReplaceRequest(ScoringRuleInput):
    """PUT: the whole rule. The version read goes here or in `If-Match`."""

    version: StrictInteger | None = Field(default=None, ge=1)


class ScoringRulePatchRequest(ScoringRuleEdits):
    """PATCH: only the fields to change; the version read goes here or in `If-Match`."""

    version: StrictInteger | None = Field(default=None, ge=1)


class RecordActivityRequest(BaseModel):
    """A behavioural event. `event_id` makes it idempotent: a replay returns the first activity."""

    model_config = ConfigDict(extra="forbid")

    type: ActivityType = Field(
        description="email_opened, email_clicked, page_viewed, form_submitted, demo_requested, or your own "
        "lower_snake_case type"
    )
    description: OptionalText255 = None
    occurred_at: AwareTimestamp | None = Field(default=None, description="When it happened (default: now)")
    event_id: EventId | None = None
    data: CustomFields = Field(default_factory=dict)


# ---------------------------------------------------------------- responses


class ScoringRuleResponse(BaseModel):
    id: str
    name: str
    category: ScoringCategory
    field: str
    operator: Operator
    value: JsonValue
    points: int
    group: str | None
    count_operator: Operator | None = Field(
        description="Count rules only: gt or gte; the rule gives its points once when the number of "
        "matching activities (within window_days) is more than / at least count_value"
    )
    count_value: int | None
    cap: int | None
    window_days: int | None
    active: bool
    created_at: UtcDatetime
    updated_at: UtcDatetime
    updated_by: str | None = Field(default=None, description="Who made the last change (`user:<sub>`)")
    version: int

    @classmethod
    def from_rule(cls, rule: StoredRule) -> "ScoringRuleResponse":
        return cls.model_validate(rule.model_dump())


class ScoringRuleListResponse(BaseModel):
    revision: int = Field(description="Goes up by one with every change of any rule")
    items: list[ScoringRuleResponse]
    next_cursor: str | None = Field(default=None, description="Always null: the whole list is one page")
    rules: list[ScoringRuleResponse] = Field(description="Deprecated alias of `items` (one release)")

    @classmethod
    def from_rule_set(cls, rule_set: RuleSet) -> "ScoringRuleListResponse":
        rules = [ScoringRuleResponse.from_rule(r) for r in rule_set.rules]
        return cls(revision=rule_set.revision, items=rules, rules=rules)


class RescoreJobLink(BaseModel):
    """The job that rescores every open lead after this change (one per rule-set revision)."""

    job_id: str
    status_url: str

    @classmethod
    def for_job(cls, job_id: str) -> "RescoreJobLink":
        return cls(job_id=job_id, status_url=f"/scoring-rules/rescore-jobs/{job_id}")


class ScoringRuleChangeResponse(BaseModel):
    rule: ScoringRuleResponse
    revision: int
    rescore_job: RescoreJobLink


class ScoringRuleDeletedResponse(BaseModel):
    deleted: str
    revision: int
    rescore_job: RescoreJobLink


class RescoreJobResponse(BaseModel):
    """How many of how many: `leads_total` is final once `total_final` is true (every page listed)."""

    job_id: str
    reason: str
    state: JobState
    leads_done: int
    leads_total: int
    total_final: bool
    leads_changed: int
    progress: str
    started_at: UtcDatetime | None
    finished_at: UtcDatetime | None
    superseded_by: str | None

    @classmethod
    def from_job(cls, job: RescoreJob) -> "RescoreJobResponse":
        queued = job.state is JobState.QUEUED
        return cls(
            job_id=job.job_id,
            reason=job.reason.value,
            state=job.effective_state,
            leads_done=job.leads_done,
            leads_total=job.leads_found,
            total_final=not queued and job.state is not JobState.STARTING and job.listing_complete,
            leads_changed=job.leads_changed,
            progress=job.progress(),
            started_at=None if queued else job.started_at,
            finished_at=job.finished_at,
            superseded_by=job.superseded_by,
        )


class ScoreEntryResponse(BaseModel):
    rule_id: str
    rule_name: str
    category: ScoringCategory
    points: int = Field(description="After decay and caps; the entries add up to the score")
    raw_points: int = Field(description="Before decay and caps")
    matched_value: JsonValue = None
    activity_count: int | None = None
    awarded_at: UtcDatetime = Field(description="When the evidence happened")


class LeadScoreResponse(BaseModel):
    """A lead's stored score and the ledger that explains it: sum(points) + limit_adjustment == score."""

    lead_id: str
    score: int
    grade: str | None
    entries: list[ScoreEntryResponse]
    limit_adjustment: int
    scored_at: UtcDatetime | None = Field(description="null: the lead has not been scored yet")

    @classmethod
    def from_breakdown(cls, lead: Lead, breakdown: ScoreBreakdown | None) -> "LeadScoreResponse":
        if breakdown is None:
            return cls(
                lead_id=lead.id,
                score=lead.score,
                grade=lead.grade,
                entries=[],
                limit_adjustment=0,
                scored_at=None,
            )
        # Read in one transaction with the lead and written in one with its score: the two agree.
        return cls(
            lead_id=lead.id,
            score=breakdown.score,
            grade=breakdown.grade,
            entries=[ScoreEntryResponse.model_validate(entry.model_dump()) for entry in breakdown.entries],
            limit_adjustment=breakdown.limit_adjustment,
            scored_at=breakdown.scored_at,
        )


# ---------------------------------------------------------------- the rule preview


class RulePreviewRequest(BaseModel):
    """A rule change to try before making it: changes applied in order, and/or another sales threshold."""

    model_config = ConfigDict(extra="forbid")

    changes: list[RuleChange] = Field(
        default_factory=list,
        max_length=MAX_CHANGES,
        description="Applied in order to the stored rules; an error names the change, e.g. changes[1].points",
    )
    threshold: StrictInteger | None = Field(
        default=None, ge=0, le=1000, description="The sales threshold to try (default: the stored one)"
    )


class PreviewOutcomeResponse(BaseModel):
    threshold: int = Field(description="Leads at or above it go to sales, the others to nurture")
    grades: dict[str, int] = Field(description="How many leads get each grade, A+ to F")
    sales: int
    nurture: int

    @classmethod
    def from_outcome(cls, outcome: Outcome) -> "PreviewOutcomeResponse":
        return cls(
            threshold=outcome.threshold,
            grades=outcome.distribution(),
            sales=outcome.sales,
            nurture=outcome.nurture,
        )


class PreviewMoverResponse(BaseModel):
    lead_id: str
    name: str
    company: str | None
    score_before: int
    score_after: int
    change: int
    grade_before: str
    grade_after: str


class RulePreviewResponse(BaseModel):
    """Nothing was written: the open leads scored under the current rules and under the proposed ones."""

    leads_considered: int = Field(description="How many open leads were scored")
    open_leads: int
    sampled: bool = Field(description="true: too many open leads, a uniform sample was scored")
    current: PreviewOutcomeResponse
    proposed: PreviewOutcomeResponse
    leads_moved: int = Field(description="Leads whose score would change")
    movers: list[PreviewMoverResponse] = Field(
        description=f"The {MOVERS} biggest moves among the leads you may see, biggest first"
    )

    @classmethod
    def from_preview(cls, preview: Preview) -> "RulePreviewResponse":
        return cls(
            leads_considered=preview.leads_considered,
            open_leads=preview.open_leads,
            sampled=preview.sampled,
            current=PreviewOutcomeResponse.from_outcome(preview.current),
            proposed=PreviewOutcomeResponse.from_outcome(preview.proposed),
            leads_moved=preview.leads_moved,
            movers=[
                PreviewMoverResponse(
                    lead_id=mover.lead_id,
                    name=mover.name,
                    company=mover.company,
                    score_before=mover.score_before,
                    score_after=mover.score_after,
                    change=mover.change,
                    grade_before=mover.grade_before,
                    grade_after=mover.grade_after,
                )
                for mover in preview.movers
            ],
        )
