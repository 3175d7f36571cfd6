"""What analytics does when a lead changes (a reaction of the lead-events stream, wired in crm.bootstrap):
move the funnel counters and speed-to-lead histograms, once per stream record.

A lead is only ever deleted by a person's erasure (crm.privacy): the counters keep its numbers (they hold
no personal data), so the removal itself moves nothing.
"""

from crm.analytics.service import AnalyticsService
from crm.leads.changes import LeadChange
from crm.leads.repository import lead_from_image


def count_for_analytics(change: LeadChange, analytics: AnalyticsService) -> None:
    if change.event_name == "REMOVE":
        return
    record_id = change.sequence_number or f"{change.event_name}:{change.new.get('version')}"
    analytics.record_change(
        change.lead_id, record_id, lead_from_image(change.old), lead_from_image(change.new)
    )
