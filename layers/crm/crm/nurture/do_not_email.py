"""Marking a lead do-not-email: from its unsubscribe link, or when SES reports a permanent bounce or a
complaint about an email to it. Once marked, no marketing email reaches the lead (`crm.nurture.mailer`
checks at send time) and the lead-events stream stops its nurture sequence.

The mark is a conditional write of the lead (`version = :read`, with an activity in the same transaction);
a lost race reads again. Marking a lead that is already marked, or that does not exist, changes nothing and
is not an error: the unsubscribe route answers the same either way, so it never reveals whether a lead exists.
"""

from collections.abc import Callable
from datetime import datetime

from crm.leads.model import Activity, Lead, MarketingConsent, new_activity
from crm.leads.repository import LeadRepository
from crm.nurture.unsubscribe import DoNotEmailReason, suppression_reason
from crm.platform import clock
from crm.platform.errors import RetryableError, VersionConflict
from crm.platform.observability import logger

MAX_ATTEMPTS = 5
UNSUBSCRIBER = "system:unsubscribe"
SES_EVENTS = "system:ses"
_DESCRIPTIONS = {
    DoNotEmailReason.UNSUBSCRIBED: "Unsubscribed from marketing email (unsubscribe link)",
    DoNotEmailReason.BOUNCED: "Marked do-not-email: an email to the lead bounced permanently",
    DoNotEmailReason.COMPLAINED: "Marked do-not-email: the lead reported an email as spam",
}


class DoNotEmailService:
    def __init__(self, leads: LeadRepository, now: Callable[[], datetime] = clock.now) -> None:
        self.leads = leads
        self.now = now

    def unsubscribe(self, lead_id: str) -> bool:
        return self.mark(lead_id, DoNotEmailReason.UNSUBSCRIBED, UNSUBSCRIBER)

    def suppress_for_email_event(self, activity: Activity) -> bool:
        """`crm.notifications.ses_events` calls this for every email event it records (redeliveries too)."""
        reason = suppression_reason(activity)
        if reason is None:
            return False
        return self.mark(activity.lead_id, reason, SES_EVENTS, message_id=activity.data.get("message_id"))

    def mark(
        self, lead_id: str, reason: DoNotEmailReason, actor: str, *, message_id: str | None = None
    ) -> bool:
        """Mark the lead do-not-email (an unsubscribe also withdraws its marketing consent); False when
        there was nothing to change, or no such lead."""
        for _ in range(MAX_ATTEMPTS):
            lead = self.leads.get(lead_id)
            withdraws = reason is DoNotEmailReason.UNSUBSCRIBED and _consent_given(lead)
            if lead is None or (lead.do_not_email and not withdraws):
                return False
            now = self.now()
            update: dict[str, object] = {"updated_at": now}
            if not lead.do_not_email:
                update |= {"do_not_email": True, "do_not_email_reason": reason.value, "do_not_email_at": now}
            if withdraws:
                update["marketing_consent"] = MarketingConsent(
                    given=False, at=now, channel="unsubscribe", recorded_by=actor
                )
            marked = lead.model_copy(update=update)
            activity = new_activity(
                lead.id,
                "do_not_email",
                _DESCRIPTIONS[reason],
                actor,
                now,
                reason=reason.value,
                message_id=message_id,
            )
            try:
                self.leads.replace(marked, lead.version, [activity])
            except VersionConflict:
                continue  # changed meanwhile: read again
            logger.info("Lead marked do-not-email", extra={"lead_id": lead.id, "reason": reason.value})
            return True
        raise RetryableError("The lead keeps changing; try again")


def _consent_given(lead: Lead | None) -> bool:
    return lead is not None and lead.marketing_consent is not None and lead.marketing_consent.given
