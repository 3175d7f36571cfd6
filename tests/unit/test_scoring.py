import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from crm.leads.model import Activity, Lead, LeadStatus, grade_for
from crm.scoring.engine import (
    CompiledRules,
    default_rule_upgrades,
    default_rules,
    score_lead,
    should_auto_qualify,
)
from crm.scoring.rules import ScoreBreakdown, ScoringCategory, ScoringRule, ScoringRuleInput
from pydantic import ValidationError

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
UPDATED_AT = NOW - timedelta(days=2)


def lead(**fields: Any) -> Lead:
    values: dict[str, Any] = {
        "id": "lead-1",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "email": "ada@example.com",
        "lead_source": "website_form",
        "created_at": NOW - timedelta(days=10),
        "updated_at": UPDATED_AT,
    }
    return Lead(**values | fields)


def activity(type_: str, days_ago: float) -> Activity:
    return Activity(
        id=f"{type_}-{days_ago}",
        lead_id="lead-1",
        type=type_,
        description=type_,
        created_by="tracker",
        created_at=NOW - timedelta(days=days_ago),
    )


def rule(field: str, operator: str, value: Any = None, points: int = 10, **extra: Any) -> ScoringRule:
    category = ScoringCategory.BEHAVIOURAL if field == "activity.type" else ScoringCategory.DEMOGRAPHIC
    return ScoringRule(
        id=f"rule-{field}-{operator}-{value}",
        name=f"{field} {operator} {value}",
        category=category,
        field=field,
        operator=operator,
        value=value,
        points=points,
        created_at=NOW,
        **extra,
    )


def score(
    the_lead: Lead, *rules: ScoringRule, activities: list[Activity] | None = None, **kwargs: Any
) -> int:
    return score_lead(the_lead, activities or [], list(rules), NOW, **kwargs).score


def seed_score(**fields: Any) -> ScoreBreakdown:
    return score_lead(lead(**fields), [], default_rules(NOW), NOW)


# ---------------------------------------------------------------- operators


@pytest.mark.parametrize(
    ("field", "operator", "value", "lead_fields", "matches"),
    [
        ("title", "equals", "head of data", {"title": "Head of Data"}, True),
        ("title", "equals", "Head", {"title": "Head of Data"}, False),
        ("employee_count", "equals", 250, {"employee_count": 250}, True),
        ("employee_count", "equals", 250, {"employee_count": 251}, False),
        ("qualified", "equals", False, {}, True),
        ("lead_status", "equals", "CONTACTED", {"lead_status": LeadStatus.CONTACTED}, True),
        ("industry", "not_equals", "technology", {"industry": "Retail"}, True),
        ("industry", "not_equals", "technology", {"industry": "Technology"}, False),
        ("industry", "not_equals", "technology", {"industry": None}, False),
        ("company", "contains", "ANALYTICS", {"company": "Acme Analytics Ltd"}, True),
        ("company", "contains", "zeta", {"company": "Acme Analytics Ltd"}, False),
        ("email", "starts_with", "CEO@", {"email": "ceo@acme.io"}, True),
        ("email", "starts_with", "cto@", {"email": "ceo@acme.io"}, False),
        ("email", "ends_with", ".IO", {"email": "ceo@acme.io"}, True),
        ("email", "ends_with", ".com", {"email": "ceo@acme.io"}, False),
        ("industry", "in", ["Technology", "Finance"], {"industry": "finance"}, True),
        ("industry", "in", ["Technology", "Finance"], {"industry": "Retail"}, False),
        ("employee_count", "gt", 100, {"employee_count": 101}, True),
        ("employee_count", "gt", 100, {"employee_count": 100}, False),
        ("employee_count", "gte", 100, {"employee_count": 100}, True),
        ("employee_count", "gte", 100, {"employee_count": 99}, False),
        ("annual_revenue", "lt", 1000, {"annual_revenue": Decimal("999.99")}, True),
        ("annual_revenue", "lt", 1000, {"annual_revenue": Decimal(1000)}, False),
        ("annual_revenue", "lte", 1000, {"annual_revenue": Decimal("1000.00")}, True),
        ("annual_revenue", "lte", 1000, {"annual_revenue": Decimal("1000.01")}, False),
        ("employee_count", "between", [10, 50], {"employee_count": 50}, True),
        ("employee_count", "between", [10, 50], {"employee_count": 10}, True),
        ("employee_count", "between", [10, 50], {"employee_count": 51}, False),
        ("employee_count", "gt", 10, {"employee_count": None}, False),
        ("phone", "exists", None, {"phone": "+44 20 7946 0000"}, True),
        ("phone", "exists", None, {}, False),
        ("phone", "not_exists", None, {}, True),
        ("phone", "not_exists", None, {"phone": "+44 20 7946 0000"}, False),
        ("title", "regex", r"\bplatform\b", {"title": "Head of PLATFORM Engineering"}, True),
        ("title", "regex", r"\bplatform\b", {"title": "Platformer"}, False),
        ("title", "regex", r"^vp", {"title": None}, False),
    ],
)
def test_each_operator_matches_what_it_says_and_ignores_case(
    field: str, operator: str, value: Any, lead_fields: dict[str, Any], matches: bool
) -> None:
    given = rule(field, operator, value, points=10)
    assert score(lead(**lead_fields), given) == (10 if matches else 0)


