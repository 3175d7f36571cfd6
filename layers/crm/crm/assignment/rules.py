"""Assignment rules: which team or user a lead goes to. Data, validation and matching; no AWS.

Rules are tried by ascending `priority` (then by creation); the first active rule whose conditions all
match the lead decides the target: a user (`target_user`, a sub) or a team (`target_team`). No match: the
default team (settings). A rule without conditions matches every lead.

Conditions use exactly the operators and value checks of scoring rules (`crm.scoring.rules`), and are
evaluated by the scoring engine's matchers (`crm.scoring.engine.compile_matcher`), so "equals", "in",
"between"
or "regex" mean the same thing in both places.
"""

import re
from collections.abc import Callable, Iterable
from datetime import datetime
from decimal import Decimal
from operator import attrgetter
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationInfo, field_validator

from crm.leads.model import Lead, UtcDatetime
from crm.platform.fields import StrictInteger, Text100
from crm.scoring.engine import Matcher, compile_matcher
from crm.scoring.rules import (
    CUSTOM_FIELD_PREFIX,
    LEAD_FIELDS,
    MAX_CUSTOM_FIELD_NAME,
    Operator,
    RuleValue,
    _check_value,
)
from crm.users.model import TeamName

MAX_CONDITIONS = 20
MAX_PRIORITY = 1_000_000
# A lead's score and grade are known when it is routed, so rules may route on them (unlike scoring rules).
ASSIGNABLE_FIELDS = LEAD_FIELDS | {"score", "grade"}
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")
_SCALARS = (bool, int, float, Decimal, str)


class Condition(BaseModel):
    """One test of a lead field; `value` is checked against `operator` as for scoring rules."""

    model_config = ConfigDict(extra="forbid")

    field: str
    operator: Operator
    value: RuleValue = Field(default=None, validate_default=True)

    @field_validator("field")
    @classmethod
    def known_field(cls, name: str) -> str:
        if name in ASSIGNABLE_FIELDS:
            return name
        if name.startswith(CUSTOM_FIELD_PREFIX):
            key = name.removeprefix(CUSTOM_FIELD_PREFIX)
            if 0 < len(key) <= MAX_CUSTOM_FIELD_NAME and not _CONTROL_CHARACTERS.search(key):
                return name
        known = ", ".join(sorted(ASSIGNABLE_FIELDS))
        raise ValueError(f"unknown field: use a lead field ({known}) or custom_fields.<name>")

    @field_validator("value", mode="before")
    @classmethod
    def scalar_or_list(cls, value: object) -> object:
        if value is None or isinstance(value, _SCALARS):
            return value
        if isinstance(value, list) and all(isinstance(item, _SCALARS) for item in value):
            return value
        raise ValueError("must be a text, a number, true/false or a list of those")

    @field_validator("value")
    @classmethod
    def value_fits_operator(cls, value: RuleValue, info: ValidationInfo) -> RuleValue:
        operator = info.data.get("operator")
        if operator is None:  # the operator itself is invalid and already reported
            return value
        return _check_value(operator, value)


class AssignmentRuleDefinition(BaseModel):
    """What a rule says; shared by the API input and the stored rule. Exactly one target."""

    name: Text100
    priority: StrictInteger = Field(ge=0, le=MAX_PRIORITY)
    conditions: list[Condition] = Field(default_factory=list, max_length=MAX_CONDITIONS)
    target_user: str | None = Field(default=None, min_length=1, max_length=128)
    target_team: TeamName | None = Field(default=None, validate_default=True)
    active: StrictBool = True

    @field_validator("target_team")
    @classmethod
    def exactly_one_target(cls, team: str | None, info: ValidationInfo) -> str | None:
        user = info.data.get("target_user")
        if team is None and user is None and "target_user" in info.data:
            raise ValueError("give target_team (a team) or target_user (a user's sub)")
        if team is not None and user is not None:
            raise ValueError("give either target_team or target_user, not both")
        return team


class AssignmentRuleInput(AssignmentRuleDefinition):
    """A rule as the API receives it: unknown fields are refused."""

    model_config = ConfigDict(extra="forbid")


class AssignmentRule(AssignmentRuleDefinition):
    id: str = Field(min_length=1)
    created_at: UtcDatetime
    updated_at: UtcDatetime
    version: int = 1

    def definition(self) -> dict[str, Any]:
        return self.model_dump(include=set(AssignmentRuleDefinition.model_fields))


def _reader(field: str) -> Callable[[Lead], Any]:
    if field.startswith(CUSTOM_FIELD_PREFIX):
        key = field.removeprefix(CUSTOM_FIELD_PREFIX)
        return lambda lead: lead.custom_fields.get(key)
    return attrgetter(field)


class CompiledAssignmentRules:
    """Active rules in the order they are tried, each condition turned into a matcher once."""

    def __init__(self, rules: Iterable[AssignmentRule]) -> None:
        ordered = sorted((r for r in rules if r.active), key=lambda r: (r.priority, r.created_at, r.id))
        self._rules: list[tuple[AssignmentRule, list[tuple[Callable[[Lead], Any], Matcher]]]] = [
            (rule, [(_reader(c.field), compile_matcher(c.operator, c.value)) for c in rule.conditions])
            for rule in ordered
        ]

    def first_match(self, lead: Lead) -> AssignmentRule | None:
        for rule, tests in self._rules:
            if all(matches(read(lead)) for read, matches in tests):
                return rule
        return None


def default_assignment_rules(now: datetime, team: str) -> list[AssignmentRule]:
    """The rules a fresh install starts with (fixed ids, so seeding twice finds the same rules).

    Both send leads to `team`; they exist so that every assignment names the rule that placed it, and as
    examples to edit: big accounts first, then everything else.
    """
    return [
        AssignmentRule(
            id="seed-enterprise",
            name="Enterprise accounts (over 1,000 employees)",
            priority=10,
            conditions=[Condition(field="employee_count", operator=Operator.GT, value=1000)],
            target_team=team,
            created_at=now,
            updated_at=now,
        ),
        AssignmentRule(
            id="seed-everyone-else",
            name="Every other lead",
            priority=1000,
            conditions=[],
            target_team=team,
            created_at=now,
            updated_at=now,
        ),
    ]
