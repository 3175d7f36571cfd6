"""A rule change tried before it is made: what the open leads would score, grade and route like.

Plain Python, no AWS. The proposed rule set is the stored one with the changes applied in order; both
sets score through the engine's public entry points (`RuleBook.build`, `CompiledRules.score`), so the
preview always scores exactly as the scoring function does, whatever the engine learns.
"""

import heapq
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from crm.leads.model import GRADE_THRESHOLDS, LOWEST_GRADE, Activity, Lead
from crm.platform.errors import FieldProblem, InvalidInput
from crm.scoring.rescoring import RuleBook, RuleSet, StoredRule
from crm.scoring.rules import ScoringRuleEdits, ScoringRuleInput

MAX_CHANGES = 50
MOVERS = 20
GRADES = (*(grade for _, grade in GRADE_THRESHOLDS), LOWEST_GRADE)
_DEFINITION_FIELDS = set(ScoringRuleInput.model_fields)


# ---------------------------------------------------------------- the proposed change


class CreateRule(ScoringRuleInput):
    """A new rule, exactly as POST /scoring-rules takes it."""

    op: Literal["create"]


class UpdateRule(ScoringRuleEdits):
    """Some fields of an existing rule, as PATCH takes them; the merged rule is validated as a whole."""

    op: Literal["update"]
    id: str = Field(min_length=1, max_length=64)


class DeleteRule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    op: Literal["delete"]
    id: str = Field(min_length=1, max_length=64)


RuleChange = Annotated[CreateRule | UpdateRule | DeleteRule, Field(discriminator="op")]
_CHANGE_MODELS: dict[str, type[CreateRule | UpdateRule | DeleteRule]] = {
    "create": CreateRule,
    "update": UpdateRule,
    "delete": DeleteRule,
}


def _problems(prefix: str, exc: ValidationError) -> list[FieldProblem]:
    problems = []
    for error in exc.errors(include_url=False, include_input=False):
        # The union's tag ("update") is not a field the client sent: leave it out of the name.
        location = [str(part) for part in error["loc"] if part not in ("create", "update", "delete")]
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown field"
        elif error["type"] == "missing":
            message = "field required"
        problems.append(FieldProblem(".".join([prefix, *location]) if location else prefix, message))
    return problems


def parse_changes(raw: object) -> list[CreateRule | UpdateRule | DeleteRule]:
    """The `changes` list of a preview request; every problem names its change (`changes[1].points`)."""
    if not isinstance(raw, list):
        raise InvalidInput.single("changes", "must be a list of changes")
    if len(raw) > MAX_CHANGES:
        raise InvalidInput.single("changes", f"at most {MAX_CHANGES} changes at once")
    parsed: list[CreateRule | UpdateRule | DeleteRule] = []
    problems: list[FieldProblem] = []
    for index, change in enumerate(raw):
        prefix = f"changes[{index}]"
        if not isinstance(change, dict):
            problems.append(FieldProblem(prefix, "must be an object with op create, update or delete"))
            continue
        if change.get("op") not in ("create", "update", "delete"):
            problems.append(FieldProblem(f"{prefix}.op", "must be create, update or delete"))
            continue
        model = _CHANGE_MODELS[change["op"]]
        try:
            parsed.append(model.model_validate(change))
        except ValidationError as exc:
            problems.extend(_problems(prefix, exc))
    if problems:
        raise InvalidInput(
            problems, "Invalid changes: " + "; ".join(f"{p.field}: {p.message}" for p in problems)
        )
    return parsed


def apply_changes(
    rule_set: RuleSet, changes: list[CreateRule | UpdateRule | DeleteRule], now: datetime
) -> RuleSet:
    """The rule set as it would be after `changes`, in order; nothing is stored. A change naming a rule
    that does not exist (or was deleted by an earlier change) is refused, naming the change."""
    rules = {rule.id: rule for rule in rule_set.rules}
    problems: list[FieldProblem] = []
    for index, change in enumerate(changes):
        prefix = f"changes[{index}]"
        if isinstance(change, CreateRule):
            definition = change.model_dump(include=_DEFINITION_FIELDS)
            rule_id = f"proposed-{index}"
            rules[rule_id] = StoredRule(id=rule_id, created_at=now, updated_at=now, **definition)
            continue
        current = rules.get(change.id)
        if current is None:
            problems.append(FieldProblem(f"{prefix}.id", f"no scoring rule with id {change.id}"))
            continue
        if isinstance(change, DeleteRule):
            del rules[change.id]
            continue
        edits = change.model_dump(exclude_unset=True, exclude={"op", "id"})
        if not edits:
            problems.append(FieldProblem(prefix, "name at least one field to change"))
            continue
        try:
            merged = ScoringRuleInput.model_validate(current.model_dump(include=_DEFINITION_FIELDS) | edits)
        except ValidationError as exc:
            problems.extend(_problems(prefix, exc))
            continue
        rules[change.id] = current.model_copy(update=merged.model_dump())
    if problems:
        raise InvalidInput(
            problems, "Invalid changes: " + "; ".join(f"{p.field}: {p.message}" for p in problems)
        )
    return RuleSet(revision=rule_set.revision, rules=list(rules.values()))


