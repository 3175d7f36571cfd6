"""CSV exports of leads (managers and admins): `POST /exports`, `GET /exports`, `GET /exports/{id}`."""

from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router

from crm import bootstrap
from crm.api.models.exports import (
    ExportAccepted,
    ExportListParams,
    ExportPageResponse,
    ExportRequest,
    ExportResponse,
)
from crm.api.openapi import query_model, request_model
from crm.exports.model import ExportJob
from crm.leads.permissions import require_role
from crm.platform.auth import Principal, Role
from crm.platform.http import JWT, documented_responses, json_response, model_from, parse_body, raw_body
from crm.platform.settings import get_settings

REQUEST_DESCRIPTION = """\
Exports, as one CSV file, every lead `GET /leads` would list for the caller with the same filters (a
manager: their teams' and unrouted leads; an admin: all), in the list's order. The body is a JSON object of
the list's filters (`status`, `owner`, `source`, `grade`, `min_score`/`max_score`, `qualified`,
`converted`, `created_from`/`created_to`, `sort`, `order`, or `q` alone); `{}` or no body exports every lead
the caller may list. A combination the list refuses is refused here too (400 naming the parameters).

Answers `202` with the job (`state: queued`) and its address in `Location`; `GET /exports/{id}` follows it
and, once `completed`, gives a presigned `download_url`. The file is UTF-8 with a byte-order mark, one row
per lead, in a fixed column order (docs/api.md#csv-exports); text that starts with `=`, `+`, `-` or `@` is
written with a leading `'` so spreadsheets do not run it as a formula. Files are kept 7 days. Reps may not
export."""


def _exporter(event: dict[str, Any]) -> Principal:
    principal = bootstrap.caller(event)
    require_role(principal, Role.MANAGER, Role.ADMIN)  # before the body is read
    return principal


def _answer(job: ExportJob) -> ExportResponse:
    service = bootstrap.export_service()
    return ExportResponse.from_job(job, service.download_link(job))


def request_export(event: dict[str, Any]) -> Response[str]:
    principal = _exporter(event)
    data = raw_body(event, get_settings().max_body_bytes)
    body = parse_body(event.get("headers") or {}, data) if data.strip() else {}
    request: ExportRequest = model_from(ExportRequest, body)
    job = bootstrap.export_service().request(
        principal, request.to_filters(), request.list_parameters_sent() if request.q is not None else []
    )
    return json_response(
        HTTPStatus.ACCEPTED,
        ExportAccepted(id=job.id, state=job.state.value),
        headers={"Location": f"/exports/{job.id}"},
    )


def get_export(event: dict[str, Any], export_id: str) -> Response[str]:
    principal = _exporter(event)
    return json_response(HTTPStatus.OK, _answer(bootstrap.export_service().get(principal, export_id)))


def list_exports(event: dict[str, Any]) -> Response[str]:
    principal = _exporter(event)
    params: ExportListParams = model_from(ExportListParams, dict(event.get("queryStringParameters") or {}))
    page = bootstrap.export_service().list(principal, params.limit, params.cursor)
    return json_response(
        HTTPStatus.OK,
        ExportPageResponse(items=[_answer(job) for job in page.jobs], next_cursor=page.next_cursor),
    )


def build_router() -> Router:
    router = Router()

    def event() -> dict[str, Any]:
        raw: dict[str, Any] = router.current_event.raw_event
        return raw

    @router.post(
        "/exports",
        summary="Export the leads the caller may list, with the list's filters, as CSV (manager, admin)",
        description=REQUEST_DESCRIPTION,
        tags=["Exports"],
        security=JWT,
        responses=documented_responses(
            {202: ("The export job, queued", ExportAccepted)}, 400, 401, 403, 413, 415, 422, 503
        ),
        openapi_extensions=request_model(ExportRequest),
    )
    def request_export_route() -> Response[str]:
        return request_export(event())

    @router.get(
        "/exports",
        summary="The caller's exports (an admin: everyone's), newest first (manager, admin)",
        description="`limit` (1-100, default 25) and `cursor` (the previous page's `next_cursor`).",
        tags=["Exports"],
        security=JWT,
        responses=documented_responses(
            {200: ("A page of exports", ExportPageResponse)}, 400, 401, 403, 422, 503
        ),
        openapi_extensions=query_model(ExportListParams),
    )
    def list_exports_route() -> Response[str]:
        return list_exports(event())

    @router.get(
        "/exports/<export_id>",
        summary="An export: state, rows written and, when completed, a download link (its requester, admins)",
        description="Another manager's export answers 404.",
        tags=["Exports"],
        security=JWT,
        responses=documented_responses({200: ("The export", ExportResponse)}, 401, 403, 404, 503),
    )
    def get_export_route(export_id: str) -> Response[str]:
        return get_export(event(), export_id)

    return router
