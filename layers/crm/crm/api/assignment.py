"""Assignment routes: rules (`/assignment-rules`), manual assignment (`POST /leads/{id}/assign`) and the
unassigned queue (`GET /leads/unassigned`). Managers and admins only."""

import re
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from pydantic import BaseModel, Field

from crm import bootstrap
from crm.api.models.assignment import (
    AssignLeadRequest,
    AssignmentRuleListResponse,
    AssignmentRuleResponse,
    UpdateAssignmentRuleRequest,
)
from crm.api.models.leads import LeadResponse
from crm.api.models.lifecycle import etag, expected_version
from crm.api.openapi import request_model
from crm.assignment.rules import AssignmentRuleInput
from crm.leads.permissions import can_view, require_role
from crm.platform.auth import Principal, Role
from crm.platform.cursor import decode_position, encode_position
from crm.platform.errors import InvalidInput, NotFound
from crm.platform.http import (
    CHANGE_ERRORS,
    JWT,
    VERSIONED_CHANGE_ERRORS,
    documented_responses,
    json_response,
    model_from,
    parse_body,
    raw_body,
)
from crm.platform.ids import RECORD_ID
from crm.platform.settings import get_settings
from crm.users.model import team_name

_RULE_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
# A position in the unassigned queue: the index sort key of the last lead shown (created_at#id).
_QUEUE_CURSOR = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z#[0-9a-f-]{36}$")
MAX_PAGE = 200
DEFAULT_PAGE = 50


class UnassignedLeadsResponse(BaseModel):
    items: list[LeadResponse]
    # Pass as `cursor` for the next (older) page; null on the last page.
    next_cursor: str | None
    leads: list[LeadResponse] = Field(description="Deprecated alias of `items` (one release)")


def _json_body(event: dict[str, Any]) -> dict[str, Any]:
    return parse_body(event.get("headers") or {}, raw_body(event, get_settings().max_body_bytes))


def _staff(event: dict[str, Any]) -> Principal:
    """The caller, with the teams the user directory knows for them; managers and admins only."""
    principal = bootstrap.caller(event)
    require_role(principal, Role.MANAGER, Role.ADMIN)
    return principal


def _rule_id(rule_id: str) -> str:
    if not _RULE_ID.match(rule_id):
        raise NotFound(f"No assignment rule with id {rule_id}")
    return rule_id


# ---------------------------------------------------------------- rules


def list_rules(event: dict[str, Any]) -> Response[str]:
    rules = bootstrap.assignment_rule_service().list(_staff(event))
    listed = [AssignmentRuleResponse.from_rule(rule) for rule in rules]
    body = AssignmentRuleListResponse(items=listed, rules=listed)
    return json_response(HTTPStatus.OK, body)


def get_rule(event: dict[str, Any], rule_id: str) -> Response[str]:
    rule = bootstrap.assignment_rule_service().get(_rule_id(rule_id), _staff(event))
    return json_response(HTTPStatus.OK, AssignmentRuleResponse.from_rule(rule), headers=etag(rule.version))


def create_rule(event: dict[str, Any]) -> Response[str]:
    principal = _staff(event)
    definition: AssignmentRuleInput = model_from(AssignmentRuleInput, _json_body(event))
    rule = bootstrap.assignment_rule_service().create(definition, principal)
    headers = {"Location": f"/assignment-rules/{rule.id}", **etag(rule.version)}
    return json_response(HTTPStatus.CREATED, AssignmentRuleResponse.from_rule(rule), headers=headers)


def update_rule(event: dict[str, Any], rule_id: str) -> Response[str]:
    principal = _staff(event)
    request: UpdateAssignmentRuleRequest = model_from(UpdateAssignmentRuleRequest, _json_body(event))
    version = expected_version(event.get("headers") or {}, request.version)
    rule = bootstrap.assignment_rule_service().update(
        _rule_id(rule_id), request.merged_into, version, principal
    )
    return json_response(HTTPStatus.OK, AssignmentRuleResponse.from_rule(rule), headers=etag(rule.version))


def delete_rule(event: dict[str, Any], rule_id: str) -> Response[str]:
    bootstrap.assignment_rule_service().delete(_rule_id(rule_id), _staff(event))
    return Response(status_code=HTTPStatus.NO_CONTENT, body="")


# ---------------------------------------------------------------- leads


def assign_lead(event: dict[str, Any], lead_id: str) -> Response[str]:
    principal = _staff(event)
    request: AssignLeadRequest = model_from(AssignLeadRequest, _json_body(event))
    if not RECORD_ID.match(lead_id):
        raise NotFound(f"No lead with id {lead_id}")
    lead = bootstrap.assignment_service().assign_manually(
        lead_id, request.assigned_to, request.reason, principal
    )
    return json_response(HTTPStatus.OK, LeadResponse.from_lead(lead), headers=etag(lead.version))


def _query_flag(value: str | None, name: str) -> bool:
    if value is None:
        return False
    if value.lower() in ("true", "1", "yes"):
        return True
    if value.lower() in ("false", "0", "no"):
        return False
    raise InvalidInput.single(name, "must be true or false")


def _is_queue_position(position: str) -> bool:
    return _QUEUE_CURSOR.fullmatch(position) is not None


