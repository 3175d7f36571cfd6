"""Scoring benchmark: rules evaluated per second, as a ratio to a baseline measured in the same run.

    PYTHONPATH=layers/crm:. python -m tests.bench.scoring_rules [--repeat 5]

One lead (with custom fields and 20 activities) against 50 rules: the 16 active defaults (not the two
switched-off quick-start rules) plus 34 rules covering every operator. Figures:
1. Baseline: a plain Python loop doing 50 dict lookups and comparisons (the least any engine can do).
2. `CompiledRules.score` (rules compiled once, ledger built), then `score_lead` (compiling each time).
"""

import argparse
import timeit
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from crm.leads.model import Activity, Lead
from crm.scoring.engine import CompiledRules, default_rules, score_lead
from crm.scoring.rules import ScoringRule

RULE_COUNT = 50
NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)

EXTRA_RULES: list[tuple[str, str, Any]] = [
    ("title", "equals", "Head of Platform"),
    ("title", "not_equals", "Intern"),
    ("title", "starts_with", "head"),
    ("title", "ends_with", "platform"),
    ("title", "regex", r"\b(head|lead)\b"),
    ("company", "contains", "analytics"),
    ("company", "exists", None),
    ("phone", "exists", None),
    ("phone", "not_exists", None),
    ("industry", "equals", "Technology"),
    ("industry", "not_equals", "Retail"),
    ("lead_source", "in", ["website_form", "partner_webhook", "live_chat"]),
    ("lead_source", "equals", "api"),
    ("email", "ends_with", ".io"),
    ("email", "regex", r"@(gmail|yahoo|hotmail)\."),
    ("employee_count", "between", [200, 2000]),
    ("employee_count", "gte", 500),
    ("employee_count", "lt", 50),
    ("annual_revenue", "lte", 5_000_000),
    ("annual_revenue", "between", [1_000_000, 100_000_000]),
    ("custom_fields.plan", "equals", "enterprise"),
    ("custom_fields.plan", "in", ["team", "enterprise"]),
    ("custom_fields.seats", "gt", 100),
    ("custom_fields.seats", "between", [10, 1000]),
    ("custom_fields.budget", "gte", 25_000),
    ("custom_fields.interests", "contains", "crm"),
    ("custom_fields.country", "in", ["GB", "IE", "DE", "FR"]),
    ("custom_fields.referrer", "exists", None),
    ("custom_fields.coupon", "not_exists", None),
    ("custom_fields.utm_campaign", "starts_with", "q4-"),
    ("activity.type", "in", ["webinar_registered", "webinar_attended"]),
    ("activity.type", "equals", "pricing_viewed"),
    ("activity.type", "starts_with", "trial_"),
    ("activity.type", "regex", "^case_study"),
]


def fifty_rules() -> list[ScoringRule]:
    extra = [
        ScoringRule(
            id=f"bench-{index}",
            name=f"{field} {operator}",
            category="behavioural" if field == "activity.type" else "firmographic",
            field=field,
            operator=operator,
            value=value,
            points=3,
            created_at=NOW,
        )
        for index, (field, operator, value) in enumerate(EXTRA_RULES)
    ]
    rules = [*(rule for rule in default_rules(NOW) if rule.active), *extra]
    assert len(rules) == RULE_COUNT
    return rules


def bench_lead() -> Lead:
    return Lead(
        id="lead-1",
        first_name="Ada",
        last_name="Lovelace",
        email="ada@analytical.io",
        company="Analytical Engines Analytics",
        title="Head of Platform",
        industry="Technology",
        employee_count=1200,
        annual_revenue=Decimal(12_000_000),
        lead_source="website_form",
        custom_fields={
            "plan": "enterprise",
            "seats": "250",
            "budget": 40_000,
            "interests": ["CRM", "billing"],
            "country": "GB",
            "utm_campaign": "q4-launch",
        },
        created_at=NOW - timedelta(days=40),
        updated_at=NOW - timedelta(days=2),
    )


def bench_activities() -> list[Activity]:
    kinds = ["email_opened", "email_clicked", "page_viewed", "pricing_viewed", "webinar_attended"]
    return [
        Activity(
            id=f"activity-{day}",
            lead_id="lead-1",
            type=kinds[day % len(kinds)],
            description="bench",
            created_by="tracker",
            created_at=NOW - timedelta(days=day * 3),
        )
        for day in range(20)
    ]


def baseline_loop() -> Callable[[], int]:
    """50 dict lookups and comparisons: a floor, no rule could be cheaper."""
    record = bench_lead().model_dump()
    checks = [(name, record[name], 3) for name in list(record)[:10]] * (RULE_COUNT // 10)

    def evaluate() -> int:
        total = 0
        for name, expected, points in checks:
            if record.get(name) == expected:
                total += points
        return total

    return evaluate


def calls_per_second(operation: Callable[[], object], repeat: int) -> float:
    timer = timeit.Timer(operation)
    loops, _ = timer.autorange()
    return loops / min(timer.repeat(repeat=repeat, number=loops))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=5, help="timing rounds (the best is kept)")
    args = parser.parse_args()

    rules, lead, activities = fifty_rules(), bench_lead(), bench_activities()
    compiled = CompiledRules(rules)
    breakdown = compiled.score(lead, activities, NOW, 30)

    baseline = calls_per_second(baseline_loop(), args.repeat) * RULE_COUNT
    engine = calls_per_second(lambda: compiled.score(lead, activities, NOW, 30), args.repeat) * RULE_COUNT
    uncompiled = (
        calls_per_second(lambda: score_lead(lead, activities, rules, NOW, 30), args.repeat) * RULE_COUNT
    )

    print(
        f"1 lead, {len(activities)} activities, {RULE_COUNT} rules "
        f"({len(breakdown.entries)} matched, score {breakdown.score} {breakdown.grade})"
    )
    print(f"  baseline (50 dict lookups):  {baseline:12,.0f} rules/s   (baseline)")
    print(
        f"  CompiledRules.score:         {engine:12,.0f} rules/s   "
        f"{RULE_COUNT / engine * 1e6:6.1f} us per lead   ratio {engine / baseline:.1%} of baseline"
    )
    print(
        f"  score_lead (compiles):       {uncompiled:12,.0f} rules/s   "
        f"{RULE_COUNT / uncompiled * 1e6:6.1f} us per lead   ratio {uncompiled / baseline:.1%} of baseline"
    )


if __name__ == "__main__":
    main()
