"""The authenticated leads API (system integrations, reps and managers)."""

from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.utilities.typing import LambdaContext

from crm import bootstrap
from crm.api import lifecycle
from crm.api.capture import record_capture, respond_once
from crm.api.models.leads import (
    ActivityResponse,
    CaptureResponse,
    CreateLeadRequest,
    LeadDetailResponse,
    LeadResponse,
)
from crm.api.models.lifecycle import QualificationResponse, QualifyLeadRequest, UpdateLeadRequest
from crm.api.openapi import request_model
from crm.leads.model import Channel
from crm.leads.permissions import can_view, visible_lead
from crm.platform.auth import Principal
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


def get_lead(lead_id: str, principal: Principal) -> Response[str]:
    found = bootstrap.lead_repository().get_with_activities(lead_id) if RECORD_ID.match(lead_id) else None
    lead = visible_lead(principal, found[0] if found else None, lead_id)
    activities = found[1] if found else []
    detail = LeadDetailResponse(
        **LeadResponse.from_lead(lead).model_dump(),
        activities=[ActivityResponse.from_activity(activity) for activity in activities],
    )
    # The ETag is the version: send it back as If-Match on PATCH.
    return json_response(HTTPStatus.OK, detail, headers={"ETag": f'"{lead.version}"'})


def create_lead(event: dict[str, Any], principal: Principal, context: LambdaContext | None) -> Response[str]:
    """System API: strict input; the caller is authenticated, so it gets the lead back."""
    settings = get_settings()
    body = raw_body(event, settings.max_body_bytes)
    data = parse_body(event.get("headers") or {}, body)
    request = model_from(CreateLeadRequest, data)
    submission = request.to_submission(Channel.API, Channel.API.value, principal.actor)

    def produce() -> dict[str, Any]:
        result = bootstrap.capture_service().capture(submission)
        record_capture(result, Channel.API)
        status = HTTPStatus.CREATED if result.created else HTTPStatus.OK
        headers = {"Location": f"/leads/{result.lead_id}"}
        # A known email may belong to a lead the caller may not see: then only its id is returned.
        visible = result.created or can_view(principal, result.lead)
        body = (
            LeadResponse.from_lead(result.lead)
            if visible
            else CaptureResponse(id=result.lead_id, created=False)
        )
        return {"status": status, "body": body.model_dump_json(), "headers": headers}

    return respond_once(event, "leads", body, context, produce)


def build_router() -> Router:
    router = Router()

    @router.post(
        "/leads",
        summary="Create a lead (system API)",
        description="Strict: unknown fields are refused. A known email merges into its lead and answers 200.",
        tags=["Leads"],
        security=JWT,
        responses=documented_responses(
            {
                201: ("The new lead", LeadResponse),
                200: (
                    "The lead this email already had (its id only if the caller may not see it)",
                    LeadResponse | CaptureResponse,
                ),
            },
            400,
            401,
            413,
            415,
            422,
            503,
        ),
        openapi_extensions=request_model(CreateLeadRequest),
    )
    def create_lead_route() -> Response[str]:
        event = router.current_event.raw_event
        return create_lead(event, bootstrap.caller(event), router.lambda_context)

    @router.get(
        "/leads/<lead_id>",
        summary="A lead with its activities, newest first",
        tags=["Leads"],
        security=JWT,
        responses=documented_responses({200: ("The lead", LeadDetailResponse)}, 401, 404),
    )
    def get_lead_route(lead_id: str) -> Response[str]:
        return get_lead(lead_id, bootstrap.caller(router.current_event.raw_event))

    @router.patch(
        "/leads/<lead_id>",
        summary="Change a lead's person/company fields and status, with optimistic locking",
        description=(
            'Send the version you read as `If-Match: "3"` (or `3`, `W/"3"`) or as `version` in the body: '
            "a stale version is 409 with `current_version`, no version is 428. Only the fields sent change; "
            "`null` clears an optional field. `lead_status` follows the lifecycle (qualified and converted "
            "have their own routes). A new email moves the lead's uniqueness claim, or is 409 when another "
            "lead has it. Every change is recorded as an activity with old and new values."
        ),
        tags=["Leads"],
        security=JWT,
        responses=documented_responses(
            {200: ("The lead as stored (ETag: its version)", LeadResponse)},
            *VERSIONED_CHANGE_ERRORS,
        ),
        openapi_extensions=request_model(UpdateLeadRequest),
    )
    def update_lead_route(lead_id: str) -> Response[str]:
        event = router.current_event.raw_event
        return lifecycle.update_lead(event, lead_id, bootstrap.caller(event))

    @router.post(
        "/leads/<lead_id>/qualify",
        summary="Qualify a lead with BANT",
        description=(
            "All four of has_budget, has_authority, has_need and has_timeline → qualified (and the task "
            '"Schedule discovery call", high priority, due in 24 hours, for the lead\'s rep); otherwise '
            'unqualified. The answers are kept in `custom_fields["bant"]`.'
        ),
        tags=["Leads"],
        security=JWT,
        responses=documented_responses(
            {200: ("The lead, and the task qualification created", QualificationResponse)},
            *CHANGE_ERRORS,
        ),
        openapi_extensions=request_model(QualifyLeadRequest),
    )
    def qualify_lead_route(lead_id: str) -> Response[str]:
        event = router.current_event.raw_event
        return lifecycle.qualify_lead(event, lead_id, bootstrap.caller(event))

    return router
