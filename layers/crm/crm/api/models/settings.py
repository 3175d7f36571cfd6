"""HTTP models of the routing settings: the sales threshold managers change through the API."""

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from crm.api.models.scoring import RescoreJobLink
from crm.leads.model import UtcDatetime
from crm.leads.routing_settings import MAX_THRESHOLD, RoutingSettings
from crm.platform.fields import StrictInteger


class RoutingSettingsRequest(BaseModel):
    """PUT: the new threshold; the version read goes here or in `If-Match`."""

    model_config = ConfigDict(extra="forbid")

    sales_threshold: StrictInteger = Field(ge=0, le=MAX_THRESHOLD)
    reroute_nurture: StrictBool = Field(
        default=False,
        description="true: route every lead now in nurture again at the new threshold (a job with progress); "
        "false: leads already in nurture stay there until their next change",
    )
    version: StrictInteger | None = Field(default=None, ge=1)


class RoutingSettingsResponse(BaseModel):
    sales_threshold: int = Field(description="Scored leads at or above it go to a rep, the others to nurture")
    version: int
    updated_at: UtcDatetime | None = Field(description="null: never saved; the deploy parameter's value")
    updated_by: str | None
    reroute_job: RescoreJobLink | None = None

    @classmethod
    def from_settings(
        cls, settings: RoutingSettings, reroute_job: str | None = None
    ) -> "RoutingSettingsResponse":
        return cls(
            sales_threshold=settings.sales_threshold,
            version=settings.version,
            updated_at=settings.updated_at,
            updated_by=settings.updated_by,
            reroute_job=RescoreJobLink.for_job(reroute_job) if reroute_job else None,
        )
