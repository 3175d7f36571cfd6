"""JSON bodies are typed: a text or a number where true/false belongs, or a text or true/false where a
whole number belongs, is refused with 422 naming the field, never read as its nearest value (as /qualify
and /convert always did). Query-string models parse text on purpose and are not concerned here."""

from decimal import Decimal
from typing import Any

import pytest
from crm.api.models.assignment import UpdateAssignmentRuleRequest
from crm.api.models.leads import CreateLeadRequest
from crm.api.models.lifecycle import UpdateLeadRequest
from crm.api.models.nurture import UpdateNurtureSequenceRequest
from crm.api.models.scoring import ScoringRulePatchRequest, ScoringRuleReplaceRequest
from crm.api.models.users import CreateUserRequest, UpdateUserRequest
from crm.assignment.rules import AssignmentRuleInput
from crm.nurture.sequences import NurtureSequence, NurtureSequenceInput
from crm.platform.errors import InvalidInput
from crm.platform.http import model_from, parse_json_object
from crm.scoring.rules import ScoringRuleInput

STEP = {"delay_hours": 1, "template": "leadflow-dev-nurture-welcome"}
SEQUENCE = {"name": "Webinar", "steps": [STEP]}
ASSIGNMENT_RULE = {"name": "Big ones", "priority": 10, "target_team": "sales"}
USER = {"sub": "rep-9", "name": "Rep Nine", "email": "rep9@example.com", "role": "rep"}
BEHAVIOURAL_RULE = {
    "name": "Opened",
    "category": "behavioural",
    "field": "activity.type",
    "operator": "equals",
    "value": "email_opened",
    "points": 2,
}
LEAD = {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com"}

NOT_BOOLEANS = ["yes", "true", 1, 0, "1"]
NOT_INTEGERS = ["5", "10", True, False, "", 2.5]

BOOLEAN_FIELDS: list[tuple[type, dict[str, Any], str]] = [
    (NurtureSequenceInput, SEQUENCE, "active"),
    (UpdateNurtureSequenceRequest, {}, "active"),
    (AssignmentRuleInput, ASSIGNMENT_RULE, "active"),
    (UpdateAssignmentRuleRequest, {}, "active"),
    (CreateUserRequest, USER, "active"),
    (UpdateUserRequest, {}, "active"),
    (ScoringRuleInput, BEHAVIOURAL_RULE, "active"),
    (ScoringRuleReplaceRequest, BEHAVIOURAL_RULE, "active"),
    (ScoringRulePatchRequest, {}, "active"),
]
INTEGER_FIELDS: list[tuple[type, dict[str, Any], str]] = [
    (NurtureSequenceInput, SEQUENCE, "priority"),
    (UpdateNurtureSequenceRequest, {}, "priority"),
    (UpdateNurtureSequenceRequest, {"name": "x"}, "version"),
    (AssignmentRuleInput, ASSIGNMENT_RULE, "priority"),
    (UpdateAssignmentRuleRequest, {}, "priority"),
    (UpdateAssignmentRuleRequest, {"name": "x"}, "version"),
    (CreateUserRequest, USER, "capacity"),
    (UpdateUserRequest, {}, "capacity"),
    (UpdateUserRequest, {"name": "x"}, "version"),
    (ScoringRuleInput, BEHAVIOURAL_RULE, "points"),
    (ScoringRuleInput, BEHAVIOURAL_RULE, "cap"),
    (ScoringRuleInput, BEHAVIOURAL_RULE, "window_days"),
    (ScoringRuleReplaceRequest, BEHAVIOURAL_RULE, "version"),
    (ScoringRulePatchRequest, {}, "points"),
    (ScoringRulePatchRequest, {}, "cap"),
    (ScoringRulePatchRequest, {}, "window_days"),
    (ScoringRulePatchRequest, {"name": "x"}, "version"),
    (CreateLeadRequest, LEAD, "employee_count"),
    (UpdateLeadRequest, {}, "employee_count"),
]


def refused_fields(model: type, data: dict[str, Any]) -> list[str]:
    with pytest.raises(InvalidInput) as raised:
        model_from(model, data)
    return [problem.field for problem in raised.value.problems]


@pytest.mark.parametrize("value", NOT_BOOLEANS, ids=repr)
@pytest.mark.parametrize(
    ("model", "base", "field"), BOOLEAN_FIELDS, ids=lambda v: getattr(v, "__name__", None)
)
def test_a_boolean_must_be_true_or_false(model: type, base: dict[str, Any], field: str, value: Any) -> None:
    assert refused_fields(model, {**base, field: value}) == [field]


@pytest.mark.parametrize("value", NOT_INTEGERS, ids=repr)
@pytest.mark.parametrize(
    ("model", "base", "field"), INTEGER_FIELDS, ids=lambda v: getattr(v, "__name__", None)
)
def test_a_whole_number_must_be_a_json_number(
    model: type, base: dict[str, Any], field: str, value: Any
) -> None:
    assert refused_fields(model, {**base, field: value}) == [field]


def test_a_step_delay_given_as_text_is_refused_naming_the_step() -> None:
    body = {**SEQUENCE, "steps": [STEP, {**STEP, "delay_hours": "24"}]}
    assert refused_fields(NurtureSequenceInput, body) == ["steps.1.delay_hours"]


def test_real_json_values_still_validate() -> None:
    body = parse_json_object(
        b'{"name": "Webinar", "active": false, "priority": 7.0,'
        b' "steps": [{"delay_hours": 24, "template": "leadflow-dev-nurture-welcome"}]}'
    )
    sequence = model_from(NurtureSequenceInput, body)
    assert (sequence.active, sequence.priority, sequence.steps[0].delay_hours) == (False, 7, 24)
    patch = model_from(
        UpdateUserRequest, parse_json_object(b'{"active": true, "capacity": 12, "version": 3}')
    )
    assert (patch.active, patch.capacity, patch.version) == (True, 12, 3)


def test_stored_items_with_dynamodb_numbers_still_load() -> None:
    # DynamoDB hands numbers back as Decimal: the stored sequence is not an API body.
    stored = NurtureSequence.model_validate(
        {
            **SEQUENCE,
            "id": "seq-1",
            "active": True,
            "priority": Decimal(100),
            "steps": [{**STEP, "delay_hours": Decimal(72)}],
            "created_at": "2026-11-25T09:30:00Z",
            "updated_at": "2026-11-25T09:30:00Z",
            "version": Decimal(4),
        }
    )
    assert (stored.priority, stored.steps[0].delay_hours, stored.version) == (100, 72, 4)
