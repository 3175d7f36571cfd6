"""What lead lists and search do when a lead changes: keep list-index keys and search tokens in step.

They are reactions of the one lead-events dispatcher (crm.leads.changes, wired in crm.bootstrap), not a
stream consumer of their own, and each is idempotent: a redelivered record changes nothing.

- `repair_list_index`: a writer that updates a lead in place (UpdateItem) rather than through
  `LeadItem.from_lead` leaves the list-index keys of the old state; this rewrites them from the new image,
  on the condition that the lead is still in the state they were derived from.
- `index_for_search`: keeps the search-token items (crm.queries.search_repository) in step with the lead;
  a change of nothing they are made of (a score, a status) neither reads nor writes them.
"""

from crm.leads.changes import LeadChange
from crm.leads.index import is_anomalous_stage, stage_of
from crm.leads.repository import lead_from_image
from crm.platform.observability import logger
from crm.queries.service import LeadQueryService


def repair_list_index(change: LeadChange, queries: LeadQueryService) -> None:
    lead = lead_from_image(change.new)
    if lead is None:
        return
    if is_anomalous_stage(stage_of(lead)):
        # Lists never read anomaly keys: say so, loudly, rather than list the lead under a wrong stage.
        logger.warning(
            "Lead flags disagree with its status; it is left out of stage-filtered lists",
            extra={"lead_id": lead.id, "stage": stage_of(lead)},
        )
    if queries.repair_list_index(change.new, lead):
        logger.info("List index keys rewritten after an in-place update", extra={"lead_id": lead.id})


# What a lead's search-token items are made of: its tokens (crm.queries.search.tokens_for) and its scopes
# (lead_scopes: the team and the holder).
SEARCHED_FIELDS = ("first_name", "last_name", "email", "company", "team", "assigned_to")


def index_for_search(change: LeadChange, queries: LeadQueryService) -> None:
    if change.event_name == "MODIFY" and change.old and not change.changed(*SEARCHED_FIELDS):
        return  # a score, a status, a flag: the token items stand as they are, so not even read
    lead = lead_from_image(change.new)
    version = int((change.new or change.old).get("version", 0))
    queries.index_for_search(change.lead_id, lead, version)
