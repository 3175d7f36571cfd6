"""Scoring rules as data, how they are validated, and the ledger a score is explained by.

The engine that applies the rules is `crm.scoring.engine`; this module holds no scoring logic.
"""

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

from crm.conditions import Operator, RuleValue, check_value, check_value_shape, custom_field_name_ok
from crm.leads.model import LEAD_FIELDS, UtcDatetime
from crm.platform.fields import StrictInteger, Text100

MAX_RULE_POINTS = 1000
ACTIVITY_TYPE_FIELD = "activity.type"
# A count rule compares how many activities match: more than (gt) or at least (gte) its count_value.
COUNT_OPERATORS = (Operator.GT, Operator.GTE)
MAX_COUNT = 100_000


class ScoringCategory(StrEnum):
    DEMOGRAPHIC = "demographic"
    FIRMOGRAPHIC = "firmographic"
    BEHAVIOURAL = "behavioural"


GroupName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50)]


def _check_field(name: str) -> str:
    if name in LEAD_FIELDS or name == ACTIVITY_TYPE_FIELD or custom_field_name_ok(name):
        return name
    known = ", ".join(sorted(LEAD_FIELDS))
    raise ValueError(
        f"unknown field: use a lead field ({known}), custom_fields.<name> or {ACTIVITY_TYPE_FIELD}"
    )


class RuleDefinition(BaseModel):
    """What a rule says, shared by the API input and the stored rule.

    Declaration order matters: `field` is checked against `category`, `value` against `operator`, and
    `count_value` and `cap` against `count_operator`.
    """

    name: Text100
    category: ScoringCategory
    field: str
    operator: Operator
    value: RuleValue = Field(default=None, validate_default=True)
    points: StrictInteger = Field(ge=-MAX_RULE_POINTS, le=MAX_RULE_POINTS)
    # Rules sharing a group are tiers: only the best-scoring match of the group counts.
    group: GroupName | None = None
    # Behavioural only. A count rule gives its points once, when the number of matching activities (within
    # window_days) is count_operator count_value: "more than 5 email opens" is gt 5. Without them, a
    # behavioural rule gives its points per matching activity.
    count_operator: Operator | None = None
    count_value: StrictInteger | None = Field(default=None, ge=1, le=MAX_COUNT, validate_default=True)
    # Behavioural only: most points (in absolute value) this rule gives, and how far back activities count.
    cap: StrictInteger | None = Field(default=None, ge=1, le=MAX_RULE_POINTS)
    window_days: StrictInteger | None = Field(default=None, ge=1, le=3650)
    active: StrictBool = True

    @field_validator("field")
    @classmethod
    def known_field(cls, name: str, info: ValidationInfo) -> str:
        name = _check_field(name)
        category = info.data.get("category")
        if category is None:  # the category itself is invalid and already reported
            return name
        if category is ScoringCategory.BEHAVIOURAL and name != ACTIVITY_TYPE_FIELD:
            raise ValueError(f"behavioural rules score activities: the field must be {ACTIVITY_TYPE_FIELD}")
        if category is not ScoringCategory.BEHAVIOURAL and name == ACTIVITY_TYPE_FIELD:
            raise ValueError(f"{ACTIVITY_TYPE_FIELD} is for behavioural rules only")
        return name

    @field_validator("value", mode="before")
    @classmethod
    def scalar_or_list(cls, value: object) -> object:
        return check_value_shape(value)

    @field_validator("value")
    @classmethod
    def value_fits_operator(cls, value: RuleValue, info: ValidationInfo) -> RuleValue:
        operator = info.data.get("operator")
        if operator is None:  # the operator itself is invalid and already reported
            return value
        return check_value(operator, value)

    @field_validator("count_operator")
    @classmethod
    def counts_activities(cls, operator: Operator | None, info: ValidationInfo) -> Operator | None:
        if operator is None:
            return None
        if operator not in COUNT_OPERATORS:
            raise ValueError("must be gt (more than) or gte (at least)")
        category = info.data.get("category")
        if category is not None and category is not ScoringCategory.BEHAVIOURAL:
            raise ValueError("only behavioural rules count activities")
        return operator

    @field_validator("count_value")
    @classmethod
    def count_needs_its_operator(cls, value: int | None, info: ValidationInfo) -> int | None:
        if "count_operator" not in info.data:  # the operator itself is invalid and already reported
            return value
        if info.data["count_operator"] is not None and value is None:
            raise ValueError("a count rule needs the number of activities to compare with")
        if info.data["count_operator"] is None and value is not None:
            raise ValueError("only count rules have one: set count_operator (gt or gte) too")
        return value

    @field_validator("cap", "window_days")
    @classmethod
    def behavioural_only(cls, value: int | None, info: ValidationInfo) -> int | None:
        if value is not None and info.data.get("category") is not ScoringCategory.BEHAVIOURAL:
            raise ValueError("only behavioural rules have one")
        if value is not None and info.field_name == "cap" and info.data.get("count_operator") is not None:
            raise ValueError("a count rule gives its points once: it has no cap")
        return value

    @property
    def counts(self) -> bool:
        """Whether this is a count rule (points once for enough activities, not per activity)."""
        return self.count_operator is not None


class ScoringRuleInput(RuleDefinition):
    """A rule as the API receives it: unknown fields are refused."""

    model_config = ConfigDict(extra="forbid")

    def to_rule(self, rule_id: str, created_at: datetime) -> "ScoringRule":
        return ScoringRule(id=rule_id, created_at=created_at, **self.model_dump())


class ScoringRule(RuleDefinition):
    id: str = Field(min_length=1)
    created_at: UtcDatetime


class ScoreEntry(BaseModel):
    """One line of the ledger: a rule that matched and what it gave."""

    rule_id: str
    rule_name: str
    category: ScoringCategory
    # Whole points, after decay and caps; rounded so that the ledger adds up to the score.
    points: int
    # Before decay and caps: the rule's points, times the activity count for behavioural rules that give
    # points per activity (a count rule's points are given once).
    raw_points: int
    # Attribute rules: the lead's value that matched. Behavioural rules: how many activities counted.
    matched_value: Any = None
    activity_count: int | None = None
    # When the evidence happened: the lead's last update, or the newest activity counted.
    awarded_at: UtcDatetime


class ScoreBreakdown(BaseModel):
    """A score and its ledger: sum(entry.points) + limit_adjustment == score."""

    score: int
    grade: str
    entries: list[ScoreEntry]
    # Non-zero only when the ledger's total falls outside 0..1000 and the score is held at the limit.
    limit_adjustment: int = 0
    scored_at: UtcDatetime


class ScoringRuleEdits(BaseModel):
    """Some fields of an existing rule (null clears group, count_operator, count_value, cap, window_days or
    value): what PATCH /scoring-rules/{id} and a preview's `update` change both take. The merged rule is then
    validated as a whole, so e.g. a new operator must fit the value it keeps."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    category: ScoringCategory | None = None
    field: str | None = None
    operator: Operator | None = None
    value: RuleValue = None
    points: StrictInteger | None = Field(default=None, ge=-MAX_RULE_POINTS, le=MAX_RULE_POINTS)
    group: GroupName | None = None
    count_operator: Operator | None = None
    count_value: StrictInteger | None = None
    cap: StrictInteger | None = None
    window_days: StrictInteger | None = None
    active: StrictBool | None = None
