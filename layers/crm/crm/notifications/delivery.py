"""Delivering notification jobs: at most one email per (lead, event, recipient), retried until it goes out.

- lead_assigned: to the rep the lead was assigned to (skipped if it has been reassigned since);
- unassigned_lead: to every active manager of the team whose queue the lead waits in;
- task_reminder: to a task's owner, while the task is open, still due then, and still wanted
  (`crm.leads.tasks.task_closing_reason`: a follow-up is not once its lead has been contacted, a
  rule-made task not once its lead has been converted);
- sla_breached: to every active manager of the lead's team, unless the lead was contacted meanwhile;
- nurture_step: to the lead itself, handed to `crm.nurture.mailer` (its own checks and claim).

A delivery is claimed before sending (`crm.notifications.repository`), completed with an activity on the
lead after. A send that fails releases the claim with its reason and raises, so the queue retries the job.
"""

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

from crm.leads.model import Lead, new_activity, sla_stop_reason
from crm.leads.repository import LeadRepository
from crm.leads.task_repository import TaskRepository
from crm.leads.tasks import Task, task_closing_reason
from crm.notifications.messages import (
    EmailContent,
    NotificationKind,
    NotificationRequest,
    lead_link,
    overdue_by,
    render_lead_assigned,
    render_sla_breached,
    render_task_reminder,
    render_unassigned_lead,
)
from crm.notifications.repository import Claim, DeliveryKey, NotificationRepository
from crm.platform import clock
from crm.platform.auth import Role
from crm.platform.email import EmailSender, OutgoingEmail
from crm.platform.errors import PermanentFailure, RetryableError
from crm.platform.observability import logger
from crm.users.model import User
from crm.users.repository import UserRepository


class JobDelivery(Protocol):
    """Delivers one kind of job itself (nurture steps: `crm.nurture.mailer.NurtureMailer`)."""

    def deliver(self, request: NotificationRequest) -> int: ...


NOTIFIER = "system:notifications"


