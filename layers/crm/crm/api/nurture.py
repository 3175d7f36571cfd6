"""Nurture sequence routes (`/nurture-sequences`): anyone signed in reads, managers and admins change."""

import re
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from pydantic import ValidationError

from crm import bootstrap
from crm.api.models.lifecycle import etag, expected_version
from crm.api.models.nurture import (
    NurtureSequenceListResponse,
    NurtureSequenceResponse,
    UpdateNurtureSequenceRequest,
)
from crm.api.openapi import request_model
from crm.leads.permissions import require_role
from crm.nurture.sequences import NurtureSequenceInput
from crm.nurture.service import SEQUENCE_EDITORS, invalid_sequence
from crm.platform.auth import Principal
from crm.platform.errors import InvalidInput, NotFound
from crm.platform.http import (
    JWT,
    VERSIONED_CHANGE_ERRORS,
    documented_responses,
    json_response,
    parse_body,
    raw_body,
)
from crm.platform.settings import get_settings

_SEQUENCE_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
_DESCRIPTION = (
    "A sequence: `name`, `active`, `priority` (sequences are tried by ascending priority; the first active "
    "one whose `conditions` all match a lead takes it; no conditions: every nurture lead), `conditions` (the "
    "operators of scoring and assignment rules, on lead fields incl. `score`, `grade`, "
    "`custom_fields.<name>`) and `steps`: `[{delay_hours, template}]`, where step 1's delay counts from "
    "enrollment and each next one from the previous send, and `template` is an SES email template "
    "(`{{first_name}}`, `{{company}}`, `{{unsubscribe_url}}` …). A template SES does not have is `422` "
    "naming the step, e.g. `steps[0].template`. Leads already enrolled keep the steps they were enrolled "
    "with."
)


def _body(event: dict[str, Any]) -> dict[str, Any]:
    return parse_body(event.get("headers") or {}, raw_body(event, get_settings().max_body_bytes))


def _sequence_id(sequence_id: str) -> str:
    if not _SEQUENCE_ID.match(sequence_id):
        raise NotFound(f"No nurture sequence with id {sequence_id}")
    return sequence_id


def _editor(event: dict[str, Any]) -> Principal:
    principal = bootstrap.caller(event)
    require_role(principal, *SEQUENCE_EDITORS)  # before the body is read: a rep gets 403, whatever it sent
    return principal


def _answer(status: int, sequence: Any, location: bool = False) -> Response[str]:
    headers = etag(sequence.version)
    if location:
        headers["Location"] = f"/nurture-sequences/{sequence.id}"
    return json_response(status, NurtureSequenceResponse.from_sequence(sequence), headers=headers)


# ---------------------------------------------------------------- endpoints


def list_sequences(event: dict[str, Any]) -> Response[str]:
    bootstrap.caller(event)
    sequences = bootstrap.nurture_sequence_service().list()
    listed = [NurtureSequenceResponse.from_sequence(s) for s in sequences]
    body = NurtureSequenceListResponse(items=listed, sequences=listed)
    return json_response(HTTPStatus.OK, body)


def get_sequence(event: dict[str, Any], sequence_id: str) -> Response[str]:
    bootstrap.caller(event)
    return _answer(HTTPStatus.OK, bootstrap.nurture_sequence_service().get(_sequence_id(sequence_id)))


def create_sequence(event: dict[str, Any]) -> Response[str]:
    principal = _editor(event)
    try:
        definition = NurtureSequenceInput.model_validate(_body(event))
    except ValidationError as exc:
        raise invalid_sequence(exc) from None
    sequence = bootstrap.nurture_sequence_service().create(definition, principal)
    return _answer(HTTPStatus.CREATED, sequence, location=True)


