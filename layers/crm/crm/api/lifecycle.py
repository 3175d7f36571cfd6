"""Lead edits and qualification (`PATCH /leads/{id}`, `POST /leads/{id}/qualify`), served by the leads API
function: read and check the request, call LifecycleService, answer."""

from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import Response

from crm import bootstrap
from crm.api.models.leads import LeadResponse
from crm.api.models.lifecycle import (
    QualificationResponse,
    QualifyLeadRequest,
    TaskResponse,
    UpdateLeadRequest,
    etag,
    expected_version,
)
from crm.platform.auth import Principal
from crm.platform.errors import NotFound
from crm.platform.http import json_response, model_from, parse_body, raw_body
from crm.platform.ids import RECORD_ID
from crm.platform.observability import logger
from crm.platform.settings import get_settings


def checked_id(value: str, what: str) -> str:
    """Ids are UUIDs: anything else cannot exist, so it is a 404 without a read."""
    if not RECORD_ID.match(value):
        raise NotFound(f"No {what} with id {value}")
    return value


def json_body(event: dict[str, Any]) -> dict[str, Any]:
    data = raw_body(event, get_settings().max_body_bytes)
    return parse_body(event.get("headers") or {}, data)


def update_lead(event: dict[str, Any], lead_id: str, principal: Principal) -> Response[str]:
    checked_id(lead_id, "lead")
    request: UpdateLeadRequest = model_from(UpdateLeadRequest, json_body(event))
    version = expected_version(event.get("headers") or {}, request.version)
    lead = bootstrap.lifecycle_service().update(lead_id, request.to_changes(), version, principal)
    logger.info("Lead updated", extra={"lead_id": lead.id, "version": lead.version})
    return json_response(HTTPStatus.OK, LeadResponse.from_lead(lead), headers=etag(lead.version))


def qualify_lead(event: dict[str, Any], lead_id: str, principal: Principal) -> Response[str]:
    checked_id(lead_id, "lead")
    request: QualifyLeadRequest = model_from(QualifyLeadRequest, json_body(event))
    result = bootstrap.lifecycle_service().qualify(lead_id, request.to_answers(), principal)
    logger.info(
        "Lead qualification recorded",
        extra={
            "lead_id": lead_id,
            "status": result.lead.lead_status.value,
            "task_id": getattr(result.task, "id", None),
        },
    )
    body = QualificationResponse(
        lead=LeadResponse.from_lead(result.lead),
        task=TaskResponse.from_task(result.task) if result.task else None,
    )
    return json_response(HTTPStatus.OK, body, headers=etag(result.lead.version))
