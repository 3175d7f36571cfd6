"""Choosing the rep for a lead: plain Python, no AWS.

Within a team the lead goes to the available rep with the fewest open leads. Ties are broken round-robin:
each attempt draws a ticket from the team's cursor (an atomic counter), and among the tied reps the first
one at or after position `ticket mod team size` in the team's fixed order (by sub) wins. Consecutive
tickets therefore walk around the team, and concurrent attempts, holding different tickets, start at
different reps instead of all reaching for the same one.

When nobody is available and the only obstacle is working hours, the after-hours policy decides: "assign"
picks among the reps who would otherwise be available, "wait" leaves the lead in the unassigned queue.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from crm.platform.auth import Role
from crm.users.model import Unavailable, User


class Method(StrEnum):
    """How a lead found its rep (recorded in the activity)."""

    RULE_USER = "rule_user"  # a rule named the user
    BALANCED = "balanced"  # fewest open leads in the team, ties round-robin
    AFTER_HOURS = "after_hours"  # balanced among reps outside working hours (policy "assign")
    MANUAL = "manual"


class Trigger(StrEnum):
    """Why an assignment was attempted."""

    SCORE_THRESHOLD = "score_threshold"
    LIVE_CHAT = "live_chat"
    SWEEP = "sweep"
    USER_CHANGE = "user_change"
    MANUAL = "manual"


@dataclass(frozen=True, slots=True)
class CandidateLoad:
    """A team member as the balancing saw them at that moment."""

    sub: str
    name: str
    open_leads: int
    capacity: int | None
    unavailable: Unavailable | None

    def as_data(self) -> dict[str, Any]:
        return {
            "user": self.sub,
            "name": self.name,
            "open_leads": self.open_leads,
            "capacity": self.capacity,
            "available": self.unavailable is None,
            "reason": self.unavailable.value if self.unavailable else None,
        }


@dataclass(frozen=True, slots=True)
class Choice:
    chosen: CandidateLoad | None
    method: Method
    candidates: tuple[CandidateLoad, ...]

    @property
    def seen_load(self) -> int:
        assert self.chosen is not None
        return self.chosen.open_leads


def candidate_loads(
    users: Iterable[User], loads: Mapping[str, int], now: datetime, *, ignore_hours: bool = False
) -> tuple[CandidateLoad, ...]:
    """Every team member in the team's fixed order (by sub), with their load and availability now."""
    return tuple(
        CandidateLoad(
            sub=user.sub,
            name=user.name,
            open_leads=loads.get(user.sub, 0),
            capacity=user.capacity,
            unavailable=user.unavailable_reason(loads.get(user.sub, 0), now, ignore_hours=ignore_hours),
        )
        for user in sorted(users, key=lambda u: u.sub)
    )


def _least_loaded(candidates: tuple[CandidateLoad, ...], ticket: int) -> CandidateLoad | None:
    available = [c for c in candidates if c.unavailable is None]
    if not available:
        return None
    fewest = min(c.open_leads for c in available)
    start = ticket % len(candidates)
    for offset in range(len(candidates)):
        candidate = candidates[(start + offset) % len(candidates)]
        if candidate.unavailable is None and candidate.open_leads == fewest:
            return candidate
    raise AssertionError("a least-loaded candidate exists")  # pragma: no cover


def choose_rep(
    users: Iterable[User], loads: Mapping[str, int], now: datetime, ticket: int, after_hours_policy: str
) -> Choice:
    """The rep of a team who gets the next lead, or a Choice with `chosen=None` when nobody can.

    Only reps are candidates: the team's managers and admins are not balanced over.
    """
    members = [user for user in users if user.role is Role.REP]
    candidates = candidate_loads(members, loads, now)
    chosen = _least_loaded(candidates, ticket)
    if chosen is not None:
        return Choice(chosen, Method.BALANCED, candidates)
    only_hours = any(c.unavailable is Unavailable.OUTSIDE_WORKING_HOURS for c in candidates)
    if only_hours and after_hours_policy == "assign":
        relaxed = candidate_loads(members, loads, now, ignore_hours=True)
        fallback = _least_loaded(relaxed, ticket)
        if fallback is not None:
            return Choice(fallback, Method.AFTER_HOURS, candidates)
    return Choice(None, Method.BALANCED, candidates)


def describe_choice(choice: Choice, team: str) -> str:
    assert choice.chosen is not None
    loads = ", ".join(
        f"{c.name} {c.open_leads}"
        + (f"/{c.capacity}" if c.capacity is not None else "")
        + ("" if c.unavailable is None else f" ({c.unavailable.value.replace('_', ' ')})")
        for c in choice.candidates
    )
    how = (
        "fewest open leads"
        if choice.method is Method.BALANCED
        else "fewest open leads; nobody was within working hours"
    )
    return f"Assigned to {choice.chosen.name} in team {team} ({how}; open leads: {loads})"