def update_sequence(event: dict[str, Any], sequence_id: str) -> Response[str]:
    principal = _editor(event)
    sequence_id = _sequence_id(sequence_id)
    try:
        request = UpdateNurtureSequenceRequest.model_validate(_body(event))
    except ValidationError as exc:
        raise invalid_sequence(exc) from None
    version = expected_version(event.get("headers") or {}, request.version)
    if not request.changes():
        raise InvalidInput.single("body", "name at least one field to change")
    sequence = bootstrap.nurture_sequence_service().update(sequence_id, request.changes(), version, principal)
    return _answer(HTTPStatus.OK, sequence)


def delete_sequence(event: dict[str, Any], sequence_id: str) -> Response[str]:
    principal = _editor(event)
    headers = event.get("headers") or {}
    # Optional on delete: with If-Match, only the version read is deleted.
    if_match = next((v for k, v in headers.items() if k.lower() == "if-match"), "")
    version = expected_version(headers, None) if if_match.strip() else None
    bootstrap.nurture_sequence_service().delete(_sequence_id(sequence_id), version, principal)
    return Response(status_code=HTTPStatus.NO_CONTENT, body="")


# ---------------------------------------------------------------- routes


def build_router() -> Router:
    router = Router()

    def event() -> dict[str, Any]:
        raw: dict[str, Any] = router.current_event.raw_event
        return raw

    @router.get(
        "/nurture-sequences",
        summary="Every nurture sequence, in the order they are tried",
        tags=["Nurture"],
        security=JWT,
        responses=documented_responses({200: ("The sequences", NurtureSequenceListResponse)}, 401, 503),
    )
    def list_sequences_route() -> Response[str]:
        return list_sequences(event())

    @router.post(
        "/nurture-sequences",
        summary="Add a nurture sequence (manager, admin)",
        description=_DESCRIPTION,
        tags=["Nurture"],
        security=JWT,
        responses=documented_responses(
            {201: ("The new sequence (ETag: its version)", NurtureSequenceResponse)},
            400,
            401,
            403,
            413,
            415,
            422,
            503,
        ),
        openapi_extensions=request_model(NurtureSequenceInput),
    )
    def create_sequence_route() -> Response[str]:
        return create_sequence(event())

    @router.get(
        "/nurture-sequences/<sequence_id>",
        summary="One nurture sequence",
        description="The `ETag` header carries the version to send back as `If-Match` when changing it.",
        tags=["Nurture"],
        security=JWT,
        responses=documented_responses({200: ("The sequence", NurtureSequenceResponse)}, 401, 404, 503),
    )
    def get_sequence_route(sequence_id: str) -> Response[str]:
        return get_sequence(event(), sequence_id)

    @router.patch(
        "/nurture-sequences/<sequence_id>",
        summary="Change a nurture sequence (manager, admin)",
        description=(
            "Only the fields sent change (`steps` and `conditions` are replaced whole). Send the version you "
            'read as `If-Match: "3"` or `version`: stale is 409, missing is 428. Leads already enrolled keep '
            "the steps they were enrolled with; `active: false` stops new enrollments."
        ),
        tags=["Nurture"],
        security=JWT,
        responses=documented_responses(
            {200: ("The sequence as stored (ETag: its version)", NurtureSequenceResponse)},
            *VERSIONED_CHANGE_ERRORS,
        ),
        openapi_extensions=request_model(UpdateNurtureSequenceRequest),
    )
    def update_sequence_route(sequence_id: str) -> Response[str]:
        return update_sequence(event(), sequence_id)

    @router.delete(
        "/nurture-sequences/<sequence_id>",
        summary="Delete a nurture sequence (manager, admin)",
        description=(
            "`If-Match` (optional) makes the delete conditional on the version read. Leads in the sequence "
            "leave it when their next step comes due (`nurture_stopped`, reason `sequence_deleted`)."
        ),
        tags=["Nurture"],
        security=JWT,
        responses=documented_responses({204: ("Deleted", None)}, 401, 403, 404, 409, 422, 503),
        openapi_extensions={"x-if-match": True},
    )
    def delete_sequence_route(sequence_id: str) -> Response[str]:
        return delete_sequence(event(), sequence_id)

    return router