# ---------------------------------------------------------------- what it would do


@dataclass
class Outcome:
    """One rule set's verdict over the leads considered: grades, and who goes to sales at its threshold."""

    threshold: int
    grades: Counter[str] = field(default_factory=Counter)
    sales: int = 0
    nurture: int = 0

    def count(self, score: int, grade: str) -> None:
        self.grades[grade] += 1
        if score >= self.threshold:
            self.sales += 1
        else:
            self.nurture += 1

    def distribution(self) -> dict[str, int]:
        return {grade: self.grades[grade] for grade in GRADES}


@dataclass(frozen=True)
class Mover:
    lead_id: str
    name: str
    company: str | None
    score_before: int
    score_after: int
    grade_before: str
    grade_after: str

    @property
    def change(self) -> int:
        return self.score_after - self.score_before


@dataclass
class Preview:
    leads_considered: int
    open_leads: int
    current: Outcome
    proposed: Outcome
    movers: list[Mover]
    leads_moved: int

    @property
    def sampled(self) -> bool:
        return self.leads_considered < self.open_leads


class PreviewTally:
    """Scores each lead under both rule books and keeps the counts and the biggest movers (a bounded heap,
    so memory stays flat however many leads pass)."""

    def __init__(
        self,
        current: RuleBook,
        proposed: RuleBook,
        *,
        now: datetime,
        half_life_days: float | None,
        current_threshold: int,
        proposed_threshold: int,
        may_see: Callable[[Lead], bool] = lambda _: True,
    ) -> None:
        self.current_book = current
        self.proposed_book = proposed
        self.now = now
        self.half_life_days = half_life_days
        self.may_see = may_see
        self.current = Outcome(current_threshold)
        self.proposed = Outcome(proposed_threshold)
        self.considered = 0
        self.moved = 0
        self._moved: list[Mover] = []

    @property
    def reads_activities(self) -> bool:
        return self.current_book.reads_activities or self.proposed_book.reads_activities

    def add(self, lead: Lead, activities: list[Activity]) -> None:
        before = self.current_book.compiled.score(lead, activities, self.now, self.half_life_days)
        after = self.proposed_book.compiled.score(lead, activities, self.now, self.half_life_days)
        self.considered += 1
        self.current.count(before.score, before.grade)
        self.proposed.count(after.score, after.grade)
        if before.score == after.score:
            return
        self.moved += 1
        # The counts cover every open lead; the movers name only leads the caller may see.
        if self.may_see(lead):
            self._moved.append(
                Mover(
                    lead_id=lead.id,
                    name=f"{lead.first_name} {lead.last_name}",
                    company=lead.company,
                    score_before=before.score,
                    score_after=after.score,
                    grade_before=before.grade,
                    grade_after=after.grade,
                )
            )

    def result(self, open_leads: int) -> Preview:
        # Biggest moves first; equal moves by lead id, so the answer does not depend on read order.
        movers = heapq.nsmallest(MOVERS, self._moved, key=lambda mover: (-abs(mover.change), mover.lead_id))
        return Preview(
            leads_considered=self.considered,
            open_leads=open_leads,
            current=self.current,
            proposed=self.proposed,
            movers=movers,
            leads_moved=self.moved,
        )


def uniform_sample(lead_ids: list[str], bound: int, rng: random.Random | None = None) -> list[str]:
    """Every id when there are at most `bound`, else `bound` of them drawn uniformly without replacement."""
    if len(lead_ids) <= bound:
        return lead_ids
    return (rng or random.Random()).sample(lead_ids, bound)  # noqa: S311 (a statistical sample, not security)
