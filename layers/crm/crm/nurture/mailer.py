"""Sending one nurture step's email (a `nurture_step` job of the notification queue), at most once.

At send time everything is checked again, because the job may have waited in the queue: the enrollment is
still this one and not stopped, the lead exists and may be emailed (not do-not-email, converted, assigned or
sales-ready; otherwise its enrollment is stopped here too). The email is then claimed in one transaction that
also checks the lead is still at the version just read (`NurtureRepository.claim_send`): if an unsubscribe
committed in between, the claim fails, the lead is read again, and nothing is sent. An unsubscribe that
commits first therefore always wins; one that commits after the claim finds the email already on its way.

The email is the step's SES template rendered for the lead (`crm.notifications.templates`), sent as raw
MIME through
SES v2 with the configuration set, tags `lead_id`, `kind=nurture_step`, `audience=lead`, `sequence_id`, and
one-click unsubscribe headers (`crm.nurture.unsubscribe`). Each send adds a `nurture_email_sent` activity.
"""

from collections.abc import Callable
from datetime import datetime, timedelta

from crm.leads.model import Lead, new_activity
from crm.leads.repository import LeadRepository
from crm.notifications.messages import NotificationKind, NotificationRequest
from crm.notifications.repository import DeliveryKey, NotificationRepository
from crm.notifications.templates import TemplateStore, render, template_values
from crm.nurture.repository import NurtureRepository, SendCheck, SendClaim
from crm.nurture.sequences import EnrollmentState, NurtureEnrollment, parse_step_event_id, stop_reason
from crm.nurture.service import stop_enrollment
from crm.nurture.unsubscribe import UnsubscribeTokens, list_unsubscribe_headers, unsubscribe_url
from crm.platform import clock
from crm.platform.email import EmailSender, OutgoingEmail
from crm.platform.errors import PermanentFailure, RetryableError
from crm.platform.observability import logger

MAILER = "system:nurture"
LEAD_RECIPIENT = "lead"  # the delivery's recipient: the lead itself, not a user
MAX_ATTEMPTS = 5


class NurtureMailer:
    def __init__(
        self,
        leads: LeadRepository,
        nurture: NurtureRepository,
        deliveries: NotificationRepository,
        sender: EmailSender,
        *,
        templates: TemplateStore,
        tokens: UnsubscribeTokens,
        public_base_url: str,
        sales_threshold: Callable[[], int],
        lease: timedelta,
        requires_consent: bool = False,
        suppressed: Callable[[Lead], bool] | None = None,
        now: Callable[[], datetime] = clock.now,
    ) -> None:
        self.leads = leads
        self.nurture = nurture
        self.deliveries = deliveries
        self.sender = sender
        self.templates = templates
        self.tokens = tokens
        self.public_base_url = public_base_url
        self._sales_threshold = sales_threshold
        self.requires_consent = requires_consent
        # An erased person (crm.leads.suppression) is never mailed again, unless they consented anew.
        self.suppressed = suppressed
        self.lease = lease
        self.now = now

    @property
    def sales_threshold(self) -> int:
        """The stored sales threshold (crm.leads.routing_settings), as of at most a few seconds ago."""
        return self._sales_threshold()

    def deliver(self, request: NotificationRequest) -> int:
        """Send the step's email if it is still owed; returns how many emails went out now (0 or 1)."""
        if request.kind is not NotificationKind.NURTURE_STEP:
            raise PermanentFailure(f"Not a nurture step job: {request.kind.value}")
        try:
            enrollment_id, step = parse_step_event_id(request.event_id)
        except ValueError:
            raise PermanentFailure(
                f"A nurture_step job needs a nurture event id, not {request.event_id}"
            ) from None
        delivery = DeliveryKey(request.lead_id, request.kind.value, request.event_id, LEAD_RECIPIENT)
        for _ in range(MAX_ATTEMPTS):
            checked = self._still_owed(request.lead_id, enrollment_id, step)
            if checked is None:
                return 0
            lead, enrollment = checked
            template = self.templates.get(enrollment.steps[step].template)
            if template is None:
                raise PermanentFailure(f"No SES email template is named {enrollment.steps[step].template}")
            url = unsubscribe_url(self.public_base_url, self.tokens.token_for(lead.id))
            content = render(template, template_values(lead, url))
            now = self.now()
            claim = self.nurture.claim_send(
                delivery, SendCheck(lead.id, lead.version, enrollment.id), now, self.lease
            )
            if claim is SendClaim.LEAD_CHANGED:
                continue  # the lead changed since it was read (an unsubscribe?): decide again
            if claim is SendClaim.IN_FLIGHT:
                raise RetryableError("Another worker is sending this nurture email")
            if claim is not SendClaim.CLAIMED:
                logger.info("Nurture email not owed", extra={"lead_id": lead.id, "claim": claim.value})
                return 0
            email = OutgoingEmail(
                to=lead.email,
                subject=content.subject,
                html=content.html,
                text=content.text,
                tags={
                    "lead_id": lead.id,
                    "kind": request.kind.value,
                    "audience": "lead",
                    "sequence_id": enrollment.sequence_id,
                },
                headers=list_unsubscribe_headers(url),
            )
            try:
                message_id = self.sender.send(email)
            except Exception as exc:
                self.deliveries.release(delivery, f"{type(exc).__name__}: {exc}", self.now())
                raise
            sent_at = self.now()
            activity = new_activity(
                lead.id,
                "nurture_email_sent",
                f"Nurture email {step + 1} of {len(enrollment.steps)} ({enrollment.sequence_name}): "
                f"{content.subject}",
                MAILER,
                sent_at,
                sequence_id=enrollment.sequence_id,
                enrollment_id=enrollment.id,
                step=step + 1,
                template=template.name,
                event_id=request.event_id,
                message_id=message_id,
            )
            self.deliveries.complete(delivery, message_id, activity, sent_at)
            logger.info("Nurture email sent", extra={"lead_id": lead.id, "step": step + 1})
            return 1
        raise RetryableError("The lead keeps changing; the nurture email will be tried again")

    def _still_owed(
        self, lead_id: str, enrollment_id: str, step: int
    ) -> tuple[Lead, NurtureEnrollment] | None:
        """The lead and its enrollment if this step's email is still owed; None (and a log) otherwise."""
        enrollment = self.nurture.get_enrollment(lead_id)
        if (
            enrollment is None
            or enrollment.id != enrollment_id
            or enrollment.state is EnrollmentState.STOPPED
            or step >= len(enrollment.steps)
            or step > enrollment.next_step
        ):
            logger.info("Nurture step no longer owed", extra={"lead_id": lead_id, "step": step + 1})
            return None
        lead = self.leads.get(lead_id)
        if lead is None:
            logger.info("Nurture email for a lead that no longer exists", extra={"lead_id": lead_id})
            return None
        reason = stop_reason(lead.model_dump(), self.sales_threshold, requires_consent=self.requires_consent)
        if reason is not None:
            # The stream stops it too; doing it here as well means nothing is fired for it again.
            stop_enrollment(self.nurture, enrollment, reason, self.now())
            logger.info("Nurture email not sent", extra={"lead_id": lead_id, "reason": reason.value})
            return None
        if self.suppressed is not None and self.suppressed(lead):
            logger.info("Nurture email not sent", extra={"lead_id": lead_id, "reason": "suppressed"})
            return None
        return lead, enrollment