@pytest.mark.parametrize(
    ("operator", "value", "custom_fields", "matches"),
    [
        ("equals", "Pro", {"plan": "pro"}, True),
        ("equals", "Pro", {"plan": "team"}, False),
        ("equals", "Pro", {}, False),
        ("contains", "crm", {"plan": ["Billing", "CRM"]}, True),
        ("not_equals", "crm", {"plan": ["Billing", "CRM"]}, False),
        ("not_equals", "crm", {"plan": ["Billing"]}, True),
        ("in", [10, 12], {"plan": "12"}, True),
        ("between", [10_000, 50_000], {"plan": "25000"}, True),
        ("between", [10_000, 50_000], {"plan": "lots"}, False),
        ("gt", 5, {"plan": True}, False),
        ("exists", None, {"plan": "  "}, False),
        ("exists", None, {"plan": 0}, True),
        ("not_exists", None, {}, True),
        ("regex", "^ent", {"plan": "Enterprise"}, True),
    ],
)
def test_rules_read_custom_fields_including_numeric_text_and_multi_select_lists(
    operator: str, value: Any, custom_fields: dict[str, Any], matches: bool
) -> None:
    given = rule("custom_fields.plan", operator, value, points=10)
    assert score(lead(custom_fields=custom_fields), given) == (10 if matches else 0)


def test_a_regex_searches_the_whole_value() -> None:
    given = rule("custom_fields.notes", "regex", "budget approved$", points=10)
    assert score(lead(custom_fields={"notes": "x" * 5000 + " budget approved"}), given) == 10
    assert score(lead(custom_fields={"notes": "x" * 5000 + " budget pending"}), given) == 0


# Patterns that backtrack exponentially on a backtracking engine (over 8 s each on a 255-character near
# miss with Python's `re`), each with a value it matches; RE2 runs them in time linear in the value.
CATASTROPHIC_PATTERNS = [
    (r"(a|a)*b", "a" * 254 + "b"),
    (r"(a|aa)*b", "a" * 254 + "b"),
    (r"\w*\w*\w*\w*\w*\w*x", "a" * 254 + "x"),
    (r"(a+)+$", "a" * 255),
    (r"^(\w+\s?)*$", "ab " * 85),
]


@pytest.mark.parametrize(("pattern", "matching"), CATASTROPHIC_PATTERNS)
def test_patterns_that_backtrack_elsewhere_are_accepted_and_evaluated_in_milliseconds(
    pattern: str, matching: str
) -> None:
    given = rule("custom_fields.notes", "regex", pattern, points=10)

    started = time.perf_counter()
    ScoringRuleInput.model_validate(VALID_RULE | {"field": "title", "operator": "regex", "value": pattern})
    near_miss = score(lead(custom_fields={"notes": "a" * 254 + "!"}), given)
    elapsed = time.perf_counter() - started

    assert near_miss == 0
    assert score(lead(custom_fields={"notes": matching}), given) == 10
    assert elapsed < 0.05


