"""The lead's status lifecycle, edits and qualification (BANT), as plain Python, and the service that
applies them.

Statuses and the moves between them (`TRANSITIONS`; a move to the status a lead already has is a no-op,
never an error):

    from          may become
    new           contacted, qualified, unqualified
    contacted     qualified, unqualified
    qualified     unqualified, converted
    unqualified   contacted (reopened), qualified (re-qualified)
    converted     nothing: it is final

- `qualified` carries BANT answers and a follow-up task, so it is reached through
  `POST /leads/{id}/qualify` (or by the scoring rules), not by a plain edit.
- `converted` creates a contact, a company and a deal, so it is reached only through
  `POST /leads/{id}/convert`. From `qualified` it is an ordinary move; from any other open status only a
  forced conversion (manager or admin, `force: true`) gets there, when the setting
  `conversion_requires_qualification` is on (the default).
- Nothing goes back to `new`: once someone has talked to the lead, it stays talked to.
"""

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any

from crm.leads.model import Activity, Lead, LeadStatus, new_activity
from crm.leads.permissions import changeable_lead, visible_lead
from crm.leads.repository import LeadRepository
from crm.leads.task_repository import TASK_STATES, TaskPage, TaskRepository
from crm.leads.tasks import (
    Task,
    TaskChanges,
    TaskKind,
    TaskPriority,
    listable_owner,
    may_see_task,
    may_work_task,
    new_task,
    plan_task_update,
    task_created_activity,
    task_owner_for,
    task_updated_activity,
    visible_task,
    workable_task,
)
from crm.lifecycle.repository import EmailMove, LeadChangeRepository
from crm.platform import clock
from crm.platform.auth import Principal
from crm.platform.errors import InvalidInput, InvalidTransition, RetryableError, VersionConflict
from crm.users.repository import UserRepository

S = LeadStatus

TRANSITIONS: Mapping[LeadStatus, frozenset[LeadStatus]] = MappingProxyType(
    {
        S.NEW: frozenset({S.CONTACTED, S.QUALIFIED, S.UNQUALIFIED}),
        S.CONTACTED: frozenset({S.QUALIFIED, S.UNQUALIFIED}),
        S.QUALIFIED: frozenset({S.UNQUALIFIED, S.CONVERTED}),
        S.UNQUALIFIED: frozenset({S.CONTACTED, S.QUALIFIED}),
        S.CONVERTED: frozenset(),
    }
)

# Statuses that carry more than a status: a plain edit may not set them.
DEDICATED_ROUTES: Mapping[LeadStatus, str] = MappingProxyType(
    {S.QUALIFIED: "POST /leads/{id}/qualify", S.CONVERTED: "POST /leads/{id}/convert"}
)

# Statuses a forced conversion may start from (everything still open).
FORCIBLE_INTO_CONVERSION = frozenset({S.NEW, S.CONTACTED, S.UNQUALIFIED})

# Person and company fields a PATCH may change; the first three may never be emptied.
EDITABLE_FIELDS = (
    "first_name",
    "last_name",
    "email",
    "phone",
    "company",
    "title",
    "industry",
    "employee_count",
    "annual_revenue",
    "do_not_email",  # a rep records that the person asked for no email (by phone, say), or asked again
)
REQUIRED_FIELDS = frozenset({"first_name", "last_name", "email", "do_not_email"})
DO_NOT_EMAIL_BY_REQUEST = "requested"

DISCOVERY_CALL_TITLE = "Schedule discovery call"
DISCOVERY_CALL_DUE = timedelta(hours=24)

# Bounded retries for actions (qualify) that re-read the lead when someone else changed it meanwhile.
MAX_ATTEMPTS = 8


def can_transition(current: LeadStatus, target: LeadStatus) -> bool:
    return current == target or target in TRANSITIONS[current]


def check_transition(current: LeadStatus, target: LeadStatus) -> None:
    if can_transition(current, target):
        return
    # An edit may set only some of the next statuses; the others have their own route (DEDICATED_ROUTES).
    nexts = sorted(TRANSITIONS[current])
    by_edit = ", ".join(status.value for status in nexts if status not in DEDICATED_ROUTES)
    by_route = [
        f"{status.value} through {DEDICATED_ROUTES[status]}" for status in nexts if status in DEDICATED_ROUTES
    ]
    allowed = "; ".join(part for part in (by_edit, *by_route) if part) or "none: it is final"
    article = "An" if current.value[0] in "aeiou" else "A"
    raise InvalidTransition(
        f"{article} {current.value} lead cannot become {target.value} "
        f"(allowed from {current.value}: {allowed})"
    )


