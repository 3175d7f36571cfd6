"""Stream handlers that keep what is derived from leads: list-index keys, search tokens and analytics.

They are record handlers of the one lead-events dispatcher (crm.leads.changes), not a stream consumer of
their own, and each is idempotent: a redelivered record changes nothing.

- `repair_list_index`: a writer that updates a lead in place (UpdateItem) rather than through
  `LeadItem.from_lead` leaves the list-index keys of the old state; this rewrites them from the new image,
  on the condition that the lead is still in the state they were derived from.
- `index_for_search`: keeps the search-token items (crm.queries.search_repository) in step with the lead.
- `count_for_analytics`: moves the funnel counters and speed-to-lead histograms (crm.analytics.service).
"""

from typing import Any

from crm.leads.changes import LeadChange
from crm.leads.index import is_anomalous_stage, stage_of
from crm.leads.model import Lead
from crm.leads.repository import LeadItem
from crm.platform.observability import logger


def lead_from_image(image: dict[str, Any]) -> Lead | None:
    return LeadItem.model_validate(image).to_lead() if image else None


def repair_list_index(change: LeadChange) -> None:
    from crm import bootstrap

    lead = lead_from_image(change.new)
    if lead is None:
        return
    if is_anomalous_stage(stage_of(lead)):
        # Lists never read anomaly keys: say so, loudly, rather than list the lead under a wrong stage.
        logger.warning(
            "Lead flags disagree with its status; it is left out of stage-filtered lists",
            extra={"lead_id": lead.id, "stage": stage_of(lead)},
        )
    if bootstrap.list_repository().repair_index(change.new, lead, bootstrap.index_shards()):
        logger.info("List index keys rewritten after an in-place update", extra={"lead_id": lead.id})


def index_for_search(change: LeadChange) -> None:
    from crm import bootstrap

    lead = lead_from_image(change.new)
    version = int((change.new or change.old).get("version", 0))
    bootstrap.search_index().sync(change.lead_id, lead, version)


def count_for_analytics(change: LeadChange) -> None:
    from crm import bootstrap

    record_id = change.sequence_number or f"{change.event_name}:{change.new.get('version')}"
    bootstrap.analytics_service().record_change(
        change.lead_id, record_id, lead_from_image(change.old), lead_from_image(change.new)
    )
