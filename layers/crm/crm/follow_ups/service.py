"""Follow-ups, task reminders and the speed-to-lead SLA: what the lead-events stream and the follow-up
scheduler ask of them (rules in `crm.follow_ups.rules`).

From the stream (each call idempotent, since records are redelivered):
- `start_sla`: a lead captured as new starts its speed-to-lead timer;
- `on_assigned`: an assigned, not yet contacted lead gets its +1 day and +1 week follow-ups for its rep;
  the previous rep's open follow-ups of that lead are cancelled;
- `on_change`: a lead contacted, converted or left to nurture stops its timer; its open follow-ups are
  cancelled once it is contacted, its discovery call once it is converted (`task_closing_reason`).

From the scheduler (`due_sources`): task reminders and SLA escalations that have come due. Each queues one
notification job first (its delivery is deduplicated per event), then records that it fired with a
conditional write, so a run that dies in between, or two runs at once, still send one email.
"""

from collections.abc import Callable
from datetime import datetime
from functools import partial

from crm.follow_ups.repository import FollowUpRepository
from crm.follow_ups.rules import FOLLOW_UP_CREATOR, SlaTimer, SpeedToLeadSla, follow_up_tasks
from crm.leads.model import Lead, awaits_first_contact, new_activity, sla_stop_reason
from crm.leads.repository import LeadRepository
from crm.leads.task_repository import TaskRepository
from crm.leads.tasks import Task, TaskKind, task_closing_reason, task_created_activity
from crm.notifications.messages import NotificationKind, NotificationRequest, overdue_by
from crm.platform import clock
from crm.platform.errors import RetryableError, VersionConflict
from crm.platform.observability import logger
from crm.platform.queues import MessagePublisher
from crm.platform.scheduler import DueSource, DueWork

MAX_ATTEMPTS = 4