def test_inactive_rules_do_not_score() -> None:
    assert score(lead(title="CEO"), rule("title", "contains", "ceo", active=False)) == 0


# ---------------------------------------------------------------- validation

VALID_RULE = {
    "name": "Big company",
    "category": "firmographic",
    "field": "employee_count",
    "operator": "gt",
    "value": 1000,
    "points": 15,
}


COUNT_RULE = {
    "category": "behavioural",
    "field": "activity.type",
    "operator": "equals",
    "value": "email_opened",
    "count_operator": "gt",
    "count_value": 5,
}


def fields_named(**changes: Any) -> set[str]:
    """The fields an error names for VALID_RULE with `changes` (a change to ... removes the key)."""
    payload = {key: value for key, value in (VALID_RULE | changes).items() if value is not ...}
    with pytest.raises(ValidationError) as raised:
        ScoringRuleInput.model_validate(payload)
    return {str(error["loc"][0]) for error in raised.value.errors()}


def test_a_valid_rule_becomes_a_scoring_rule_with_an_id() -> None:
    given = ScoringRuleInput.model_validate_json(
        '{"name": "Mid-size", "category": "firmographic", "field": "employee_count",'
        ' "operator": "between", "value": [100, 999.5], "points": 8}'
    )
    stored = given.to_rule("rule-42", NOW)
    assert (stored.id, stored.value, stored.created_at) == ("rule-42", [100, Decimal("999.5")], NOW)
    assert score(lead(employee_count=500), stored) == 8


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"operator": "roughly"}, "operator"),
        ({"field": "shoe_size"}, "field"),
        ({"field": "score"}, "field"),
        ({"field": "custom_fields."}, "field"),
        ({"field": "activity.type"}, "field"),
        ({"category": "behavioural", "field": "title", "operator": "equals", "value": "x"}, "field"),
        ({"points": 1001}, "points"),
        ({"points": -1001}, "points"),
        ({"points": 2.5}, "points"),
        ({"operator": "regex", "value": "(unclosed"}, "value"),
        ({"operator": "regex", "value": "a" * 201}, "value"),
        ({"operator": "regex", "value": r"(a)\1"}, "value"),
        ({"operator": "regex", "value": "vp(?= of)"}, "value"),
        ({"operator": "regex", "value": "(?<!s)vp"}, "value"),
        ({"operator": "between", "value": [1]}, "value"),
        ({"operator": "between", "value": [5, 1]}, "value"),
        ({"operator": "between", "value": "1-5"}, "value"),
        ({"operator": "in", "value": "Technology"}, "value"),
        ({"operator": "in", "value": []}, "value"),
        ({"operator": "exists", "value": "x"}, "value"),
        ({"operator": "gt", "value": "100"}, "value"),
        ({"operator": "gt", "value": True}, "value"),
        ({"operator": "gt", "value": ...}, "value"),
        ({"operator": "contains", "value": " "}, "value"),
        ({"operator": "equals", "value": ["a", "b"]}, "value"),
        ({"operator": "equals", "value": {"a": 1}}, "value"),
        ({"operator": "in", "value": [["a"]]}, "value"),
        ({"cap": 10}, "cap"),
        ({"window_days": 7}, "window_days"),
        ({"count_operator": "gt", "count_value": 5}, "count_operator"),
        ({"weight": 3}, "weight"),
        (COUNT_RULE | {"count_operator": "lt"}, "count_operator"),
        (COUNT_RULE | {"count_operator": "between"}, "count_operator"),
        (COUNT_RULE | {"count_value": ...}, "count_value"),
        (COUNT_RULE | {"count_operator": ...}, "count_value"),
        (COUNT_RULE | {"count_value": 0}, "count_value"),
        (COUNT_RULE | {"count_value": 100_001}, "count_value"),
        (COUNT_RULE | {"count_value": "5"}, "count_value"),
        (COUNT_RULE | {"count_value": 5.5}, "count_value"),
        (COUNT_RULE | {"cap": 40}, "cap"),
    ],
)
def test_an_invalid_rule_is_refused_naming_the_field_at_fault(changes: dict[str, Any], named: str) -> None:
    assert fields_named(**changes) == {named}


