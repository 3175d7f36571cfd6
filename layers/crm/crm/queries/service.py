"""Reading leads: filtered lists, prefix search and a lead's timeline, a page at a time."""

from dataclasses import dataclass
from typing import Any

from crm.leads.model import Activity, Lead
from crm.leads.permissions import can_view, visible_lead
from crm.leads.repository import LeadRepository
from crm.platform.auth import Principal
from crm.platform.cursor import CursorCodec, fingerprint
from crm.platform.errors import BadQuery, FieldProblem, InvalidInput
from crm.platform.ids import RECORD_ID
from crm.queries.list_repository import LeadListRepository
from crm.queries.lists import DEFAULT_PAGE_SIZE, LeadListQuery, matches, plan_list
from crm.queries.search import MIN_PREFIX, SearchIndex, caller_scopes, matches_prefix, normalize, tokens_for

SEARCH_ALONE = (
    "status",
    "owner",
    "source",
    "grade",
    "min_score",
    "max_score",
    "qualified",
    "converted",
    "created_from",
    "created_to",
    "sort",
    "order",
)


@dataclass(frozen=True)
class LeadPage:
    leads: list[Lead]
    next_cursor: str | None


@dataclass(frozen=True)
class ActivityPage:
    activities: list[Activity]
    next_cursor: str | None


def _caller(principal: Principal) -> dict[str, object]:
    """Who asked, as cursors bind it: a cursor is only good for the same caller and visibility."""
    return {
        "subject": principal.subject,
        "groups": sorted(principal.groups),
        "teams": sorted(principal.teams),
    }


def _search_prefix(text: str, others: list[str]) -> str:
    if others:
        raise BadQuery(
            [FieldProblem(name, "cannot be combined with q") for name in others],
            f"q (search) cannot be combined with {', '.join(others)}",
        )
    prefix = normalize(text)
    if len(prefix) < MIN_PREFIX:
        raise InvalidInput.single("q", f"must have at least {MIN_PREFIX} letters or digits")
    return prefix


class LeadQueryService:
    def __init__(
        self,
        lists: LeadListRepository,
        search_index: SearchIndex,
        leads: LeadRepository,
        cursors: CursorCodec,
        shards: int,
    ) -> None:
        self.lists = lists
        self.search_index = search_index
        self.leads = leads
        self.cursors = cursors
        self.shards = shards

    def repair_list_index(self, image: dict[str, Any], lead: Lead) -> bool:
        """Rewrite a stored lead's list-index keys that its state no longer calls for."""
        return self.lists.repair_index(image, lead, self.shards)

    def index_for_search(self, lead_id: str, lead: Lead | None, version: int) -> bool:
        """Bring the lead's search tokens to `version` (None: the lead is gone, its tokens too). A change
        of a lead erased since is skipped: indexed late (a stream behind), it would bring back the tokens
        of an erased person until the lead's REMOVE record came through."""
        if lead is not None and self.leads.get(lead_id) is None:
            return False
        return self.search_index.sync(lead_id, lead, version)

    def list_leads(self, principal: Principal, query: LeadListQuery, cursor: str | None) -> LeadPage:
        plan = plan_list(principal, query, self.shards)
        query_fingerprint = fingerprint(kind="list", **_caller(principal), **query.fingerprint_parts())
        after = self.cursors.decode(cursor, query_fingerprint) if cursor else None
        entries = self.lists.read_page(plan, query.limit, after)
        page = entries[: query.limit]
        leads = [lead for lead in self.lists.leads(page) if matches(query, lead, principal)]
        more = len(entries) > query.limit
        return LeadPage(leads, self.cursors.encode(page[-1].sort_key, query_fingerprint) if more else None)

    def search(
        self, principal: Principal, text: str, limit: int, cursor: str | None, others: list[str]
    ) -> LeadPage:
        """Leads with a first name, last name, email or company starting with `text`; `others` names the
        list parameters sent with it (search stands alone)."""
        prefix = _search_prefix(text, others)
        scopes = caller_scopes(principal)
        query_fingerprint = fingerprint(kind="search", q=prefix, limit=limit, **_caller(principal))
        after = self.cursors.decode(cursor, query_fingerprint) if cursor else None
        hits = self.search_index.search(scopes, prefix, limit, after)
        page = hits[:limit]
        found = self.lists.leads_by_id([hit.lead_id for hit in page])
        leads = [
            found[hit.lead_id]
            for hit in page
            if hit.lead_id in found
            and can_view(principal, found[hit.lead_id])
            and matches_prefix(tokens_for(found[hit.lead_id]), prefix)
        ]
        more = len(hits) > limit
        return LeadPage(leads, self.cursors.encode(page[-1].sort_key, query_fingerprint) if more else None)

    # ------------------------------------------------------------------ jobs (CSV exports)
    def check_query(
        self, principal: Principal, query: LeadListQuery, q: str | None, others: list[str]
    ) -> None:
        """Refuse, now, what `list_leads`/`search` would refuse for these parameters."""
        if q is not None:
            _search_prefix(q, others)
        else:
            plan_list(principal, query, self.shards)

    def page_after(
        self, principal: Principal, query: LeadListQuery, q: str | None, after: str | None
    ) -> tuple[list[Lead], str | None]:
        """A page of the same list (or search) as above, resumed strictly after a raw sort key instead of a
        signed cursor (a job keeps its place in its own item; a cursor key rotation must not break it), and
        the key to resume from (None: the list ends here)."""
        limit = query.limit
        if q is not None:
            prefix = _search_prefix(q, [])
            hits = self.search_index.search(caller_scopes(principal), prefix, limit, after)
            found = self.lists.leads_by_id([hit.lead_id for hit in hits[:limit]])
            leads = [
                found[hit.lead_id]
                for hit in hits[:limit]
                if hit.lead_id in found
                and can_view(principal, found[hit.lead_id])
                and matches_prefix(tokens_for(found[hit.lead_id]), prefix)
            ]
            return leads, hits[limit - 1].sort_key if len(hits) > limit else None
        entries = self.lists.read_page(plan_list(principal, query, self.shards), limit, after)
        page = entries[:limit]
        leads = [lead for lead in self.lists.leads(page) if matches(query, lead, principal)]
        return leads, page[-1].sort_key if len(entries) > limit else None

    def timeline(
        self, principal: Principal, lead_id: str, limit: int = DEFAULT_PAGE_SIZE, cursor: str | None = None
    ) -> ActivityPage:
        """A lead's activities, newest first (404 for a lead the caller may not see)."""
        lead = self.leads.get(lead_id) if RECORD_ID.match(lead_id) else None
        visible_lead(principal, lead, lead_id)
        query_fingerprint = fingerprint(kind="activities", lead_id=lead_id, limit=limit, **_caller(principal))
        after = self.cursors.decode(cursor, query_fingerprint) if cursor else None
        entries = self.lists.activities(lead_id, limit, after)
        page = entries[:limit]
        more = len(entries) > limit
        return ActivityPage(
            [activity for _, activity in page],
            self.cursors.encode(page[-1][0], query_fingerprint) if more else None,
        )
