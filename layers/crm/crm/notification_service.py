"""Delivering notification jobs: at most one email per (lead, event, recipient), retried until it goes out.

- lead_assigned: to the rep the lead was assigned to (skipped if it has been reassigned since);
- unassigned_lead: to every active manager of the team whose queue the lead waits in.

A delivery is claimed before sending (`crm.notification_repository`), completed with an activity on the
lead after. A send that fails releases the claim with its reason and raises, so the queue retries the job.
"""

from collections.abc import Callable
from datetime import datetime, timedelta

from crm import clock
from crm.auth import Role
from crm.domain import Lead, new_activity
from crm.email import EmailSender, OutgoingEmail
from crm.errors import PermanentFailure, RetryableError
from crm.notification_repository import Claim, DeliveryKey, NotificationRepository
from crm.notifications import (
    EmailContent,
    NotificationKind,
    NotificationRequest,
    lead_link,
    render_lead_assigned,
    render_unassigned_lead,
)
from crm.observability import logger
from crm.repository import LeadRepository
from crm.user_repository import UserRepository
from crm.users import User

NOTIFIER = "system:notifications"


class NotificationService:
    def __init__(
        self,
        leads: LeadRepository,
        users: UserRepository,
        deliveries: NotificationRepository,
        sender: EmailSender,
        *,
        public_base_url: str,
        lease: timedelta,
        now: Callable[[], datetime] = clock.now,
    ) -> None:
        self.leads = leads
        self.users = users
        self.deliveries = deliveries
        self.sender = sender
        self.public_base_url = public_base_url
        self.lease = lease
        self.now = now

    def deliver(self, request: NotificationRequest) -> int:
        """Send what this job still owes; returns how many emails went out now."""
        lead = self.leads.get(request.lead_id)
        if lead is None:
            logger.info("Notification for a lead that no longer exists", extra={"lead_id": request.lead_id})
            return 0
        sent = 0
        for recipient in self._recipients(request, lead):
            if self._deliver_to(request, lead, recipient):
                sent += 1
        return sent

    def _recipients(self, request: NotificationRequest, lead: Lead) -> list[User]:
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
            raise PermanentFailure("An unassigned_lead notification needs a team")
        if lead.assigned_to is not None:
            logger.info("Lead assigned before the alert went out; skipped", extra={"lead_id": lead.id})
            return []
        managers = [u for u in self.users.team_members(request.team) if u.role is Role.MANAGER and u.active]
        if not managers:
            logger.warning("No active manager to alert", extra={"lead_id": lead.id, "team": request.team})
        return managers

    def _deliver_to(self, request: NotificationRequest, lead: Lead, recipient: User) -> bool:
        delivery = DeliveryKey(lead.id, request.kind.value, request.event_id, recipient.sub)
        claim = self.deliveries.claim(delivery, self.now(), self.lease)
        if claim is Claim.ALREADY_SENT:
            return False
        if claim is Claim.IN_FLIGHT:
            raise RetryableError("Another worker is sending this notification")
        content = self._content(request, lead, recipient)
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

    def _content(self, request: NotificationRequest, lead: Lead, recipient: User) -> EmailContent:
        link = lead_link(self.public_base_url, lead.id)
        if request.kind is NotificationKind.LEAD_ASSIGNED:
            return render_lead_assigned(lead, recipient.name, link)
        return render_unassigned_lead(lead, request.team or "", link)
