"""Lead scoring: rules (data, see `crm.scoring.rules`) applied to a lead and its activities.

Pure domain logic: no AWS, no I/O. Rules are compiled once into plain callables (`CompiledRules`),
so scoring a lead is a loop over matchers. Every score comes with its ledger (`ScoreBreakdown`).

Semantics a rule author can rely on (how one value matches: `crm.conditions`):
- Rules sharing a `group` are tiers: only the best-scoring match of a group counts.
- Behavioural rules give their points per matching activity (by activity type), then decay with the
  activity's age, then the cap limits the rule's total.
- A count rule (a behavioural rule with `count_operator`) gives its points once, undecayed, while the number
  of matching activities in its window is more than (gt) / at least (gte) its `count_value`.
"""

import math
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from crm.conditions import Matcher, Operator, RuleScalar, RuleValue, compile_matcher, field_reader
from crm.leads.model import Activity, Lead, LeadStatus, grade_for
from crm.platform import budget
from crm.scoring.rules import (
    ACTIVITY_TYPE_FIELD,
    RuleDefinition,
    ScoreBreakdown,
    ScoreEntry,
    ScoringCategory,
    ScoringRule,
)

MIN_SCORE = 0
MAX_SCORE = 1000
AUTO_QUALIFY_SCORE = 80
SECONDS_PER_DAY = 86_400


def should_auto_qualify(lead: Lead, new_score: int) -> bool:
    """Qualify a lead automatically once, the first time its score reaches 80.

    A person's decision wins: a lead already qualified, unqualified or converted is left alone, and a
    lead qualified before (qualified_at is set) is not qualified again after someone undid it.
    """
    return (
        new_score >= AUTO_QUALIFY_SCORE
        and lead.lead_status in (LeadStatus.NEW, LeadStatus.CONTACTED)
        and not lead.qualified
        and not lead.converted
        and lead.qualified_at is None
    )


# ---------------------------------------------------------------- scoring


@dataclass(slots=True)
class _Award:
    """A matched rule before rounding: `points` is exact (decayed, capped)."""

    rule: ScoringRule
    points: float
    raw_points: int
    awarded_at: datetime
    matched_value: Any = None
    activity_count: int | None = None


@dataclass(frozen=True, slots=True)
class _AttributeRule:
    rule: ScoringRule
    read: Callable[[Lead], Any]
    matches: Matcher

    def award(self, lead: Lead) -> _Award | None:
        value = self.read(lead)
        if not self.matches(value):
            return None
        return _Award(self.rule, self.rule.points, self.rule.points, lead.updated_at, matched_value=value)


# Per activity type: (when it happened, its decay weight in 0..1).
_Occurrences = dict[str, list[tuple[datetime, float]]]


@dataclass(frozen=True, slots=True)
class _BehaviouralRule:
    rule: ScoringRule
    matches_type: Matcher
    # A count rule's test of how many activities matched; None: points per activity.
    count_holds: Matcher | None = None

    def award(self, occurrences: _Occurrences, now: datetime) -> _Award | None:
        window = self.rule.window_days
        cutoff = now - timedelta(days=window) if window is not None else None
        counted = [
            (happened_at, weight)
            for activity_type, found in occurrences.items()
            if self.matches_type(activity_type)
            for happened_at, weight in found
            if cutoff is None or happened_at > cutoff
        ]
        if not counted:
            return None
        newest = max(happened_at for happened_at, _ in counted)
        if self.count_holds is not None:
            if not self.count_holds(len(counted)):
                return None
            return _Award(self.rule, self.rule.points, self.rule.points, newest, activity_count=len(counted))
        points = self.rule.points * math.fsum(weight for _, weight in counted)
        if self.rule.cap is not None:
            points = math.copysign(min(abs(points), self.rule.cap), points)
        return _Award(self.rule, points, self.rule.points * len(counted), newest, activity_count=len(counted))


def _occurrences(activities: Iterable[Activity], now: datetime, half_life_days: float | None) -> _Occurrences:
    by_type: _Occurrences = defaultdict(list)
    for activity in activities:
        weight = 1.0
        if half_life_days is not None:
            # An activity stamped slightly in the future (clock skew) counts as new, never as more than new.
            age_days = max(0.0, (now - activity.created_at).total_seconds() / SECONDS_PER_DAY)
            weight = 0.5 ** (age_days / half_life_days)
        by_type[activity.type].append((activity.created_at, weight))
    return by_type


def _best_of_each_group(awards: list[_Award]) -> list[_Award]:
    best: dict[str, _Award] = {}
    for award in awards:
        group = award.rule.group
        if group is not None and (group not in best or award.points > best[group].points):
            best[group] = award
    return [award for award in awards if award.rule.group is None or best[award.rule.group] is award]


