"""Reading leads through the authenticated API."""

import re
from functools import cache
from http import HTTPStatus

from aws_lambda_powertools.event_handler import Response

from crm.api_models import ActivityResponse, LeadDetailResponse, LeadResponse
from crm.auth import Principal
from crm.errors import NotFound
from crm.http import json_response
from crm.repository import LeadRepository
from crm.settings import get_settings

_LEAD_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


@cache
def lead_repository() -> LeadRepository:
    settings = get_settings()
    return LeadRepository(settings.table_name, shards=settings.index_shards)


def get_lead(lead_id: str, principal: Principal) -> Response[str]:
    found = lead_repository().get_with_activities(lead_id) if _LEAD_ID.match(lead_id) else None
    if found is None:
        raise NotFound(f"No lead with id {lead_id}")
    lead, activities = found
    detail = LeadDetailResponse(
        **LeadResponse.from_lead(lead).model_dump(),
        activities=[ActivityResponse.from_activity(activity) for activity in activities],
    )
    return json_response(HTTPStatus.OK, detail)
