"""Dashboards for managers and admins: the funnel, lead sources and speed to lead."""

from http import HTTPStatus

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router

from crm import bootstrap
from crm.api.models.queries import (
    AnalyticsRangeParams,
    FunnelParams,
    FunnelResponse,
    SourcesResponse,
    SpeedResponse,
)
from crm.api.openapi import query_model
from crm.platform.http import JWT, documented_responses, json_response, model_from

RANGE = (
    "`from`/`to`: capture days (UTC, YYYY-MM-DD, both included; default the last 30 days, at most 366). "
    "Read from counters kept by the table's stream: a handful of items, whatever the number of leads. "
    "Managers and admins only."
)


def build_router() -> Router:
    router = Router()

    @router.get(
        "/analytics/funnel",
        summary="Leads per status, qualification and conversion rates, for leads captured in a range",
        description=f"{RANGE} `group_by`: source, owner, team or day.",
        tags=["Analytics"],
        security=JWT,
        responses=documented_responses({200: ("The funnel", FunnelResponse)}, 401, 403, 422, 503),
        openapi_extensions=query_model(FunnelParams),
    )
    def funnel_route() -> Response[str]:
        event = router.current_event.raw_event
        principal = bootstrap.caller(event)
        params: FunnelParams = model_from(FunnelParams, dict(event.get("queryStringParameters") or {}))
        start, end = params.days()
        report = bootstrap.analytics_service().funnel(principal, start, end, params.group_by)
        return json_response(HTTPStatus.OK, FunnelResponse.from_report(report))

    @router.get(
        "/analytics/speed-to-lead",
        summary="Median and p90 time from capture to first contact, overall and per rep",
        description=f"{RANGE} First contact: the status leaving `new` (a chat is a contact at capture). "
        "Figures come from 10%-wide histogram buckets: within 5% of the exact value.",
        tags=["Analytics"],
        security=JWT,
        responses=documented_responses({200: ("Speed to lead", SpeedResponse)}, 401, 403, 422, 503),
        openapi_extensions=query_model(AnalyticsRangeParams),
    )
    def speed_route() -> Response[str]:
        event = router.current_event.raw_event
        principal = bootstrap.caller(event)
        params: AnalyticsRangeParams = model_from(
            AnalyticsRangeParams, dict(event.get("queryStringParameters") or {})
        )
        start, end = params.days()
        report = bootstrap.analytics_service().speed(principal, start, end)
        return json_response(HTTPStatus.OK, SpeedResponse.from_report(report))

    @router.get(
        "/analytics/sources",
        summary="Leads, qualified, converted and conversion rate per source",
        description=RANGE,
        tags=["Analytics"],
        security=JWT,
        responses=documented_responses({200: ("Figures per source", SourcesResponse)}, 401, 403, 422, 503),
        openapi_extensions=query_model(AnalyticsRangeParams),
    )
    def sources_route() -> Response[str]:
        event = router.current_event.raw_event
        principal = bootstrap.caller(event)
        params: AnalyticsRangeParams = model_from(
            AnalyticsRangeParams, dict(event.get("queryStringParameters") or {})
        )
        start, end = params.days()
        figures = bootstrap.analytics_service().sources(principal, start, end)
        return json_response(HTTPStatus.OK, SourcesResponse.from_figures(start, end, figures))

    return router
