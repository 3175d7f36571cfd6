"""Conditions on a lead's fields: what assignment rules and nurture sequences test (plain Python, no AWS).

A condition is one field, one operator of the rule-condition language (`crm.conditions`) and a value
checked against the operator. Unlike scoring rules, these may test a lead's score and grade: they are
known when a lead is routed or enrolled.
"""

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from crm.conditions import Operator, RuleValue, check_value, check_value_shape, custom_field_name_ok
from crm.leads.model import LEAD_FIELDS

MAX_CONDITIONS = 20
MAX_PRIORITY = 1_000_000
# A lead's score and grade are known when it is routed, so rules may route on them (unlike scoring rules).
ASSIGNABLE_FIELDS = LEAD_FIELDS | {"score", "grade"}


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
        if custom_field_name_ok(name):
            return name
        known = ", ".join(sorted(ASSIGNABLE_FIELDS))
        raise ValueError(f"unknown field: use a lead field ({known}) or custom_fields.<name>")

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
