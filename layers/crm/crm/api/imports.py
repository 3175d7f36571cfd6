"""CSV imports (managers and admins): `POST /imports`, `GET /imports`, `GET /imports/{id}`."""

from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router

from crm import bootstrap
from crm.api.models.imports import (
    ImportCreated,
    ImportListParams,
    ImportPageResponse,
    ImportRequest,
    ImportResponse,
)
from crm.api.openapi import query_model, request_model
from crm.imports.model import ImportJob
from crm.leads.permissions import require_role
from crm.platform.auth import Principal, Role
from crm.platform.http import JWT, documented_responses, json_response, model_from, parse_body, raw_body
from crm.platform.settings import get_settings

REQUEST_DESCRIPTION = """\
Answers `201` with the import (`state: waiting_for_upload`), a presigned S3 `upload_url` and when it
expires: `PUT` the CSV file there (plain HTTP, the bytes as the body). The upload starts the import;
`GET /imports/{id}` follows it (`running`, then `completed` or `failed`) with its counts.

The file is UTF-8 (a byte-order mark is fine), comma-separated, with a header row. Header names match the
lead's fields case- and space-insensitively (`First Name`, `first_name`, `EMAIL`): `first_name`,
`last_name` and `email` are required; `phone`, `company`, `title`, `industry`, `employee_count`,
`annual_revenue`, `lead_source`, `marketing_consent` are optional; every other column is kept as a custom
field under its header. Each row goes through the same rules and capture as `POST /leads`: an email that is
already a lead's merges into that lead (`merged`), a row that breaks a rule is `rejected` with the field
named (the rejects file). `lead_source` comes from its column, else `default_source`. Reps may not import."""


def _importer(event: dict[str, Any]) -> Principal:
    principal = bootstrap.caller(event)
    require_role(principal, Role.MANAGER, Role.ADMIN)  # before the body is read
    return principal


def _answer(job: ImportJob) -> ImportResponse:
    return ImportResponse.from_job(job, bootstrap.import_service().rejects_link(job))


def request_import(event: dict[str, Any]) -> Response[str]:
    principal = _importer(event)
    body = parse_body(event.get("headers") or {}, raw_body(event, get_settings().max_body_bytes))
    request: ImportRequest = model_from(ImportRequest, body)
    job, link = bootstrap.import_service().request(principal, request.filename, request.default_source)
    return json_response(
        HTTPStatus.CREATED,
        ImportCreated(id=job.id, state=job.state.value, upload_url=link.url, expires_at=link.expires_at),
        headers={"Location": f"/imports/{job.id}"},
    )


def get_import(event: dict[str, Any], import_id: str) -> Response[str]:
    principal = _importer(event)
    return json_response(HTTPStatus.OK, _answer(bootstrap.import_service().get(principal, import_id)))


def list_imports(event: dict[str, Any]) -> Response[str]:
    principal = _importer(event)
    params: ImportListParams = model_from(ImportListParams, dict(event.get("queryStringParameters") or {}))
    page = bootstrap.import_service().list(principal, params.limit, params.cursor)
    return json_response(
        HTTPStatus.OK,
        ImportPageResponse(items=[_answer(job) for job in page.jobs], next_cursor=page.next_cursor),
    )


def build_router() -> Router:
    router = Router()

    def event() -> dict[str, Any]:
        raw: dict[str, Any] = router.current_event.raw_event
        return raw

    @router.post(
        "/imports",
        summary="Import leads from a CSV file: an upload link, then the import runs (manager, admin)",
        description=REQUEST_DESCRIPTION,
        tags=["Imports"],
        security=JWT,
        responses=documented_responses(
            {201: ("The import, waiting for its upload", ImportCreated)}, 400, 401, 403, 413, 415, 422, 503
        ),
        openapi_extensions=request_model(ImportRequest),
    )
    def request_import_route() -> Response[str]:
        return request_import(event())

    @router.get(
        "/imports",
        summary="The caller's imports (an admin: everyone's), newest first (manager, admin)",
        description="`limit` (1-100, default 25) and `cursor` (the previous page's `next_cursor`).",
        tags=["Imports"],
        security=JWT,
        responses=documented_responses(
            {200: ("A page of imports", ImportPageResponse)}, 400, 401, 403, 422, 503
        ),
        openapi_extensions=query_model(ImportListParams),
    )
    def list_imports_route() -> Response[str]:
        return list_imports(event())

    @router.get(
        "/imports/<import_id>",
        summary="An import: state, counts and, when it has rejected rows, their file (its requester, admins)",
        description="Another manager's import answers 404.",
        tags=["Imports"],
        security=JWT,
        responses=documented_responses({200: ("The import", ImportResponse)}, 401, 403, 404, 503),
    )
    def get_import_route(import_id: str) -> Response[str]:
        return get_import(event(), import_id)

    return router
