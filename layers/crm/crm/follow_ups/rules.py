"""Automatic follow-ups and the speed-to-lead SLA, as plain Python.

- When a lead that nobody has contacted yet is assigned, its rep gets two follow-up tasks: one due a day
  later, one a week later. Their reminders go to the rep when they come due. Contacting the lead (its
  status leaving `new`) or converting it cancels the follow-ups that are still open: they exist to make
  sure the lead gets that contact. A reassignment cancels the previous rep's open follow-ups and gives the
  new rep a fresh pair, counted from the reassignment.
- Speed to lead: a new lead not contacted within the SLA (default one hour of working time, from its
  capture) escalates to the managers of its team. The clock starts at capture and stops at first contact,
  conversion, or when the lead turns out to be for nurture rather than sales.
"""

import re
import uuid
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from enum import StrEnum

from pydantic import BaseModel, ValidationError

from crm.leads.model import Lead, LeadStatus, UtcDatetime
from crm.leads.tasks import Task, TaskKind, TaskPriority
from crm.platform import clock
from crm.users.model import Weekday, WorkingHours

FOLLOW_UPS: tuple[tuple[str, timedelta], ...] = (
    ("Follow up: 1 day after assignment", timedelta(days=1)),
    ("Follow up: 1 week after assignment", timedelta(days=7)),
)
FOLLOW_UP_CREATOR = "system:follow-ups"
_NAMESPACE = uuid.UUID("0f3e0a52-3b7e-4d5c-9a53-6f0d7c2e9b41")


def follow_up_tasks(lead: Lead, assignee: str, assigned_at: datetime) -> list[Task]:
    """The follow-up tasks of one assignment. Their ids derive from (lead, assignment time, offset), so a
    redelivered stream record plans the very same tasks and the conditional create keeps one of each."""
    tasks = []
    for title, offset in FOLLOW_UPS:
        task_id = uuid.uuid5(_NAMESPACE, f"{lead.id}:{clock.isoformat(assigned_at)}:{offset}")
        tasks.append(
            Task(
                id=str(task_id),
                lead_id=lead.id,
                title=title,
                kind=TaskKind.FOLLOW_UP.value,
                priority=TaskPriority.HIGH if offset <= timedelta(days=1) else TaskPriority.NORMAL,
                due_at=assigned_at + offset,
                owner=assignee,
                created_by=FOLLOW_UP_CREATOR,
                created_at=assigned_at,
                updated_at=assigned_at,
            )
        )
    return tasks


def awaits_first_contact(lead: Lead) -> bool:
    """Still nobody has talked to this lead (a nurture lead whose score later reached the threshold is
    assigned like any other, and is then for sales whatever its `nurture` flag)."""
    return lead.lead_status is LeadStatus.NEW and not lead.converted


# Tasks rules make, and what ends their purpose: a follow-up is there to get the first contact made; a
# discovery call belongs to a lead still being sold to. A task a person made stays until a person closes it.
RULE_MADE_TASKS = frozenset({TaskKind.FOLLOW_UP.value, TaskKind.DISCOVERY_CALL.value})


def task_closing_reason(task: Task, lead: Lead | None) -> str | None:
    """Why a rule-made task is no longer wanted (its reminder cancelled, the task closed), or None."""
    if task.kind not in RULE_MADE_TASKS:
        return None
    if lead is None:
        return "lead deleted"
    if lead.converted:
        return "lead converted"
    if task.kind == TaskKind.FOLLOW_UP.value and not awaits_first_contact(lead):
        return "lead contacted"
    return None


# ---------------------------------------------------------------- speed to lead

_WEEKDAYS = list(Weekday)
_HOURS = re.compile(
    r"^\s*(?P<days>[A-Za-z,\-]+)\s+(?P<start>\d{1,2}:\d{2})\s*-\s*(?P<end>\d{1,2}:\d{2})\s+(?P<zone>\S+)\s*$"
)


def parse_working_hours(text: str) -> WorkingHours | None:
    """`mon-fri 09:00-17:00 Europe/London` (days as a range or a list: `mon,wed,fri`), or empty for
    around the clock. ValueError, saying what is expected, for anything else."""
    if not text.strip():
        return None
    match = _HOURS.match(text)
    if not match:
        raise ValueError("expected e.g. `mon-fri 09:00-17:00 Europe/London`, or empty for around the clock")
    days: list[Weekday] = []
    for part in match["days"].lower().split(","):
        first, _, last = part.partition("-")
        try:
            start, end = _WEEKDAYS.index(Weekday(first)), _WEEKDAYS.index(Weekday(last or first))
        except ValueError:
            raise ValueError(f"unknown day in `{part}`: use mon, tue, wed, thu, fri, sat, sun") from None
        days += [_WEEKDAYS[(start + offset) % 7] for offset in range((end - start) % 7 + 1)]
    try:
        return WorkingHours(
            days=days,
            start=time.fromisoformat(match["start"].zfill(5)),
            end=time.fromisoformat(match["end"].zfill(5)),
            time_zone="UTC" if match["zone"].upper() == "UTC" else match["zone"],
        )
    except ValidationError as exc:
        raise ValueError("; ".join(str(error["msg"]) for error in exc.errors())) from None


@dataclass(frozen=True)
class SpeedToLeadSla:
    """Contact a new lead within `allowance` of working time (`hours`; None: around the clock)."""

    allowance: timedelta
    hours: WorkingHours | None = None

    @property
    def enabled(self) -> bool:
        return self.allowance > timedelta(0)

    def deadline(self, captured_at: datetime) -> datetime:
        if self.hours is None:
            return captured_at + self.allowance
        return self.hours.add_working_time(captured_at, self.allowance)


class TimerState(StrEnum):
    PENDING = "pending"
    FIRED = "fired"
    CANCELLED = "cancelled"


class SlaTimer(BaseModel):
    """The speed-to-lead clock of one lead."""

    lead_id: str
    due_at: UtcDatetime
    state: TimerState = TimerState.PENDING
    started_at: UtcDatetime
    fired_at: UtcDatetime | None = None
    cancelled_at: UtcDatetime | None = None
    cancel_reason: str | None = None


def sla_stop_reason(lead: Lead) -> str | None:
    """Why the lead's speed-to-lead clock no longer runs, or None while it does."""
    if lead.converted:
        return "converted"
    if lead.lead_status is not LeadStatus.NEW:
        return "contacted"
    if lead.nurture and lead.assigned_to is None:
        return "nurture"
    return None


def overdue_by(deadline: datetime, now: datetime) -> str:
    minutes = max(0, int((now - deadline).total_seconds() // 60))
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"
