"""A person's data on request (admins only): `POST /privacy/erasures`, `GET /privacy/erasures/{id}`,
`GET /privacy/export?email=`. Jobs name the person by the keyed hash of the email; exports carry the data."""

from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router

from crm import bootstrap
from crm.api.models.privacy import (
    ErasureAccepted,
    ErasureJobResponse,
    ErasureRequest,
    ExportQuery,
    ExportResponse,
)
from crm.api.openapi import query_model, request_model
from crm.leads.permissions import require_role
from crm.platform.auth import Principal, Role
from crm.platform.errors import InvalidInput, NotFound
from crm.platform.http import JWT, documented_responses, json_response, model_from, parse_body, raw_body
from crm.platform.ids import RECORD_ID
from crm.platform.settings import get_settings


def _admin(event: dict[str, Any]) -> Principal:
    principal = bootstrap.caller(event)
    require_role(principal, Role.ADMIN)  # before the body is read
    return principal


def request_erasure(event: dict[str, Any]) -> Response[str]:
    principal = _admin(event)
    body = parse_body(event.get("headers") or {}, raw_body(event, get_settings().max_body_bytes))
    request: ErasureRequest = model_from(ErasureRequest, body)
    if request.email in request.reason.lower():  # the job keeps the reason, never the address it erases
        raise InvalidInput.single("reason", "must not contain the email address")
    job = bootstrap.privacy_service().request_erasure(
        request.email, request.reason, request.include_converted, principal
    )
    return json_response(
        HTTPStatus.ACCEPTED,
        ErasureAccepted(id=job.id, state=job.state.value),
        headers={"Location": f"/privacy/erasures/{job.id}"},
    )


def get_erasure(event: dict[str, Any], job_id: str) -> Response[str]:
    _admin(event)
    if not RECORD_ID.match(job_id):
        raise NotFound(f"No erasure {job_id}")
    return json_response(
        HTTPStatus.OK, ErasureJobResponse.from_job(bootstrap.privacy_service().get_job(job_id))
    )


def export(event: dict[str, Any]) -> Response[str]:
    principal = _admin(event)
    query: ExportQuery = model_from(ExportQuery, dict(event.get("queryStringParameters") or {}))
    data = bootstrap.privacy_service().export(query.email, principal)
    return json_response(HTTPStatus.OK, ExportResponse.model_validate(data))


def build_router() -> Router:
    router = Router()

    def event() -> dict[str, Any]:
        raw: dict[str, Any] = router.current_event.raw_event
        return raw

    @router.post(
        "/privacy/erasures",
        summary="Erase a person: every lead with this email, everywhere (admin)",
        description=(
            "Answers `202` with the job (`state: queued`); `GET /privacy/erasures/{id}` follows it. An email "
            "that matches no one is accepted too and completes with `leads_erased: 0`. The person is then "
            "suppressed: no nurture email reaches them again unless they submit a public form anew with "
            "consent. A second request while the first runs answers with the running job."
        ),
        tags=["Privacy"],
        security=JWT,
        responses=documented_responses(
            {202: ("The erasure job, queued", ErasureAccepted)}, 400, 401, 403, 413, 415, 422, 503
        ),
        openapi_extensions=request_model(ErasureRequest),
    )
    def request_erasure_route() -> Response[str]:
        return request_erasure(event())

    @router.get(
        "/privacy/erasures/<job_id>",
        summary="An erasure job: state and counts by kind (admin)",
        tags=["Privacy"],
        security=JWT,
        responses=documented_responses({200: ("The job", ErasureJobResponse)}, 401, 403, 404, 503),
    )
    def get_erasure_route(job_id: str) -> Response[str]:
        return get_erasure(event(), job_id)

    @router.get(
        "/privacy/export",
        summary="Everything held about a person, by email, grouped by kind (admin)",
        description="An unknown email answers an empty export (never 404). Each export is audited.",
        tags=["Privacy"],
        security=JWT,
        responses=documented_responses({200: ("The export", ExportResponse)}, 401, 403, 422, 503),
        openapi_extensions=query_model(ExportQuery),
    )
    def export_route() -> Response[str]:
        return export(event())

    return router