def round_half_up(value: float) -> int:
    # Decay makes points floats: drop float noise (9.9999999997) before rounding halves up.
    return math.floor(round(value, 9) + 0.5)


def _ledger(awards: list[_Award]) -> list[ScoreEntry]:
    """Entries in whole points that add up to the rounded total.

    Each entry gets the change in the rounded running total, so rounding never adds or loses a point
    across the ledger; an entry differs from its exact points by less than one.
    """
    entries = []
    running_total = 0.0
    rounded_so_far = 0
    for award in awards:
        running_total += award.points
        rounded = round_half_up(running_total)
        entries.append(
            ScoreEntry(
                rule_id=award.rule.id,
                rule_name=award.rule.name,
                category=award.rule.category,
                points=rounded - rounded_so_far,
                raw_points=award.raw_points,
                matched_value=award.matched_value,
                activity_count=award.activity_count,
                awarded_at=award.awarded_at,
            )
        )
        rounded_so_far = rounded
    return entries


class CompiledRules:
    """A rule list turned into matchers once; score as many leads with it as needed."""

    def __init__(self, rules: Iterable[ScoringRule]) -> None:
        active = [rule for rule in rules if rule.active]
        self._attribute_rules = [
            _AttributeRule(rule, field_reader(rule.field), compile_matcher(rule.operator, rule.value))
            for rule in active
            if rule.field != ACTIVITY_TYPE_FIELD
        ]
        self._behavioural_rules = [
            _BehaviouralRule(
                rule,
                compile_matcher(rule.operator, rule.value),
                compile_matcher(rule.count_operator, rule.count_value) if rule.count_operator else None,
            )
            for rule in active
            if rule.field == ACTIVITY_TYPE_FIELD
        ]

    def score(
        self,
        lead: Lead,
        activities: Iterable[Activity],
        now: datetime,
        half_life_days: float | None = None,
    ) -> ScoreBreakdown:
        """The lead's score at `now`; `half_life_days` (None: no decay) ages behavioural points."""
        if half_life_days is not None and not half_life_days > 0:
            raise ValueError("half_life_days must be a positive number of days, or None for no decay")
        awards = []
        for rule in self._attribute_rules:
            budget.check()  # a record's time budget (crm.platform.budget), between rules
            awards.append(rule.award(lead))
        if self._behavioural_rules:
            occurrences = _occurrences(activities, now, half_life_days)
            for behavioural in self._behavioural_rules:
                budget.check()
                awards.append(behavioural.award(occurrences, now))
        entries = _ledger(_best_of_each_group([award for award in awards if award is not None]))
        total = sum(entry.points for entry in entries)
        score = min(max(total, MIN_SCORE), MAX_SCORE)
        return ScoreBreakdown(
            score=score,
            grade=grade_for(score),
            entries=entries,
            limit_adjustment=score - total,
            scored_at=now,
        )


def score_lead(
    lead: Lead,
    activities: list[Activity],
    rules: list[ScoringRule],
    now: datetime,
    half_life_days: float | None = None,
) -> ScoreBreakdown:
    """Score one lead; to score many with the same rules, build `CompiledRules` once instead."""
    return CompiledRules(rules).score(lead, activities, now, half_life_days)


# ---------------------------------------------------------------- the rules a fresh install starts with

# Goes up by one whenever the defaults change; the rule set stores the version it was seeded or upgraded to.
DEFAULTS_VERSION = 2
DEFAULT_ACTIVITY_POINTS = {
    "email_opened": 2,
    "email_clicked": 5,
    "page_viewed": 1,
    "form_submitted": 10,
    "demo_requested": 20,
}
# C-level titles match as words, because "Director" contains "cto"; the literal "C-level" counts too.
_C_LEVEL = r"\b(ceo|cto|cfo|coo|cmo|cio|chief|c-level)\b"
_VP = r"vp|vice[\s-]*president"


class _SeedRule(NamedTuple):
    id: str
    name: str
    category: ScoringCategory
    field: str
    operator: Operator
    value: RuleValue
    points: int
    group: str | None = None
    count_operator: Operator | None = None
    count_value: int | None = None
    active: bool = True


