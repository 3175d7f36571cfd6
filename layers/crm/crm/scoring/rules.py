"""Scoring rules as data, how they are validated, and the ledger a score is explained by.

The engine that applies the rules is `crm.scoring.engine`; this module holds no scoring logic.
"""

import re
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from functools import lru_cache
from typing import Annotated, Any, TypeGuard

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

from crm.leads.model import Lead, UtcDatetime
from crm.platform.fields import StrictInteger, Text100

MAX_RULE_POINTS = 1000
MAX_PATTERN_LENGTH = 200
MAX_VALUE_LENGTH = 255
MAX_LIST_VALUES = 100
MAX_CUSTOM_FIELD_NAME = 100  # the same bound crm.platform.fields puts on custom field keys

ACTIVITY_TYPE_FIELD = "activity.type"
CUSTOM_FIELD_PREFIX = "custom_fields."
# A rule on the lead's own score or grade would change the score each time it is recomputed;
# custom fields are addressed one by one, as custom_fields.<name>.
_NOT_SCOREABLE = frozenset({"score", "grade", "custom_fields"})
LEAD_FIELDS = frozenset(name for name in Lead.model_fields if name not in _NOT_SCOREABLE)

_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")
_COUNTED_QUANTIFIER = re.compile(r"\{(?:\d+,?\d*|,\d+)\}")


class ScoringCategory(StrEnum):
    DEMOGRAPHIC = "demographic"
    FIRMOGRAPHIC = "firmographic"
    BEHAVIOURAL = "behavioural"


class Operator(StrEnum):
    EQUALS = "equals"
    NOT_EQUALS = "not_equals"
    CONTAINS = "contains"
    STARTS_WITH = "starts_with"
    ENDS_WITH = "ends_with"
    IN = "in"
    GT = "gt"
    GTE = "gte"
    LT = "lt"
    LTE = "lte"
    BETWEEN = "between"
    EXISTS = "exists"
    NOT_EXISTS = "not_exists"
    REGEX = "regex"


_TEXT_OPERATORS = frozenset({Operator.CONTAINS, Operator.STARTS_WITH, Operator.ENDS_WITH})
_NUMBER_OPERATORS = frozenset({Operator.GT, Operator.GTE, Operator.LT, Operator.LTE})
_PRESENCE_OPERATORS = frozenset({Operator.EXISTS, Operator.NOT_EXISTS})

# What a rule compares with: JSON scalars, or a list of them for `in` and `between`.
RuleScalar = bool | int | Decimal | str
RuleValue = RuleScalar | list[RuleScalar] | None
GroupName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50)]


def is_number(value: object) -> TypeGuard[int | Decimal]:
    """A finite int or Decimal; bool is an int to Python but never a number to a rule."""
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        return False
    return not isinstance(value, Decimal) or value.is_finite()


@lru_cache(maxsize=512)
def compiled_pattern(pattern: str) -> re.Pattern[str]:
    """Compile once per pattern: validation and every evaluation share the compiled form."""
    return re.compile(pattern, re.IGNORECASE)


def _class_end(pattern: str, start: int) -> int:
    """Index just past the character class opening at `start` (a `]` first in the class is literal)."""
    index = start + 1
    if index < len(pattern) and pattern[index] == "^":
        index += 1
    if index < len(pattern) and pattern[index] == "]":
        index += 1
    while index < len(pattern) and pattern[index] != "]":
        index += 2 if pattern[index] == "\\" else 1
    return index + 1


def _has_nested_repetition(pattern: str) -> bool:
    """Whether a repeated group contains a repetition itself, as in `(a+)+` or `(\\w+\\s?)*`.

    That shape backtracks exponentially on a near miss, and Python's `re` has no timeout, so such
    patterns are refused when the rule is saved rather than found when a Lambda times out.
    """
    open_groups: list[bool] = []  # per open group: does it contain a repetition?
    after_repeating_group = False
    index = 0
    while index < len(pattern):
        char = pattern[index]
        counted = _COUNTED_QUANTIFIER.match(pattern, index) if char == "{" else None
        is_quantifier = char in "*+" or counted is not None
        if is_quantifier and after_repeating_group:
            return True
        after_repeating_group = False
        if char == "\\":
            index += 2
        elif char == "[":
            index = _class_end(pattern, index)
        elif is_quantifier:
            if open_groups:
                open_groups[-1] = True
            index = counted.end() if counted else index + 1
        else:
            if char == "(":
                open_groups.append(False)
            elif char == ")" and open_groups:
                after_repeating_group = open_groups.pop()
                if after_repeating_group and open_groups:
                    open_groups[-1] = True
            index += 1
    return False


