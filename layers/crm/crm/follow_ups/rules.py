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

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel

from crm.leads.model import Lead, UtcDatetime
from crm.leads.tasks import Task, TaskKind, TaskPriority
from crm.platform import clock
from crm.platform.working_hours import WorkingHours

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


# ---------------------------------------------------------------- speed to lead


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
