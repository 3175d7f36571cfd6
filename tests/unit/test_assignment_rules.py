"""Assignment rules: validation with scoring's operators, and first-match-wins by priority. No AWS."""

import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from crm.assignment.rules import (
    AssignmentRule,
    AssignmentRuleInput,
    CompiledAssignmentRules,
    default_assignment_rules,
)
from crm.leads.model import Lead
from pydantic import ValidationError

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


def lead(**fields: object) -> Lead:
    values: dict[str, object] = {
        "id": "6f1c1b8e-2a52-4a53-9d8e-3f6f4a1c2b10",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "email": "ada@agency.gov",
        "lead_source": "website_form",
        "created_at": NOW,
        "updated_at": NOW,
    }
    values.update(fields)
    return Lead.model_validate(values)


def rule(
    rule_id: str, priority: int, conditions: list[dict[str, object]], **target: object
) -> AssignmentRule:
    definition = AssignmentRuleInput.model_validate(
        {"name": rule_id, "priority": priority, "conditions": conditions, **target}
    )
    return AssignmentRule(id=rule_id, created_at=NOW, updated_at=NOW, **definition.model_dump())


def test_the_first_matching_rule_by_priority_wins() -> None:
    rules = CompiledAssignmentRules(
        [
            rule("catch-all", 100, [], target_team="sales"),
            rule(
                "health",
                5,
                [{"field": "industry", "operator": "equals", "value": "healthcare"}],
                target_team="health",
            ),
            rule(
                "big-health",
                1,
                [
                    {"field": "industry", "operator": "in", "value": ["Healthcare", "Pharma"]},
                    {"field": "employee_count", "operator": "gte", "value": 1000},
                ],
                target_user="5f0b7c1e-0a11-4d2b-9a01-000000000012",
            ),
        ]
    )

    assert rules.first_match(lead(industry="Healthcare", employee_count=5000)).id == "big-health"  # type: ignore[union-attr]
    assert rules.first_match(lead(industry="Healthcare", employee_count=50)).id == "health"  # type: ignore[union-attr]
    assert rules.first_match(lead(industry="Retail")).id == "catch-all"  # type: ignore[union-attr]


def test_rules_can_route_on_score_grade_and_custom_fields_and_inactive_rules_are_skipped() -> None:
    hot = rule("hot", 1, [{"field": "grade", "operator": "in", "value": ["A", "A+"]}], target_team="closers")
    region = rule(
        "emea",
        2,
        [{"field": "custom_fields.region", "operator": "equals", "value": "EMEA"}],
        target_team="emea",
    )
    off = rule("off", 0, [], target_team="nobody").model_copy(update={"active": False})
    rules = CompiledAssignmentRules([hot, region, off])

    assert rules.first_match(lead(score=85, grade="A")).id == "hot"  # type: ignore[union-attr]
    assert rules.first_match(lead(custom_fields={"region": "emea"})).id == "emea"  # type: ignore[union-attr]
    assert rules.first_match(lead(annual_revenue=Decimal(5))) is None


def test_ties_in_priority_go_to_the_older_rule() -> None:
    older = rule("older", 10, [], target_team="a")
    newer = rule("newer", 10, [], target_team="b").model_copy(
        update={"created_at": NOW + timedelta(seconds=1)}
    )

    assert CompiledAssignmentRules([newer, older]).first_match(lead()).id == "older"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "priority": 1}, "target_team"),
        ({"name": "x", "priority": 1, "target_team": "a", "target_user": "u"}, "target_team"),
        ({"name": "x", "priority": -1, "target_team": "a"}, "priority"),
        ({"name": "x", "priority": 1, "target_team": "Not A Team!"}, "target_team"),
        (
            {
                "name": "x",
                "priority": 1,
                "target_team": "a",
                "conditions": [{"field": "shoe_size", "operator": "equals", "value": 1}],
            },
            "conditions.0.field",
        ),
        (
            {
                "name": "x",
                "priority": 1,
                "target_team": "a",
                "conditions": [{"field": "score", "operator": "gt", "value": "high"}],
            },
            "conditions.0.value",
        ),
        (
            {
                "name": "x",
                "priority": 1,
                "target_team": "a",
                "conditions": [{"field": "title", "operator": "regex", "value": r"(vp)\1"}],
            },
            "conditions.0.value",
        ),
        ({"name": "x", "priority": 1, "target_team": "a", "colour": "red"}, "colour"),
    ],
)
def test_invalid_rules_are_refused_naming_the_field(body: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as refused:
        AssignmentRuleInput.model_validate(body)

    locations = {".".join(str(part) for part in error["loc"]) for error in refused.value.errors()}
    assert field in locations


def test_the_default_rules_send_everything_to_the_default_team() -> None:
    rules = default_assignment_rules(NOW, "sales")
    compiled = CompiledAssignmentRules(rules)

    assert {r.id for r in rules} == {"seed-enterprise", "seed-everyone-else"}
    assert compiled.first_match(lead(employee_count=5000)).id == "seed-enterprise"  # type: ignore[union-attr]
    assert compiled.first_match(lead(employee_count=5)).id == "seed-everyone-else"  # type: ignore[union-attr]
    assert {r.target_team for r in rules} == {"sales"}


@pytest.mark.parametrize("pattern", [r"(a|a)*b", r"(a|aa)*b", r"\w*\w*\w*\w*\w*\w*x"])
def test_a_regex_rule_that_backtracks_elsewhere_is_saved_and_matched_in_milliseconds(pattern: str) -> None:
    rules = CompiledAssignmentRules(
        [rule("regex", 1, [{"field": "title", "operator": "regex", "value": pattern}], target_team="a")]
    )

    started = time.perf_counter()
    chosen = rules.first_match(lead(title="a" * 254 + "!"))
    elapsed = time.perf_counter() - started

    assert chosen is None
    assert elapsed < 0.05