def unassigned_leads(event: dict[str, Any]) -> Response[str]:
    principal = _staff(event)
    query = event.get("queryStringParameters") or {}
    limit_text = query.get("limit", str(DEFAULT_PAGE))
    if not limit_text.isdigit() or not 1 <= int(limit_text) <= MAX_PAGE:
        raise InvalidInput.single("limit", f"must be a whole number from 1 to {MAX_PAGE}")
    cursor = query.get("cursor")
    before = decode_position(cursor, _is_queue_position) if cursor is not None else None
    team = query.get("team")
    if team is not None:
        try:
            team = team_name(team.strip())
        except ValueError as exc:
            raise InvalidInput.single("team", str(exc)) from None
    include_nurture = _query_flag(query.get("include_nurture"), "include_nurture")
    leads, last_position = bootstrap.assignment_repository().unassigned_page(
        int(limit_text), before, team, include_nurture
    )
    visible = [LeadResponse.from_lead(lead) for lead in leads if can_view(principal, lead)]
    next_cursor = encode_position(last_position) if last_position is not None else None
    return json_response(
        HTTPStatus.OK, UnassignedLeadsResponse(items=visible, next_cursor=next_cursor, leads=visible)
    )


def build_router() -> Router:
    router = Router()

    @router.get(
        "/assignment-rules",
        summary="Assignment rules, in the order they are tried (manager, admin)",
        tags=["Assignment"],
        security=JWT,
        responses=documented_responses({200: ("The rules", AssignmentRuleListResponse)}, 401, 403),
    )
    def list_rules_route() -> Response[str]:
        return list_rules(router.current_event.raw_event)

    @router.post(
        "/assignment-rules",
        summary="Add an assignment rule (manager, admin)",
        description=(
            "Rules are tried by ascending `priority`; the first active rule whose `conditions` all match "
            "sends the lead to `target_user` (a user's sub) or `target_team`. No match: the default team. "
            "Conditions use the operators of scoring rules."
        ),
        tags=["Assignment"],
        security=JWT,
        responses=documented_responses(
            {201: ("The new rule", AssignmentRuleResponse)}, 400, 401, 403, 413, 415, 422, 503
        ),
        openapi_extensions=request_model(AssignmentRuleInput),
    )
    def create_rule_route() -> Response[str]:
        return create_rule(router.current_event.raw_event)

    @router.get(
        "/assignment-rules/<rule_id>",
        summary="One assignment rule (manager, admin)",
        tags=["Assignment"],
        security=JWT,
        responses=documented_responses(
            {200: ("The rule (ETag: its version)", AssignmentRuleResponse)}, 401, 403, 404
        ),
    )
    def get_rule_route(rule_id: str) -> Response[str]:
        return get_rule(router.current_event.raw_event, rule_id)

    @router.patch(
        "/assignment-rules/<rule_id>",
        summary="Change an assignment rule (manager, admin)",
        description=(
            'Send the version you read as `If-Match: "3"` or `version`: stale is 409, missing is 428.'
        ),
        tags=["Assignment"],
        security=JWT,
        responses=documented_responses(
            {200: ("The rule as stored", AssignmentRuleResponse)},
            *VERSIONED_CHANGE_ERRORS,
        ),
        openapi_extensions=request_model(UpdateAssignmentRuleRequest),
    )
    def update_rule_route(rule_id: str) -> Response[str]:
        return update_rule(router.current_event.raw_event, rule_id)

    @router.delete(
        "/assignment-rules/<rule_id>",
        summary="Delete an assignment rule (manager, admin)",
        tags=["Assignment"],
        security=JWT,
        responses=documented_responses({204: ("Deleted", None)}, 401, 403, 404),
    )
    def delete_rule_route(rule_id: str) -> Response[str]:
        return delete_rule(router.current_event.raw_event, rule_id)

    @router.get(
        "/leads/unassigned",
        summary="The unassigned queue, newest first (manager, admin)",
        description=(
            "Leads nobody owns yet, including those waiting for a rep to become available. Nurture leads "
            "are left out unless `include_nurture=true`; `team` narrows to one team; `limit` (1-200, "
            "default 50) and `cursor` (the previous page's `next_cursor`) page through older leads. "
            "Managers see their teams' leads and those not routed to a team yet."
        ),
        tags=["Assignment"],
        security=JWT,
        responses=documented_responses(
            {200: ("A page of the queue", UnassignedLeadsResponse)}, 400, 401, 403, 422
        ),
    )
    def unassigned_leads_route() -> Response[str]:
        return unassigned_leads(router.current_event.raw_event)

    @router.post(
        "/leads/<lead_id>/assign",
        summary="Assign or reassign a lead by hand (manager, admin)",
        description=(
            "To an active user (a manager: to a member of one of their teams), at or over capacity. The "
            "open-lead counters of the previous and the new owner move in the same transaction; the "
            "activity records who did it and the optional `reason`; the new owner is emailed."
        ),
        tags=["Assignment"],
        security=JWT,
        responses=documented_responses(
            {200: ("The lead as stored (ETag: its version)", LeadResponse)},
            *CHANGE_ERRORS,
        ),
        openapi_extensions=request_model(AssignLeadRequest),
    )
    def assign_lead_route(lead_id: str) -> Response[str]:
        return assign_lead(router.current_event.raw_event, lead_id)

    return router