def test_a_count_rule_takes_a_window() -> None:
    given = ScoringRuleInput.model_validate(VALID_RULE | COUNT_RULE | {"window_days": 30})
    assert (given.count_operator, given.count_value, given.window_days, given.counts) == ("gt", 5, 30, True)


@pytest.mark.parametrize("pattern", [r"^(a|b)+$", r"^\d{3}-\d{4}$", r"[(+)]+x+", r"\(a+\)+", r"(ab)+c*"])
def test_ordinary_regexes_are_accepted(pattern: str) -> None:
    ScoringRuleInput.model_validate(VALID_RULE | {"field": "title", "operator": "regex", "value": pattern})


def test_behavioural_rules_take_a_cap_and_a_window() -> None:
    given = ScoringRuleInput.model_validate(
        {
            "name": "Webinars",
            "category": "behavioural",
            "field": "activity.type",
            "operator": "in",
            "value": ["webinar_registered", "webinar_attended"],
            "points": 5,
            "cap": 20,
            "window_days": 90,
        }
    )
    assert (given.cap, given.window_days) == (20, 90)


# ---------------------------------------------------------------- the seed's scoring


@pytest.mark.parametrize(
    ("fields", "expected_score", "expected_grade"),
    [
        (
            {
                "title": "CTO",
                "employee_count": 5000,
                "industry": "Technology",
                "annual_revenue": Decimal(50_000_000),
                "email": "cto@agency.gov",
            },
            20 + 15 + 15 + 10 + 10,
            "B",
        ),
        ({"title": "VP and Director of Sales"}, 15, "F"),
        ({"title": "SVP Marketing"}, 15, "F"),
        ({"title": "Vice President, Finance"}, 15, "F"),
        ({"title": "Director of Engineering"}, 10, "F"),  # "direCTOr" is not a CTO
        ({"title": "Chief Revenue Officer"}, 20, "F"),
        ({"title": "C-level"}, 20, "F"),
        ({"title": "c-LEVEL executive"}, 20, "F"),
        ({"title": "Sales (C-Level)"}, 20, "F"),
        ({"title": "VP, C-level relations"}, 20, "F"),  # one title tier counts: the best
        ({"title": "Abc-level manager"}, 0, "F"),
        ({"title": "C level"}, 0, "F"),
        ({"title": "CEO & Director"}, 20, "F"),
        ({"title": "Software Engineer"}, 0, "F"),
        ({"email": "prof@mit.edu"}, 5, "F"),
        ({"employee_count": 10}, 0, "F"),
        ({"employee_count": 11}, 5, "F"),
        ({"employee_count": 100}, 5, "F"),
        ({"employee_count": 101}, 10, "F"),
        ({"employee_count": 1000}, 10, "F"),
        ({"employee_count": 1001}, 15, "F"),
        ({"annual_revenue": Decimal(1_000_000)}, 0, "F"),
        ({"annual_revenue": Decimal("1000000.01")}, 10, "F"),
        ({"annual_revenue": Decimal(10_000_000)}, 10, "F"),
        ({"annual_revenue": Decimal(10_000_001)}, 15, "F"),
        ({"industry": "healthcare"}, 10, "F"),
        ({"industry": "Retail"}, 0, "F"),
        (
            {
                "title": "ceo & founder",
                "email": "dean@school.edu",
                "employee_count": 1000,
                "annual_revenue": Decimal(10_000_000),
                "industry": "Finance",
            },
            20 + 5 + 10 + 10 + 10,
            "D",
        ),
    ],
)
def test_a_fresh_install_scores_as_the_seed_did(
    fields: dict[str, Any], expected_score: int, expected_grade: str
) -> None:
    breakdown = seed_score(**fields)
    assert (breakdown.score, breakdown.grade) == (expected_score, expected_grade)


def test_the_seed_ledger_names_each_rule_that_counted() -> None:
    breakdown = seed_score(
        title="CTO",
        employee_count=5000,
        industry="Technology",
        annual_revenue=Decimal(50_000_000),
        email="cto@agency.gov",
    )
    assert {entry.rule_name: entry.points for entry in breakdown.entries} == {
        "Title: C-level": 20,
        "Email: .gov": 10,
        "Over 1,000 employees": 15,
        "Revenue over $10M": 15,
        "Target industry": 10,
    }
    assert {entry.awarded_at for entry in breakdown.entries} == {UPDATED_AT}
    assert breakdown.entries[0].matched_value == "CTO"


