"""HTTP models of assignment rules and manual assignment (input and output), apart from the domain.

A new assignment rule is `crm.assignment.rules.AssignmentRuleInput` (shared with the domain's checks).
"""

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator

from crm.api.models.users import SubId
from crm.assignment.rules import AssignmentRule
from crm.leads.criteria import MAX_CONDITIONS, MAX_PRIORITY, Condition
from crm.leads.model import UtcDatetime
from crm.platform.fields import StrictInteger, Text100
from crm.users.model import TeamName


class UpdateAssignmentRuleRequest(BaseModel):
    """A partial change; giving one target replaces the other."""

    model_config = ConfigDict(extra="forbid")

    name: Text100 | None = None
    priority: StrictInteger | None = Field(default=None, ge=0, le=MAX_PRIORITY)
    conditions: list[Condition] | None = Field(default=None, max_length=MAX_CONDITIONS)
    target_user: str | None = Field(default=None, min_length=1, max_length=128)
    target_team: TeamName | None = None
    active: StrictBool | None = None
    version: StrictInteger | None = Field(
        default=None, ge=1, description="the version you read (or If-Match)"
    )

    @field_validator("name", "priority", "conditions", "active", mode="before")
    @classmethod
    def not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("may not be null")
        return value

    def merged_into(self, rule: AssignmentRule) -> dict[str, Any]:
        changes = self.model_dump(exclude_unset=True, exclude={"version"})
        merged = {**rule.definition(), **changes}
        if "target_user" in changes and "target_team" not in changes:
            merged["target_team"] = None
        if "target_team" in changes and "target_user" not in changes:
            merged["target_user"] = None
        return merged


class AssignmentRuleResponse(BaseModel):
    id: str
    name: str
    priority: int
    conditions: list[Condition]
    target_user: str | None
    target_team: str | None
    active: bool
    created_at: UtcDatetime
    updated_at: UtcDatetime
    updated_by: str | None = Field(default=None, description="Who made the last change (`user:<sub>`)")
    version: int

    @classmethod
    def from_rule(cls, rule: AssignmentRule) -> "AssignmentRuleResponse":
        return cls.model_validate(rule.model_dump())


class AssignmentRuleListResponse(BaseModel):
    items: list[AssignmentRuleResponse]
    next_cursor: str | None = Field(default=None, description="Always null: the whole list is one page")
    rules: list[AssignmentRuleResponse] = Field(description="Deprecated alias of `items` (one release)")


class AssignLeadRequest(BaseModel):
    """Manual assignment: to the user with this sub, with an optional reason kept in the activity."""

    model_config = ConfigDict(extra="forbid")

    assigned_to: SubId
    reason: str | None = Field(default=None, min_length=1, max_length=500)