class NotificationService:
    def __init__(
        self,
        leads: LeadRepository,
        users: UserRepository,
        deliveries: NotificationRepository,
        sender: EmailSender,
        tasks: TaskRepository,
        *,
        console_url: str,
        lease: timedelta,
        now: Callable[[], datetime] = clock.now,
        nurture: JobDelivery | None = None,
    ) -> None:
        self.nurture = nurture  # nurture_step jobs: emails to the lead itself (crm.nurture.mailer)
        self.leads = leads
        self.users = users
        self.deliveries = deliveries
        self.sender = sender
        self.tasks = tasks
        self.console_url = console_url  # links in the emails open the lead's page in the web console
        self.lease = lease
        self.now = now

    def deliver(self, request: NotificationRequest) -> int:
        """Send what this job still owes; returns how many emails went out now."""
        if request.kind is NotificationKind.NURTURE_STEP:
            if self.nurture is None:
                raise PermanentFailure("Nurture emails are not configured in this function")
            return self.nurture.deliver(request)
        lead = self.leads.get(request.lead_id)
        if lead is None:
            logger.info("Notification for a lead that no longer exists", extra={"lead_id": request.lead_id})
            return 0
        task = None
        if request.kind is NotificationKind.TASK_REMINDER:
            task = self._reminded_task(request, lead)
            if task is None:
                return 0
        sent = 0
        for recipient in self._recipients(request, lead, task):
            if self._deliver_to(request, lead, recipient, task):
                sent += 1
        return sent

    def _reminded_task(self, request: NotificationRequest, lead: Lead) -> Task | None:
        """The task a reminder is about, if it still deserves one (None: skip the reminder)."""
        if not request.task_id or not request.recipient or request.due_at is None:
            raise PermanentFailure("A task_reminder notification needs task_id, recipient and due_at")
        task = self.tasks.get(request.task_id)
        if task is None or task.owner != request.recipient or task.due_at != request.due_at:
            logger.info("Task changed before its reminder; skipped", extra={"lead_id": lead.id})
            return None
        if not task.is_open or task_closing_reason(task, lead) is not None:
            logger.info(
                "Task closed or lead contacted before the reminder; skipped", extra={"lead_id": lead.id}
            )
            return None
        return task

    def _recipients(self, request: NotificationRequest, lead: Lead, task: Task | None) -> list[User]:
        if task is not None:
            owner = self.users.get(task.owner)
            if owner is None:
                raise PermanentFailure(f"The task owner {task.owner} has no user record (no email address)")
            return [owner]
        if request.kind is NotificationKind.LEAD_ASSIGNED:
            if not request.recipient:
                raise PermanentFailure("A lead_assigned notification needs a recipient")
            if lead.assigned_to != request.recipient:
                logger.info("Lead reassigned before its notification; skipped", extra={"lead_id": lead.id})
                return []
            user = self.users.get(request.recipient)
            if user is None:
                raise PermanentFailure(
                    f"The assignee {request.recipient} has no user record (no email address)"
                )
            return [user]
        if not request.team:
            raise PermanentFailure(f"A {request.kind.value} notification needs a team")
        if request.kind is NotificationKind.SLA_BREACHED:
            stopped = sla_stop_reason(lead)
            if stopped is not None:
                logger.info("SLA escalation no longer needed", extra={"lead_id": lead.id, "reason": stopped})
                return []
        elif lead.assigned_to is not None:
            logger.info("Lead assigned before the alert went out; skipped", extra={"lead_id": lead.id})
            return []
        managers = [u for u in self.users.team_members(request.team) if u.role is Role.MANAGER and u.active]
        if not managers:
            logger.warning("No active manager to alert", extra={"lead_id": lead.id, "team": request.team})
        return managers

    def _deliver_to(
        self, request: NotificationRequest, lead: Lead, recipient: User, task: Task | None
    ) -> bool:
        delivery = DeliveryKey(lead.id, request.kind.value, request.event_id, recipient.sub)
        claim = self.deliveries.claim(delivery, self.now(), self.lease)
        if claim is Claim.ALREADY_SENT:
            return False
        if claim is Claim.IN_FLIGHT:
            raise RetryableError("Another worker is sending this notification")
        content = self._content(request, lead, recipient, task)
        email = OutgoingEmail(
            to=recipient.email,
            subject=content.subject,
            html=content.html,
            text=content.text,
            tags={"lead_id": lead.id, "kind": request.kind.value, "audience": "staff"},
        )
        try:
            message_id = self.sender.send(email)
        except Exception as exc:
            self.deliveries.release(delivery, f"{type(exc).__name__}: {exc}", self.now())
            raise
        now = self.now()
        activity = new_activity(
            lead.id,
            "notification_sent",
            f"Email to {recipient.name}: {content.subject}",
            NOTIFIER,
            now,
            kind=request.kind.value,
            recipient=recipient.sub,
            event_id=request.event_id,
            message_id=message_id,
        )
        self.deliveries.complete(delivery, message_id, activity, now)
        logger.info("Notification sent", extra={"lead_id": lead.id, "kind": request.kind.value})
        return True

    def _content(
        self, request: NotificationRequest, lead: Lead, recipient: User, task: Task | None
    ) -> EmailContent:
        link = lead_link(self.console_url, lead.id)
        if request.kind is NotificationKind.LEAD_ASSIGNED:
            return render_lead_assigned(lead, recipient.name, link)
        if task is not None:
            return render_task_reminder(lead, recipient.name, task.title, _when(task.due_at), link)
        if request.kind is NotificationKind.SLA_BREACHED:
            deadline = request.due_at or self.now()
            owner = lead.assigned_to or "nobody (unassigned)"
            if lead.assigned_to:
                user = self.users.get(lead.assigned_to)
                owner = user.name if user is not None else lead.assigned_to
            return render_sla_breached(
                lead,
                request.team or "",
                link,
                deadline=_when(deadline),
                overdue=overdue_by(deadline, self.now()),
                owner=owner,
            )
        return render_unassigned_lead(lead, request.team or "", link)


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
