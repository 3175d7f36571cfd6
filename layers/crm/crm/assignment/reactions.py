"""What assignment does when a lead changes (reactions of the lead-events stream, wired in crm.bootstrap).

- route: a scored, unassigned lead at or above the sales threshold goes to the assignment queue; below
  it, it is marked for nurture (`crm.assignment.routing`);
- keep counters: an assignment, reassignment, close or reopening made anywhere moves the open-lead
  counters (`AssignmentService.keep_load`);
- notify: a new assignee gets a notification job, deduplicated per assignment.
"""

from crm.assignment.routing import RoutingService
from crm.assignment.service import AssignmentService
from crm.leads.changes import LeadChange


def route_lead(change: LeadChange, routing: RoutingService) -> None:
    # Only scored, unassigned, open leads can need routing; everything else costs no read.
    if change.event_name == "REMOVE" or not change.open_and_unassigned or change.new.get("grade") is None:
        return
    routing.consider(change.lead_id)


def keep_open_lead_counters(change: LeadChange, assignments: AssignmentService) -> None:
    if change.event_name == "INSERT" and not change.new.get("assigned_to"):
        return
    if change.event_name == "MODIFY" and not change.changed("assigned_to", "lead_status", "converted"):
        return
    assignments.keep_load(change.lead_id)


def notify_new_assignee(change: LeadChange, assignments: AssignmentService) -> None:
    assignee = change.new.get("assigned_to")
    if not assignee or assignee == change.old.get("assigned_to"):
        return
    assignments.notify_assignee(change.lead_id, str(assignee), str(change.new.get("assigned_at")))
