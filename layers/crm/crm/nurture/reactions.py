"""Lead-events stream handlers of nurture sequences (wired in crm.bootstrap).

- enroll_in_nurture: a lead that has just become `nurture` is enrolled in its sequence (once: the enrollment
  is a conditional write, so a redelivered record enrolls nobody twice);
- stop_nurture: a nurtured lead that has just converted, been assigned, reached the sales threshold or become
  do-not-email leaves its sequence (a conditional update; nothing if it was not in one).

Both read nothing for the other records.
"""

from crm.leads.changes import LeadChange
from crm.nurture.sequences import stop_reason
from crm.nurture.service import NurtureService


def enroll_in_nurture(change: LeadChange, nurture: NurtureService) -> None:
    if change.event_name == "REMOVE" or not change.new.get("nurture") or change.old.get("nurture"):
        return
    nurture.enroll(change.lead_id)


def stop_nurture(change: LeadChange, nurture: NurtureService) -> None:
    # Assignment clears `nurture`, so a lead that was nurtured counts too.
    if change.event_name != "MODIFY" or not (change.new.get("nurture") or change.old.get("nurture")):
        return
    threshold, consent = nurture.sales_threshold, nurture.requires_consent
    reason = stop_reason(change.new, threshold, requires_consent=consent)
    if reason is None or reason == stop_reason(change.old, threshold, requires_consent=consent):
        return
    nurture.stop(change.lead_id, reason)
