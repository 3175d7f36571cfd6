"""Tasks under a lead (calls to make, follow-ups): the model and who may work them, as plain Python.

A task belongs to one lead (`lead_id`) and one owner (a user's `sub`). It is open until `done`; open tasks
are what a rep's list and, later, the reminder scheduler look for (see docs/data-model.md: the task item
is findable by id, by owner and due time, and by due-day bucket).
"""

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel

from crm.leads.model import Activity, Lead, UtcDatetime, awaits_first_contact, new_activity
from crm.leads.permissions import can_change, can_view
from crm.platform import clock
from crm.platform.auth import Principal, Role
from crm.platform.errors import Forbidden, InvalidInput, NotFound
from crm.platform.ids import new_id


class TaskPriority(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"


class TaskKind(StrEnum):
    """Why a task exists: made by a person, or by a rule (qualification, assignment)."""

    TASK = "task"
    DISCOVERY_CALL = "discovery_call"
    FOLLOW_UP = "follow_up"  # crm.follow_ups.rules: +1 day and +1 week after assignment, until first contact


class Task(BaseModel):
    id: str
    lead_id: str
    title: str
    kind: str = TaskKind.TASK.value
    priority: TaskPriority = TaskPriority.NORMAL
    due_at: UtcDatetime
    owner: str
    done: bool = False
    done_at: UtcDatetime | None = None
    # Closed by a rule rather than done by a person (a follow-up once its lead has been contacted).
    cancelled_at: UtcDatetime | None = None
    cancel_reason: str | None = None
    # When the owner was reminded that it came due (crm.follow_ups.service); a new due date clears it.
    reminded_at: UtcDatetime | None = None
    created_by: str
    created_at: UtcDatetime
    updated_at: UtcDatetime
    version: int = 1

    @property
    def is_open(self) -> bool:
        return not self.done and self.cancelled_at is None

    @property
    def awaits_reminder(self) -> bool:
        return self.is_open and self.reminded_at is None


def new_task(
    lead_id: str,
    title: str,
    *,
    due_at: datetime,
    owner: str,
    created_by: str,
    now: datetime,
    priority: TaskPriority = TaskPriority.NORMAL,
    kind: TaskKind = TaskKind.TASK,
) -> Task:
    return Task(
        id=new_id(),
        lead_id=lead_id,
        title=title,
        kind=kind.value,
        priority=priority,
        due_at=due_at,
        owner=owner,
        created_by=created_by,
        created_at=now,
        updated_at=now,
    )


def task_created_activity(task: Task, actor: str, now: datetime) -> Activity:
    return new_activity(
        task.lead_id,
        "task_created",
        f"Task created: {task.title}",
        actor,
        now,
        task_id=task.id,
        kind=task.kind,
        priority=task.priority.value,
        due_at=task.model_dump(mode="json")["due_at"],
        owner=task.owner,
    )


# ---------------------------------------------------------------- changes

TASK_EDITABLE_FIELDS = ("title", "priority", "due_at", "done")


@dataclass(frozen=True)
class TaskChanges:
    """What a client asked to change: only the fields it sent."""

    fields: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TaskUpdatePlan:
    task: Task
    changes: dict[str, tuple[Any, Any]]  # field -> (old, new), JSON-ready values

    @property
    def changed(self) -> bool:
        return bool(self.changes)


def _json(value: Any) -> Any:
    if isinstance(value, datetime):
        return clock.isoformat(value)
    if isinstance(value, StrEnum):
        return value.value
    return value


def plan_task_update(task: Task, requested: TaskChanges, now: datetime) -> TaskUpdatePlan:
    """Apply the requested fields; marking done stamps `done_at`, reopening clears it."""
    updates: dict[str, Any] = {}
    changes: dict[str, tuple[Any, Any]] = {}
    for name, value in requested.fields.items():
        if name not in TASK_EDITABLE_FIELDS:
            raise InvalidInput.single(name, "unknown field")
        current = getattr(task, name)
        if current != value:
            updates[name] = value
            changes[name] = (_json(current), _json(value))
    if not updates:
        return TaskUpdatePlan(task=task, changes={})
    if "done" in updates:
        updates["done_at"] = now if updates["done"] else None
    if "due_at" in updates:
        updates["reminded_at"] = None  # a new due date deserves its own reminder
    updates["updated_at"] = now
    return TaskUpdatePlan(task=task.model_copy(update=updates), changes=changes)


def task_updated_activity(plan: TaskUpdatePlan, actor: str, now: datetime) -> Activity:
    task = plan.task
    completed = plan.changes.get("done") == (False, True)
    reopened = plan.changes.get("done") == (True, False)
    verb = "completed" if completed else "reopened" if reopened else "updated"
    return new_activity(
        task.lead_id,
        f"task_{verb}",
        f"Task {verb}: {task.title}",
        actor,
        now,
        task_id=task.id,
        changes={name: {"old": old, "new": new} for name, (old, new) in plan.changes.items()},
    )


# ---------------------------------------------------------------- permissions


def is_manager(principal: Principal) -> bool:
    return bool(principal.roles & {Role.MANAGER, Role.ADMIN})


def may_work_task(principal: Principal, task: Task, lead: Lead | None) -> bool:
    """Admins any task; others their own tasks, or tasks of leads they may change."""
    if Role.ADMIN in principal.roles:
        return True
    if task.owner == principal.subject and principal.roles:
        return True
    return lead is not None and can_change(principal, lead)


def may_see_task(principal: Principal, task: Task, lead: Lead | None) -> bool:
    """Managers and admins any task; reps their own tasks and the tasks of their own leads."""
    if is_manager(principal):
        return True
    if Role.REP in principal.roles and task.owner == principal.subject:
        return True
    return lead is not None and Role.REP in principal.roles and lead.assigned_to == principal.subject


def visible_task(principal: Principal, task: Task | None, lead: Lead | None, task_id: str) -> Task:
    """The task if the caller may see it; otherwise NotFound, exactly as if it did not exist."""
    if task is None or not may_see_task(principal, task, lead):
        raise NotFound(f"No task with id {task_id}")
    return task


def workable_task(principal: Principal, task: Task | None, lead: Lead | None, task_id: str) -> Task:
    """The task if the caller may change it: 404 when they may not even see it, 403 when read-only."""
    if task is None:
        raise NotFound(f"No task with id {task_id}")
    if may_work_task(principal, task, lead):
        return task
    if lead is not None and can_view(principal, lead):
        raise Forbidden("This task is read-only for you: it is not yours and its lead is not assigned to you")
    raise NotFound(f"No task with id {task_id}")


def task_owner_for(principal: Principal, lead: Lead, requested: str | None) -> str:
    """Who owns a new task: the requested owner (reps may only name themselves), else the lead's rep,
    else the caller."""
    if requested is None:
        return lead.assigned_to or principal.subject
    owner = principal.subject if requested == "me" else requested
    if owner != principal.subject and not is_manager(principal):
        raise Forbidden("A rep may only create tasks for themselves (`owner`)")
    return owner


def listable_owner(principal: Principal, requested: str) -> str:
    """The owner whose tasks the caller may list: reps only their own, managers and admins anyone's."""
    owner = principal.subject if requested == "me" else requested
    if owner != principal.subject and not is_manager(principal):
        raise Forbidden("A rep may only list their own tasks (`owner=me`)")
    if not principal.roles:
        raise Forbidden("Only admin, manager or rep may list tasks")
    return owner


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