def test_the_seed_scores_activities_by_type() -> None:
    activities = [activity("demo_requested", 1), *(activity("email_opened", day) for day in (1, 2, 3))]
    activities += [activity("page_viewed", 1), activity("lead_captured", 1)]
    assert score_lead(lead(), activities, default_rules(NOW), NOW).score == 20 + 3 * 2 + 1


def test_the_seed_rules_are_stable_and_editable_through_the_api() -> None:
    first, again = default_rules(NOW), default_rules(NOW + timedelta(days=1))
    assert [r.id for r in first] == [r.id for r in again]
    assert len({r.id for r in first}) == len(first) == 18
    assert [r.id for r in first if not r.active] == [
        "seed-quick-start-email-opens",
        "seed-quick-start-page-views",
    ]
    for seeded in first:
        ScoringRuleInput.model_validate(seeded.model_dump(exclude={"id", "created_at"}))


# ---------------------------------------------------------------- grades and qualification


@pytest.mark.parametrize(
    ("points", "grade"),
    [
        (0, "F"),
        (49, "F"),
        (50, "D"),
        (59, "D"),
        (60, "C"),
        (69, "C"),
        (70, "B"),
        (79, "B"),
        (80, "A"),
        (89, "A"),
        (90, "A+"),
        (1000, "A+"),
    ],
)
def test_grade_boundaries(points: int, grade: str) -> None:
    assert grade_for(points) == grade


@pytest.mark.parametrize(
    ("lead_fields", "new_score", "qualifies"),
    [
        ({}, 80, True),
        ({"lead_status": LeadStatus.CONTACTED}, 95, True),
        ({}, 79, False),
        ({"lead_status": LeadStatus.QUALIFIED, "qualified": True, "qualified_at": NOW}, 90, False),
        ({"lead_status": LeadStatus.UNQUALIFIED}, 90, False),
        ({"lead_status": LeadStatus.CONVERTED, "converted": True}, 90, False),
        ({"lead_status": LeadStatus.CONTACTED, "qualified_at": NOW - timedelta(days=3)}, 90, False),
    ],
)
def test_a_lead_is_qualified_automatically_once_and_never_against_a_persons_decision(
    lead_fields: dict[str, Any], new_score: int, qualifies: bool
) -> None:
    assert should_auto_qualify(lead(**lead_fields), new_score) is qualifies


# ---------------------------------------------------------------- behaviour: decay, caps, windows

DEMO = rule("activity.type", "equals", "demo_requested", points=20)


@pytest.mark.parametrize(("days_ago", "points"), [(0, 20), (30, 10), (60, 5), (90, 3)])
def test_behavioural_points_halve_every_half_life(days_ago: int, points: int) -> None:
    assert score(lead(), DEMO, activities=[activity("demo_requested", days_ago)], half_life_days=30) == points


def test_decay_is_off_by_default_and_never_touches_attribute_rules() -> None:
    old_demo = [activity("demo_requested", 365)]
    assert score(lead(), DEMO, activities=old_demo) == 20
    old_lead = lead(title="CEO", updated_at=NOW - timedelta(days=365))
    assert score(old_lead, rule("title", "equals", "ceo", points=20), half_life_days=30) == 20


def test_a_half_life_must_be_positive() -> None:
    with pytest.raises(ValueError, match="half_life_days"):
        score(lead(), DEMO, half_life_days=0)


def test_a_cap_limits_what_one_activity_type_can_give() -> None:
    clicks = rule("activity.type", "equals", "email_clicked", points=5, cap=12)
    breakdown = score_lead(lead(), [activity("email_clicked", day) for day in range(5)], [clicks], NOW)
    (entry,) = breakdown.entries
    assert (breakdown.score, entry.points, entry.raw_points, entry.activity_count) == (12, 12, 25, 5)


