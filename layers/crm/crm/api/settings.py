"""Settings routes: the routing settings (the sales threshold), manager or admin, versioned."""

from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router

from crm import bootstrap
from crm.api.models.lifecycle import etag, expected_version
from crm.api.models.settings import RoutingSettingsRequest, RoutingSettingsResponse
from crm.api.openapi import request_model
from crm.leads.permissions import require_role
from crm.platform.auth import Principal, Role
from crm.platform.http import (
    JWT,
    VERSIONED_CHANGE_ERRORS,
    documented_responses,
    json_response,
    model_from,
    parse_body,
    raw_body,
)
from crm.platform.settings import get_settings

_EDITORS = (Role.MANAGER, Role.ADMIN)


def get_routing_settings(principal: Principal) -> Response[str]:
    require_role(principal, *_EDITORS)
    settings = bootstrap.routing_settings_service().current()
    return json_response(
        HTTPStatus.OK, RoutingSettingsResponse.from_settings(settings), headers=etag(settings.version)
    )


def put_routing_settings(event: dict[str, Any], principal: Principal) -> Response[str]:
    require_role(principal, *_EDITORS)
    headers = event.get("headers") or {}
    request = model_from(
        RoutingSettingsRequest, parse_body(headers, raw_body(event, get_settings().max_body_bytes))
    )
    version = expected_version(headers, request.version)
    settings = bootstrap.routing_settings_service().replace(request.sales_threshold, version, principal.actor)
    job_id = None
    if request.reroute_nurture:
        job_id = bootstrap.rescore_service().start_reroute_job(settings.version, principal.actor).job_id
    return json_response(
        HTTPStatus.OK, RoutingSettingsResponse.from_settings(settings, job_id), headers=etag(settings.version)
    )


def build_router() -> Router:
    router = Router()

    def event() -> dict[str, Any]:
        raw: dict[str, Any] = router.current_event.raw_event
        return raw

    def caller() -> Principal:
        return bootstrap.caller(event())

    @router.get(
        "/settings/routing",
        summary="The routing settings: the sales threshold (manager or admin)",
        description="The `ETag` header carries the version to send back as `If-Match` when changing it. "
        "Until first saved, the threshold is the deploy parameter's (version 1).",
        tags=["Settings"],
        security=JWT,
        responses=documented_responses({200: ("The settings", RoutingSettingsResponse)}, 401, 403, 503),
    )
    def get_routing_settings_route() -> Response[str]:
        return get_routing_settings(caller())

    @router.put(
        "/settings/routing",
        summary="Change the sales threshold (manager or admin)",
        description="Optimistic locking: the version read (`If-Match` or `version`); stale 409, missing 428. "
        "Routing uses the new value within 30 seconds. Leads already in nurture stay there unless "
        "`reroute_nurture` is true: then a job routes them again (progress: `reroute_job.status_url`).",
        tags=["Settings"],
        security=JWT,
        responses=documented_responses(
            {200: ("The settings saved, and the re-routing job if asked for", RoutingSettingsResponse)},
            *VERSIONED_CHANGE_ERRORS,
        ),
        openapi_extensions=request_model(RoutingSettingsRequest),
    )
    def put_routing_settings_route() -> Response[str]:
        return put_routing_settings(event(), caller())

    return router
