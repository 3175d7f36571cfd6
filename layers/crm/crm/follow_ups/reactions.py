"""What follow-ups do when a lead changes (reactions of the lead-events stream, wired in crm.bootstrap).

A new lead starts its speed-to-lead timer, an assignment plans the rep's follow-up tasks, the first
contact (or conversion, or nurture) stops both.
"""

from crm.follow_ups.service import FollowUpService
from crm.leads.changes import LeadChange
from crm.leads.model import LeadStatus
from crm.platform import clock


def start_speed_to_lead_clock(change: LeadChange, follow_ups: FollowUpService) -> None:
    if change.event_name != "INSERT" or change.new.get("lead_status") != LeadStatus.NEW.value:
        return
    follow_ups.start_sla(change.lead_id, clock.parse(str(change.new["created_at"])))


def plan_follow_ups(change: LeadChange, follow_ups: FollowUpService) -> None:
    assignee = change.new.get("assigned_to")
    if not assignee or assignee == change.old.get("assigned_to") or change.new.get("lead_status") != "new":
        return
    follow_ups.on_assigned(change.lead_id)


def close_what_no_longer_waits(change: LeadChange, follow_ups: FollowUpService) -> None:
    if change.event_name != "MODIFY" or not change.changed("lead_status", "converted", "nurture"):
        return
    follow_ups.on_change(change.lead_id)