def _check_field(name: str) -> str:
    if name in LEAD_FIELDS or name == ACTIVITY_TYPE_FIELD:
        return name
    if name.startswith(CUSTOM_FIELD_PREFIX):
        key = name.removeprefix(CUSTOM_FIELD_PREFIX)
        if 0 < len(key) <= MAX_CUSTOM_FIELD_NAME and not _CONTROL_CHARACTERS.search(key):
            return name
    known = ", ".join(sorted(LEAD_FIELDS))
    raise ValueError(
        f"unknown field: use a lead field ({known}), custom_fields.<name> or {ACTIVITY_TYPE_FIELD}"
    )


def _check_text(value: object, operator: Operator) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{operator} needs a non-empty text (use exists / not_exists to test for absence)")
    if len(value) > MAX_VALUE_LENGTH:
        raise ValueError(f"must be at most {MAX_VALUE_LENGTH} characters")
    return value


def _check_scalar(value: object, operator: Operator) -> RuleScalar:
    if isinstance(value, bool) or is_number(value):
        return value
    return _check_text(value, operator)


def _check_pattern(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError("regex needs a pattern")
    if len(value) > MAX_PATTERN_LENGTH:
        raise ValueError(f"the pattern must be at most {MAX_PATTERN_LENGTH} characters")
    try:
        compiled_pattern(value)
    except re.error as exc:
        raise ValueError(f"not a valid regular expression ({exc})") from None
    if _has_nested_repetition(value):
        raise ValueError(
            "a repeated group must not contain a repetition itself, e.g. (a+)+: it can run forever"
        )
    return value


def _check_value(operator: Operator, value: RuleValue) -> RuleValue:
    """The value shape each operator needs; the message says which shape."""
    if operator in _PRESENCE_OPERATORS:
        if value is not None:
            raise ValueError(f"{operator} takes no value")
        return None
    if operator in _NUMBER_OPERATORS:
        if not is_number(value):
            raise ValueError(f"{operator} needs a number")
        return value
    if operator is Operator.BETWEEN:
        low, high = value if isinstance(value, list) and len(value) == 2 else (None, None)
        if not (is_number(low) and is_number(high)):
            raise ValueError("between needs [low, high], two numbers")
        if low > high:
            raise ValueError("between needs low <= high")
        return [low, high]
    if operator is Operator.IN:
        if not isinstance(value, list) or not 0 < len(value) <= MAX_LIST_VALUES:
            raise ValueError(f"in needs a list of 1 to {MAX_LIST_VALUES} values")
        return [_check_scalar(item, operator) for item in value]
    if operator is Operator.REGEX:
        return _check_pattern(value)
    if operator in _TEXT_OPERATORS:
        return _check_text(value, operator)
    if isinstance(value, list) or value is None:
        raise ValueError(f"{operator} needs one value: a text, a number or true/false")
    return _check_scalar(value, operator)


class RuleDefinition(BaseModel):
    """What a rule says, shared by the API input and the stored rule.

    Declaration order matters: `field` is checked against `category`, and `value` against `operator`.
    """

    name: Text100
    category: ScoringCategory
    field: str
    operator: Operator
    value: RuleValue = Field(default=None, validate_default=True)
    points: StrictInteger = Field(ge=-MAX_RULE_POINTS, le=MAX_RULE_POINTS)
    # Rules sharing a group are tiers: only the best-scoring match of the group counts.
    group: GroupName | None = None
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
        # One clear error instead of one per member of the RuleValue union.
        scalars = (bool, int, float, Decimal, str)
        if value is None or isinstance(value, scalars):
            return value
        if isinstance(value, list) and all(isinstance(item, scalars) for item in value):
            return value
        raise ValueError("must be a text, a number, true/false or a list of those")

    @field_validator("value")
    @classmethod
    def value_fits_operator(cls, value: RuleValue, info: ValidationInfo) -> RuleValue:
        operator = info.data.get("operator")
        if operator is None:  # the operator itself is invalid and already reported
            return value
        return _check_value(operator, value)

    @field_validator("cap", "window_days")
    @classmethod
    def behavioural_only(cls, value: int | None, info: ValidationInfo) -> int | None:
        if value is not None and info.data.get("category") is not ScoringCategory.BEHAVIOURAL:
            raise ValueError("only behavioural rules have one")
        return value


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
    # Before decay and caps: the rule's points, times the activity count for behavioural rules.
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