class FollowUpService:
    def __init__(
        self,
        leads: LeadRepository,
        tasks: TaskRepository,
        timers: FollowUpRepository,
        publisher: MessagePublisher,
        *,
        notification_queue_url: str,
        sla: SpeedToLeadSla,
        default_team: str,
        now: Callable[[], datetime] = clock.now,
    ) -> None:
        self.leads = leads
        self.tasks = tasks
        self.timers = timers
        self.publisher = publisher
        self.notification_queue_url = notification_queue_url
        self.sla = sla
        self.default_team = default_team
        self.now = now

    # ------------------------------------------------------------------ from the stream
    def start_sla(self, lead_id: str, captured_at: datetime) -> bool:
        if not self.sla.enabled:
            return False
        timer = SlaTimer(lead_id=lead_id, due_at=self.sla.deadline(captured_at), started_at=captured_at)
        started = self.timers.start(timer)
        if started:
            logger.info("Speed-to-lead timer started", extra={"lead_id": lead_id})
        return started

    def on_assigned(self, lead_id: str) -> int:
        """Plan the follow-ups of the lead's current assignment; returns how many were created now."""
        lead = self.leads.get(lead_id)
        if lead is None or lead.assigned_to is None or lead.assigned_at is None:
            return 0
        if not awaits_first_contact(lead):
            return 0
        self._cancel_follow_ups(lead, "reassigned", keep_owner=lead.assigned_to)
        created = 0
        for task in follow_up_tasks(lead, lead.assigned_to, lead.assigned_at):
            activity = task_created_activity(task, FOLLOW_UP_CREATOR, task.created_at)
            if self.tasks.create_if_absent(task, [activity]):
                created += 1
        if created:
            logger.info("Follow-ups planned", extra={"lead_id": lead.id, "count": created})
        return created

    def on_change(self, lead_id: str) -> int:
        """After a status, conversion or nurture change: stop the SLA clock if it no longer runs, and close
        the rule-made tasks whose purpose has passed. Returns how many tasks were cancelled."""
        lead = self.leads.get(lead_id)
        if lead is None:
            return 0
        reason = sla_stop_reason(lead)
        if reason is not None and self.timers.cancel(lead.id, reason, self.now()):
            logger.info("Speed-to-lead timer stopped", extra={"lead_id": lead.id, "reason": reason})
        cancelled = 0
        for task in self.tasks.lead_tasks(lead.id):
            closing = task_closing_reason(task, lead) if task.is_open else None
            if closing is not None and self._cancel(task, closing):
                cancelled += 1
        return cancelled

    def _cancel_follow_ups(self, lead: Lead, reason: str, keep_owner: str) -> int:
        cancelled = 0
        for task in self.tasks.lead_tasks(lead.id):
            is_follow_up = task.kind == TaskKind.FOLLOW_UP.value
            if is_follow_up and task.is_open and task.owner != keep_owner and self._cancel(task, reason):
                cancelled += 1
        return cancelled

    def _cancel(self, task: Task, reason: str) -> bool:
        for _ in range(MAX_ATTEMPTS):
            if not task.is_open:
                return False
            now = self.now()
            closed = task.model_copy(update={"cancelled_at": now, "cancel_reason": reason, "updated_at": now})
            activity = new_activity(
                task.lead_id,
                "task_cancelled",
                f"Task cancelled ({reason}): {task.title}",
                FOLLOW_UP_CREATOR,
                now,
                task_id=task.id,
                kind=task.kind,
                reason=reason,
            )
            try:
                self.tasks.save(closed, task.version, [activity])
                return True
            except VersionConflict:
                fresh = self.tasks.get(task.id)
                if fresh is None:
                    return False
                task = fresh
        raise RetryableError("The task keeps changing; its cancellation will be tried again")

    # ------------------------------------------------------------------ from the scheduler
    def due_sources(self) -> list[DueSource]:
        return [TaskReminders(self), SpeedToLeadEscalations(self)]

    def remind(self, task: Task) -> bool:
        """Remind the owner of a task that came due, once; False if it no longer needs a reminder (a
        rule-made task whose purpose has passed is cancelled instead)."""
        for _ in range(MAX_ATTEMPTS):
            if not task.awaits_reminder:
                return False
            closing = task_closing_reason(task, self.leads.get(task.lead_id))
            if closing is not None:
                # The stream's cancellation has not landed yet: cancel it here, and remind of nothing.
                self._cancel(task, closing)
                return False
            job = NotificationRequest(
                kind=NotificationKind.TASK_REMINDER,
                lead_id=task.lead_id,
                event_id=f"reminder:{task.id}:{clock.isoformat(task.due_at)}",
                recipient=task.owner,
                task_id=task.id,
                due_at=task.due_at,
            )
            self.publisher.send(self.notification_queue_url, job.model_dump(mode="json"))
            if self.tasks.mark_reminded(task, self.now()):
                logger.info("Task reminder queued", extra={"lead_id": task.lead_id, "task_id": task.id})
                return True
            fresh = self.tasks.get(task.id)  # changed meanwhile: decide again on the task as it is now
            if fresh is None:
                return False
            task = fresh
        raise RetryableError("The task keeps changing; its reminder will be tried again")

    def escalate(self, timer: SlaTimer) -> bool:
        """Tell the lead's team managers that its SLA passed, once; False if it was contacted meanwhile."""
        lead = self.leads.get(timer.lead_id)
        now = self.now()
        reason = "lead deleted" if lead is None else sla_stop_reason(lead)
        if lead is None or reason is not None:
            self.timers.cancel(timer.lead_id, reason or "closed", now)
            return False
        team = lead.team or self.default_team
        job = NotificationRequest(
            kind=NotificationKind.SLA_BREACHED,
            lead_id=lead.id,
            event_id=f"sla:{lead.id}:{clock.isoformat(timer.due_at)}",
            team=team,
            due_at=timer.due_at,
        )
        self.publisher.send(self.notification_queue_url, job.model_dump(mode="json"))
        activity = new_activity(
            lead.id,
            "sla_breached",
            f"Not contacted within the speed-to-lead SLA (due {clock.isoformat(timer.due_at)}, "
            f"{overdue_by(timer.due_at, now)} late): escalated to the managers of team {team}",
            FOLLOW_UP_CREATOR,
            now,
            due_at=clock.isoformat(timer.due_at),
            team=team,
            assigned_to=lead.assigned_to,
        )
        fired = self.timers.fire(timer, now, activity)
        if fired:
            logger.info("Speed-to-lead SLA escalated", extra={"lead_id": lead.id, "team": team})
        return fired


class TaskReminders:
    name = "task_reminders"

    def __init__(self, service: FollowUpService) -> None:
        self.service = service

    def due(self, since: datetime, until: datetime, limit: int) -> list[DueWork]:
        return [
            DueWork(task.due_at, f"task:{task.id}", partial(self.service.remind, task))
            for task in self.service.tasks.open_tasks_due(since, until, limit)
        ]


class SpeedToLeadEscalations:
    name = "speed_to_lead"

    def __init__(self, service: FollowUpService) -> None:
        self.service = service

    def due(self, since: datetime, until: datetime, limit: int) -> list[DueWork]:
        return [
            DueWork(timer.due_at, f"sla:{timer.lead_id}", partial(self.service.escalate, timer))
            for timer in self.service.timers.due(since, until, limit)
        ]