def test_a_cap_applies_to_decayed_points() -> None:
    demos = rule("activity.type", "equals", "demo_requested", points=20, cap=40)
    activities = [activity("demo_requested", 30) for _ in range(3)]
    assert score(lead(), demos, activities=activities, half_life_days=30) == 30


def test_a_window_counts_only_recent_activities() -> None:
    views = rule("activity.type", "equals", "page_viewed", points=1, window_days=7)
    breakdown = score_lead(lead(), [activity("page_viewed", day) for day in (1, 3, 6.9, 7, 10)], [views], NOW)
    (entry,) = breakdown.entries
    assert (breakdown.score, entry.activity_count) == (3, 3)
    assert entry.awarded_at == NOW - timedelta(days=1)


def test_a_behavioural_rule_can_match_several_types() -> None:
    webinars = rule("activity.type", "in", ["webinar_registered", "webinar_attended"], points=5)
    activities = [
        activity("webinar_registered", 4),
        activity("webinar_attended", 2),
        activity("page_viewed", 1),
    ]
    assert score(lead(), webinars, activities=activities) == 10


def opens(count: int, days_ago: float = 1) -> list[Activity]:
    return [activity("email_opened", days_ago + index / 1000) for index in range(count)]


@pytest.mark.parametrize(("count", "points"), [(0, 0), (1, 0), (5, 0), (6, 20), (40, 20)])
def test_a_count_rule_gives_its_points_once_for_more_than_its_count(count: int, points: int) -> None:
    more_than_5 = rule(
        "activity.type", "equals", "email_opened", points=20, count_operator="gt", count_value=5
    )
    assert score(lead(), more_than_5, activities=opens(count)) == points


@pytest.mark.parametrize(("count", "points"), [(4, 0), (5, 20), (6, 20)])
def test_a_count_rule_can_ask_for_at_least_its_count(count: int, points: int) -> None:
    at_least_5 = rule(
        "activity.type", "equals", "email_opened", points=20, count_operator="gte", count_value=5
    )
    assert score(lead(), at_least_5, activities=opens(count)) == points


def test_a_count_rule_counts_only_its_window_and_its_types() -> None:
    recent = rule(
        "activity.type", "equals", "page_viewed", points=15, count_operator="gt", count_value=2, window_days=7
    )
    old_and_other = [activity("page_viewed", day) for day in (7, 8, 30)] + [activity("email_opened", 1)] * 5
    assert score(lead(), recent, activities=[*old_and_other, *[activity("page_viewed", 2)] * 2]) == 0
    breakdown = score_lead(lead(), [*old_and_other, *[activity("page_viewed", 2)] * 3], [recent], NOW)
    (entry,) = breakdown.entries
    assert (breakdown.score, entry.points, entry.raw_points, entry.activity_count) == (15, 15, 15, 3)
    assert entry.awarded_at == NOW - timedelta(days=2)


def test_a_count_rules_points_do_not_decay() -> None:
    more_than_5 = rule(
        "activity.type", "equals", "email_opened", points=20, count_operator="gt", count_value=5
    )
    assert score(lead(), more_than_5, activities=opens(6, days_ago=90), half_life_days=30) == 20


def test_the_quick_start_rules_once_switched_on_add_to_the_points_per_activity() -> None:
    rules = default_rules(NOW)
    switched_on = [
        r.model_copy(update={"active": True}) if r.id.startswith("seed-quick-start") else r for r in rules
    ]
    activities = [*opens(6), *[activity("page_viewed", 1)] * 11]
    before = score_lead(lead(), activities, rules, NOW)
    after = score_lead(lead(), activities, switched_on, NOW)
    assert before.score == 6 * 2 + 11 * 1
    assert after.score - before.score == 20 + 15
    assert {e.rule_id: e.points for e in after.entries if e.rule_id.startswith("seed-quick-start")} == {
        "seed-quick-start-email-opens": 20,
        "seed-quick-start-page-views": 15,
    }


# ---------------------------------------------------------------- upgrading an earlier release's defaults