def with_status(lead: Lead, target: LeadStatus, now: datetime) -> Lead:
    """The lead in `target` status, with `qualified`/`qualified_at` kept in step (no check here)."""
    if target == lead.lead_status:
        return lead
    updates: dict[str, Any] = {"lead_status": target, "updated_at": now}
    if target is S.QUALIFIED:
        updates |= {"qualified": True, "qualified_at": now}
    elif target in (S.UNQUALIFIED, S.CONTACTED, S.NEW):
        updates |= {"qualified": False, "qualified_at": None}
    return lead.model_copy(update=updates)


def _json(value: Any) -> Any:
    if isinstance(value, datetime):
        return clock.isoformat(value)
    if isinstance(value, LeadStatus):
        return value.value
    return value


# ---------------------------------------------------------------- edits (PATCH /leads/{id})


@dataclass(frozen=True)
class LeadChanges:
    """What a client asked to change: only the fields it sent (None clears an optional field)."""

    fields: dict[str, Any] = field(default_factory=dict)
    status: LeadStatus | None = None


@dataclass(frozen=True)
class UpdatePlan:
    lead: Lead
    changes: dict[str, tuple[Any, Any]]  # person/company field -> (old, new)
    status_change: tuple[LeadStatus, LeadStatus] | None

    @property
    def changed(self) -> bool:
        return bool(self.changes) or self.status_change is not None

    @property
    def email_move(self) -> EmailMove | None:
        if "email" not in self.changes:
            return None
        old, new = self.changes["email"]
        return EmailMove(old=old, new=new)


def plan_update(lead: Lead, requested: LeadChanges, now: datetime) -> UpdatePlan:
    """Check and apply an edit; raises InvalidInput or InvalidTransition, naming the field."""
    status_change: tuple[LeadStatus, LeadStatus] | None = None
    if requested.status is not None and requested.status != lead.lead_status:
        if requested.status in DEDICATED_ROUTES:
            route = DEDICATED_ROUTES[requested.status]
            raise InvalidInput.single(
                "lead_status", f"{requested.status.value} is set through {route}, not by an edit"
            )
        check_transition(lead.lead_status, requested.status)
        status_change = (lead.lead_status, requested.status)

    changes: dict[str, tuple[Any, Any]] = {}
    for name, value in requested.fields.items():
        if name not in EDITABLE_FIELDS:
            raise InvalidInput.single(name, "cannot be changed by an edit")
        if value is None and name in REQUIRED_FIELDS:
            raise InvalidInput.single(name, "cannot be removed")
        current = getattr(lead, name)
        if current != value:
            changes[name] = (current, value)

    if not changes and status_change is None:
        return UpdatePlan(lead=lead, changes={}, status_change=None)
    updates = {name: new for name, (_, new) in changes.items()} | {"updated_at": now}
    if "do_not_email" in changes:
        opted_out = bool(changes["do_not_email"][1])
        updates |= {
            "do_not_email_reason": DO_NOT_EMAIL_BY_REQUEST if opted_out else None,
            "do_not_email_at": now if opted_out else None,
        }
    updated = lead.model_copy(update=updates)
    if status_change is not None:
        updated = with_status(updated, status_change[1], now)
    return UpdatePlan(lead=updated, changes=changes, status_change=status_change)


def update_activities(plan: UpdatePlan, actor: str, now: datetime) -> list[Activity]:
    """One activity per kind of change, each with old → new and who made it."""
    activities: list[Activity] = []
    if plan.status_change is not None:
        old, new = plan.status_change
        activities.append(
            new_activity(
                plan.lead.id,
                "status_changed",
                f"Status {old.value} → {new.value}",
                actor,
                now,
                old=old.value,
                new=new.value,
            )
        )
    if plan.changes:
        activities.append(
            new_activity(
                plan.lead.id,
                "lead_updated",
                "Updated " + ", ".join(sorted(plan.changes)),
                actor,
                now,
                changes={
                    name: {"old": _json(old), "new": _json(new)} for name, (old, new) in plan.changes.items()
                },
            )
        )
    return activities


