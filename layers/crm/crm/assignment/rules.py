"""Assignment rules: which team or user a lead goes to. Data, validation and matching; no AWS.

Rules are tried by ascending `priority` (then by creation); the first active rule whose conditions all
match the lead decides the target: a user (`target_user`, a sub) or a team (`target_team`). No match: the
default team (settings). A rule without conditions matches every lead.

Conditions (`crm.leads.criteria`) use the rule-condition language of scoring rules (`crm.conditions`), so
"equals", "in", "between" or "regex" mean the same thing in both places.
"""

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationInfo, field_validator

from crm.conditions import Matcher, Operator, compile_matcher, field_reader
from crm.leads.criteria import MAX_CONDITIONS, MAX_PRIORITY, Condition
from crm.leads.model import Lead, UtcDatetime
from crm.platform.fields import StrictInteger, Text100
from crm.users.model import TeamName


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
    updated_by: str | None = None  # who made the last change (`user:<sub>`); None for seeded rules
    version: int = 1

    def definition(self) -> dict[str, Any]:
        return self.model_dump(include=set(AssignmentRuleDefinition.model_fields))


class CompiledAssignmentRules:
    """Active rules in the order they are tried, each condition turned into a matcher once."""

    def __init__(self, rules: Iterable[AssignmentRule]) -> None:
        ordered = sorted((r for r in rules if r.active), key=lambda r: (r.priority, r.created_at, r.id))
        self._rules: list[tuple[AssignmentRule, list[tuple[Callable[[Lead], Any], Matcher]]]] = [
            (rule, [(field_reader(c.field), compile_matcher(c.operator, c.value)) for c in rule.conditions])
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