def first_release_defaults() -> list[ScoringRule]:
    """The defaults as the first release seeded them: no quick-start rules, the C-level rule without
    the literal "C-level"."""
    earlier = [r for r in default_rules(NOW) if not r.id.startswith("seed-quick-start")]
    return [
        r.model_copy(update={"value": r"\b(ceo|cto|cfo|coo|cmo|cio|chief)\b"})
        if r.id == "seed-title-c-level"
        else r
        for r in earlier
    ]


def test_an_earlier_install_gets_the_new_defaults_and_the_unchanged_c_level_rule() -> None:
    upgrades = default_rule_upgrades(first_release_defaults(), 1, NOW)
    assert [r.id for r in upgrades] == [
        "seed-title-c-level",
        "seed-quick-start-email-opens",
        "seed-quick-start-page-views",
    ]
    assert score_lead(lead(title="C-level"), [], upgrades, NOW).score == 20


def test_an_upgrade_keeps_what_the_team_edited_or_deleted() -> None:
    edited = [
        r.model_copy(update={"points": 25}) if r.id == "seed-title-c-level" else r
        for r in first_release_defaults()
    ]
    assert [r.id for r in default_rule_upgrades(edited, 1, NOW)] == [
        "seed-quick-start-email-opens",
        "seed-quick-start-page-views",
    ]
    without_quick_start = [r for r in default_rules(NOW) if r.id != "seed-quick-start-page-views"]
    assert default_rule_upgrades(without_quick_start, 2, NOW) == []
    assert default_rule_upgrades(default_rules(NOW), 2, NOW) == []


# ---------------------------------------------------------------- the ledger


def test_the_ledger_adds_up_to_the_score_when_decay_leaves_fractions() -> None:
    rules = [rule("activity.type", "equals", kind, points=1) for kind in ("page_viewed", "email_opened", "x")]
    activities = [activity(kind, 1) for kind in ("page_viewed", "email_opened", "x")]
    breakdown = score_lead(lead(), activities, rules, NOW, half_life_days=1)  # three times 0.5
    assert breakdown.score == 2  # 1.5 rounds half up
    assert sum(entry.points for entry in breakdown.entries) == breakdown.score
    assert all(abs(entry.points - 0.5) < 1 for entry in breakdown.entries)


def test_half_a_point_rounds_up() -> None:
    opened = rule("activity.type", "equals", "email_opened", points=5)
    assert score(lead(), opened, activities=[activity("email_opened", 1)], half_life_days=1) == 3


def test_negative_rules_lower_the_score_but_never_below_zero() -> None:
    student = rule("email", "ends_with", ".edu", points=-50)
    breakdown = score_lead(lead(email="kid@school.edu", title="CEO"), [], [student, *default_rules(NOW)], NOW)
    assert (breakdown.score, breakdown.grade) == (0, "F")
    assert sum(entry.points for entry in breakdown.entries) == 20 + 5 - 50
    assert breakdown.limit_adjustment == 25


def test_the_score_is_held_at_1000() -> None:
    rules = [rule("title", "exists", points=1000), rule("email", "exists", points=1000)]
    breakdown = score_lead(lead(title="CEO"), [], rules, NOW)
    assert (breakdown.score, breakdown.grade, breakdown.limit_adjustment) == (1000, "A+", -1000)


def test_compiled_rules_score_many_leads_like_score_lead() -> None:
    rules = default_rules(NOW)
    compiled = CompiledRules(rules)
    leads = [lead(title="VP Sales"), lead(employee_count=500, industry="Finance"), lead()]
    activities = [activity("form_submitted", 3)]
    assert [compiled.score(each, activities, NOW, 30) for each in leads] == [
        score_lead(each, activities, rules, NOW, 30) for each in leads
    ]


def test_a_ledger_entry_says_which_rule_gave_what_and_when() -> None:
    demos = rule("activity.type", "equals", "demo_requested", points=20)
    activities = [activity("demo_requested", 30), activity("demo_requested", 60)]
    (entry,) = score_lead(lead(), activities, [demos], NOW, half_life_days=30).entries
    assert entry.model_dump() == {
        "rule_id": demos.id,
        "rule_name": demos.name,
        "category": ScoringCategory.BEHAVIOURAL,
        "points": 15,
        "raw_points": 40,
        "matched_value": None,
        "activity_count": 2,
        "awarded_at": NOW - timedelta(days=30),
    }