# ---------------------------------------------------------------- qualification (BANT)


@dataclass(frozen=True)
class BantAnswers:
    has_budget: bool
    has_authority: bool
    has_need: bool
    has_timeline: bool
    notes: str | None = None

    @property
    def passed(self) -> bool:
        """Qualified only when all four hold: budget, authority, need and timeline."""
        return self.has_budget and self.has_authority and self.has_need and self.has_timeline

    @property
    def missing(self) -> list[str]:
        answers = {
            "budget": self.has_budget,
            "authority": self.has_authority,
            "need": self.has_need,
            "timeline": self.has_timeline,
        }
        return [name for name, held in answers.items() if not held]

    @property
    def outcome(self) -> LeadStatus:
        return S.QUALIFIED if self.passed else S.UNQUALIFIED

    def record(self, actor: str, now: datetime) -> dict[str, Any]:
        """What is kept in the lead's `custom_fields["bant"]`."""
        return {
            "has_budget": self.has_budget,
            "has_authority": self.has_authority,
            "has_need": self.has_need,
            "has_timeline": self.has_timeline,
            "notes": self.notes,
            "answered_by": actor,
            "answered_at": clock.isoformat(now),
        }


@dataclass(frozen=True)
class QualificationPlan:
    lead: Lead
    activities: list[Activity]
    task: Task | None


def plan_qualification(
    lead: Lead, answers: BantAnswers, principal: Principal, now: datetime
) -> QualificationPlan:
    """All four BANT answers → qualified, otherwise unqualified; the answers are kept on the lead.

    A lead that becomes qualified gets the task "Schedule discovery call" (high, due in 24 hours), owned
    by its rep (the caller when it has none). Qualifying an already qualified lead again updates the
    answers but makes no second task.
    """
    target = answers.outcome
    check_transition(lead.lead_status, target)
    custom_fields = {**lead.custom_fields, "bant": answers.record(principal.actor, now)}
    updated = with_status(lead, target, now).model_copy(
        update={"custom_fields": custom_fields, "updated_at": now}
    )
    task: Task | None = None
    if target is S.QUALIFIED and lead.lead_status is not S.QUALIFIED:
        task = new_task(
            lead.id,
            DISCOVERY_CALL_TITLE,
            due_at=now + DISCOVERY_CALL_DUE,
            owner=lead.assigned_to or principal.subject,
            created_by=principal.actor,
            now=now,
            priority=TaskPriority.HIGH,
            kind=TaskKind.DISCOVERY_CALL,
        )
    description = (
        "Qualified: budget, authority, need and timeline confirmed"
        if answers.passed
        else "Not qualified: no " + ", no ".join(answers.missing)
    )
    activity = new_activity(
        lead.id,
        "lead_qualified" if answers.passed else "lead_unqualified",
        description,
        principal.actor,
        now,
        bant=custom_fields["bant"],
        status={"old": lead.lead_status.value, "new": target.value},
        task_id=task.id if task else None,
    )
    return QualificationPlan(lead=updated, activities=[activity], task=task)


# ---------------------------------------------------------------- the service


@dataclass(frozen=True)
class QualificationResult:
    lead: Lead
    task: Task | None