_PERSON, _COMPANY, _BEHAVIOUR = (
    ScoringCategory.DEMOGRAPHIC,
    ScoringCategory.FIRMOGRAPHIC,
    ScoringCategory.BEHAVIOURAL,
)
_INDUSTRIES: list[RuleScalar] = ["Technology", "Finance", "Healthcare"]
_SEED_ATTRIBUTE_RULES = (
    _SeedRule(
        "seed-title-c-level", "Title: C-level", _PERSON, "title", Operator.REGEX, _C_LEVEL, 20, "title"
    ),
    _SeedRule("seed-title-vp", "Title: VP", _PERSON, "title", Operator.REGEX, _VP, 15, "title"),
    _SeedRule(
        "seed-title-director", "Title: Director", _PERSON, "title", Operator.CONTAINS, "director", 10, "title"
    ),
    _SeedRule("seed-email-edu", "Email: .edu", _PERSON, "email", Operator.ENDS_WITH, ".edu", 5),
    _SeedRule("seed-email-gov", "Email: .gov", _PERSON, "email", Operator.ENDS_WITH, ".gov", 10),
    _SeedRule(
        "seed-size-1000", "Over 1,000 employees", _COMPANY, "employee_count", Operator.GT, 1000, 15, "size"
    ),
    _SeedRule(
        "seed-size-100", "Over 100 employees", _COMPANY, "employee_count", Operator.GT, 100, 10, "size"
    ),
    _SeedRule("seed-size-10", "Over 10 employees", _COMPANY, "employee_count", Operator.GT, 10, 5, "size"),
    _SeedRule(
        "seed-revenue-10m", "Revenue over $10M", _COMPANY, "annual_revenue", Operator.GT, 10**7, 15, "revenue"
    ),
    _SeedRule(
        "seed-revenue-1m", "Revenue over $1M", _COMPANY, "annual_revenue", Operator.GT, 10**6, 10, "revenue"
    ),
    _SeedRule("seed-industry", "Target industry", _COMPANY, "industry", Operator.IN, _INDUSTRIES, 10),
)
_SEED_ACTIVITY_RULES = tuple(
    _SeedRule(
        f"seed-activity-{activity_type.replace('_', '-')}",
        f"Activity: {activity_type.replace('_', ' ')}",
        _BEHAVIOUR,
        ACTIVITY_TYPE_FIELD,
        Operator.EQUALS,
        activity_type,
        points,
    )
    for activity_type, points in DEFAULT_ACTIVITY_POINTS.items()
)
# The specification's quick-start scoring, shipped switched off: a manager turns them on (PATCH active).
_SEED_QUICK_START_RULES = (
    _SeedRule(
        "seed-quick-start-email-opens",
        "Quick start: more than 5 email opens",
        _BEHAVIOUR,
        ACTIVITY_TYPE_FIELD,
        Operator.EQUALS,
        "email_opened",
        20,
        count_operator=Operator.GT,
        count_value=5,
        active=False,
    ),
    _SeedRule(
        "seed-quick-start-page-views",
        "Quick start: more than 10 page views",
        _BEHAVIOUR,
        ACTIVITY_TYPE_FIELD,
        Operator.EQUALS,
        "page_viewed",
        15,
        count_operator=Operator.GT,
        count_value=10,
        active=False,
    ),
)
# The defaults version that added a default (1 when absent): an upgrade adds only defaults newer than the
# install's, so a default the team deleted stays deleted.
_ADDED_IN = {"seed-quick-start-email-opens": 2, "seed-quick-start-page-views": 2}
# What earlier defaults said differently: a stored default that still says exactly that was never edited,
# and follows today's default.
_EARLIER_DEFAULTS: dict[str, tuple[dict[str, Any], ...]] = {
    "seed-title-c-level": ({"value": r"\b(ceo|cto|cfo|coo|cmo|cio|chief)\b"},),
}
_DEFINITION_FIELDS = set(RuleDefinition.model_fields)


def default_rules(now: datetime) -> list[ScoringRule]:
    """The rules a fresh install scores with: the seed's scoring service exactly, behaviour uncapped, and
    the quick-start count rules switched off.

    Title, company size and revenue are tiers (one group each): a "VP and Director" gets 15, not 25.
    Ids are fixed so that seeding twice finds the same rules.
    """
    seeds = (*_SEED_ATTRIBUTE_RULES, *_SEED_ACTIVITY_RULES, *_SEED_QUICK_START_RULES)
    return [ScoringRule(created_at=now, **seed._asdict()) for seed in seeds]


def _definition(rule: ScoringRule) -> dict[str, Any]:
    return rule.model_dump(include=_DEFINITION_FIELDS)


def default_rule_upgrades(stored: Iterable[ScoringRule], installed: int, now: datetime) -> list[ScoringRule]:
    """What brings rules seeded with defaults version `installed` to today's defaults: every default added
    since, and today's version of every default still exactly as an earlier release seeded it. A default
    the team edited or deleted is theirs and stays as they left it."""
    by_id = {rule.id: rule for rule in stored}
    upgrades = []
    for default in default_rules(now):
        current = by_id.get(default.id)
        if current is None:
            if _ADDED_IN.get(default.id, 1) > installed:
                upgrades.append(default)
            continue
        wanted, found = _definition(default), _definition(current)
        if found != wanted and any(
            found == wanted | earlier for earlier in _EARLIER_DEFAULTS.get(default.id, ())
        ):
            upgrades.append(default)
    return upgrades
