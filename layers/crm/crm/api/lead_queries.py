"""Reading leads: `GET /leads` (filtered lists and prefix search) and `GET /leads/{id}/activities`."""

from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router

from crm import bootstrap
from crm.api.models.leads import ActivityResponse, LeadResponse
from crm.api.models.queries import ActivityPageResponse, LeadListParams, LeadPageResponse, PageParams
from crm.api.openapi import query_model
from crm.platform.auth import Principal
from crm.platform.http import JWT, documented_responses, json_response, model_from

LIST_DESCRIPTION = """\
Filters: `status`, `owner` (`me`, `unassigned` or a user id), `source`, `grade`, `min_score`/`max_score`,
`qualified`, `converted`, `created_from`/`created_to`; `sort` (`created_at` or `score`) and `order`
(`desc` by default); `limit` (1-100, default 25) and `cursor` (the previous page's `next_cursor`).

Each supported combination is one set of Queries on an index whose keys already hold the caller's
visibility (admins: every lead; managers: their teams' and unrouted leads; reps: their own leads and their
teams' unassigned queue); a combination no index serves answers 400 naming the parameters. Score filters
and grades need `sort=score`, a created range `sort=created_at`. See docs/data-model.md for the index of
each combination.

`q` (at least 2 letters) is a prefix search over first name, last name, email and company, ignoring case
and accents; it combines only with `limit` and `cursor`."""


def caller(event: dict[str, Any]) -> Principal:
    """The caller, with the teams the user directory knows for them (what a manager's lists span)."""
    return bootstrap.caller(event)


def build_router() -> Router:
    router = Router()

    @router.get(
        "/leads",
        summary="List, filter, sort or search the leads the caller may see, a page at a time",
        description=LIST_DESCRIPTION,
        tags=["Leads"],
        security=JWT,
        responses=documented_responses({200: ("A page of leads", LeadPageResponse)}, 400, 401, 403, 422, 503),
        openapi_extensions=query_model(LeadListParams),
    )
    def list_leads_route() -> Response[str]:
        event = router.current_event.raw_event
        principal = caller(event)
        params: LeadListParams = model_from(LeadListParams, dict(event.get("queryStringParameters") or {}))
        leads = bootstrap.lead_query_service()
        if params.q is not None:
            page = leads.search(
                principal, params.q, params.limit, params.cursor, params.list_parameters_sent()
            )
        else:
            page = leads.list_leads(principal, params.to_query(), params.cursor)
        body = LeadPageResponse(
            items=[LeadResponse.from_lead(lead) for lead in page.leads], next_cursor=page.next_cursor
        )
        return json_response(HTTPStatus.OK, body)

    @router.get(
        "/leads/<lead_id>/activities",
        summary="A lead's whole timeline, newest first, a page at a time",
        description="Captures, merges, score changes, assignments, status changes, emails, tasks and "
        "conversion. `limit` (1-100, default 25) and `cursor` (the previous page's `next_cursor`).",
        tags=["Leads"],
        security=JWT,
        responses=documented_responses(
            {200: ("A page of activities", ActivityPageResponse)}, 400, 401, 404, 422, 503
        ),
        openapi_extensions=query_model(PageParams),
    )
    def lead_activities_route(lead_id: str) -> Response[str]:
        event = router.current_event.raw_event
        principal = caller(event)
        params: PageParams = model_from(PageParams, dict(event.get("queryStringParameters") or {}))
        page = bootstrap.lead_query_service().timeline(principal, lead_id, params.limit, params.cursor)
        body = ActivityPageResponse(
            items=[ActivityResponse.from_activity(activity) for activity in page.activities],
            next_cursor=page.next_cursor,
        )
        return json_response(HTTPStatus.OK, body)

    return router