class LifecycleService:
    def __init__(
        self,
        leads: LeadRepository,
        changes: LeadChangeRepository,
        now: Callable[[], datetime] = clock.now,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.leads = leads
        self.changes = changes
        self.now = now
        self.sleep = sleep

    def update(
        self, lead_id: str, requested: LeadChanges, expected_version: int, principal: Principal
    ) -> Lead:
        """Apply an edit made against `expected_version`: 409 with the current version when stale."""
        lead = changeable_lead(principal, self.leads.get(lead_id), lead_id)
        if lead.version != expected_version:
            raise VersionConflict("The lead was changed by someone else", current_version=lead.version)
        moment = self.now()
        plan = plan_update(lead, requested, moment)
        if not plan.changed:
            return lead
        return self.changes.save(
            plan.lead,
            expected_version,
            update_activities(plan, principal.actor, moment),
            email_move=plan.email_move,
        )

    def qualify(self, lead_id: str, answers: BantAnswers, principal: Principal) -> QualificationResult:
        """Record a BANT qualification, with its task, in one transaction; re-read and retry when the lead
        changed meanwhile (the answers apply to the lead as it is now)."""
        for attempt in range(MAX_ATTEMPTS):
            lead = changeable_lead(principal, self.leads.get(lead_id), lead_id)
            moment = self.now()
            plan = plan_qualification(lead, answers, principal, moment)
            try:
                stored = self.changes.save(
                    plan.lead, lead.version, plan.activities, tasks=[plan.task] if plan.task else []
                )
            except (VersionConflict, RetryableError):
                self._back_off(attempt)
                continue
            return QualificationResult(lead=stored, task=plan.task)
        raise RetryableError("The lead is being changed by others right now; try again")

    def _back_off(self, attempt: int) -> None:
        self.sleep(random.uniform(0, min(0.2, 0.005 * 2**attempt)))  # noqa: S311


@dataclass(frozen=True)
class TaskDraft:
    title: str
    due_at: datetime
    priority: TaskPriority = TaskPriority.NORMAL
    owner: str | None = None  # None: the lead's rep (or the caller when it has none); "me": the caller


class TaskService:
    def __init__(
        self,
        leads: LeadRepository,
        tasks: TaskRepository,
        users: UserRepository,
        now: Callable[[], datetime] = clock.now,
    ) -> None:
        self.leads = leads
        self.tasks = tasks
        self.users = users
        self.now = now

    def create(self, lead_id: str, draft: TaskDraft, principal: Principal) -> Task:
        """A task under a lead the caller may change; the task and its activity in one transaction."""
        lead = changeable_lead(principal, self.leads.get(lead_id), lead_id)
        owner = task_owner_for(principal, lead, draft.owner)
        if owner not in (principal.subject, lead.assigned_to):
            # Someone named by the caller: they must be a user who can be reminded of it.
            user = self.users.get(owner)
            if user is None or not user.active:
                raise InvalidInput.single("owner", f"{owner} is not an active user")
        moment = self.now()
        task = new_task(
            lead.id,
            draft.title,
            due_at=draft.due_at,
            owner=owner,
            created_by=principal.actor,
            now=moment,
            priority=draft.priority,
        )
        self.tasks.create(task, [task_created_activity(task, principal.actor, moment)])
        return task

    def open_tasks(
        self, principal: Principal, owner: str, due_before: datetime | None, limit: int, cursor: str | None
    ) -> TaskPage:
        return self.owner_tasks(principal, owner, "open", due_before=due_before, limit=limit, cursor=cursor)

    def owner_tasks(
        self,
        principal: Principal,
        owner: str,
        state: str,
        *,
        due_before: datetime | None,
        limit: int,
        cursor: str | None,
    ) -> TaskPage:
        """An owner's tasks in a state (`open`, `done`, `cancelled` or `all`), soonest due first."""
        states = TASK_STATES if state == "all" else (state,)
        return self.tasks.owner_tasks(listable_owner(principal, owner), states, due_before, limit, cursor)

    def get(self, task_id: str, principal: Principal) -> Task:
        """A task the caller may see (404 otherwise, as if it did not exist)."""
        task = self.tasks.get(task_id)
        lead = None
        if task is not None and not may_see_task(principal, task, None):
            lead = self.leads.get(task.lead_id)
        return visible_task(principal, task, lead, task_id)

    def lead_tasks(self, lead_id: str, principal: Principal) -> list[Task]:
        """Every task of a lead the caller may see, open or closed, soonest due first."""
        visible_lead(principal, self.leads.get(lead_id), lead_id)
        return self.tasks.lead_tasks(lead_id)

    def update(
        self, task_id: str, requested: TaskChanges, expected_version: int, principal: Principal
    ) -> Task:
        """Apply an edit made against `expected_version`: 409 with the current version when stale."""
        task = self.tasks.get(task_id)
        lead = None
        if task is not None and not may_work_task(principal, task, None):
            lead = self.leads.get(task.lead_id)
        task = workable_task(principal, task, lead, task_id)
        if task.version != expected_version:
            raise VersionConflict("The task was changed by someone else", current_version=task.version)
        moment = self.now()
        plan = plan_task_update(task, requested, moment)
        if not plan.changed:
            return task
        return self.tasks.save(
            plan.task, expected_version, [task_updated_activity(plan, principal.actor, moment)]
        )
