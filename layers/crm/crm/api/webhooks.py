"""Outbound webhook subscription routes (`/webhook-subscriptions`): admins only."""

import re
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router

from crm import bootstrap
from crm.api.models.webhooks import (
    CreatedWebhookSubscriptionResponse,
    CreateWebhookSubscriptionRequest,
    UpdateWebhookSubscriptionRequest,
    WebhookDeliveryAttemptResponse,
    WebhookDeliveryListResponse,
    WebhookSubscriptionListResponse,
    WebhookSubscriptionResponse,
    WebhookTestResponse,
)
from crm.api.openapi import request_model
from crm.integrations.webhooks import SubscriptionState
from crm.leads.permissions import require_role
from crm.platform.auth import Principal, Role
from crm.platform.errors import NotFound
from crm.platform.http import (
    CHANGE_ERRORS,
    JWT,
    documented_responses,
    json_response,
    model_from,
    parse_body,
    raw_body,
)
from crm.platform.settings import get_settings

_ID = re.compile(r"^[0-9A-Za-z_-]{1,64}$")
_READ_ERRORS = (401, 403, 404, 503)


def _admin(event: dict[str, Any]) -> Principal:
    principal = bootstrap.caller(event)
    require_role(principal, Role.ADMIN)  # before the body is read: others get 403, whatever they sent
    return principal


def _id(subscription_id: str) -> str:
    if not _ID.match(subscription_id):
        raise NotFound(f"No webhook subscription with id {subscription_id}")
    return subscription_id


def _body(event: dict[str, Any]) -> dict[str, Any]:
    return parse_body(event.get("headers") or {}, raw_body(event, get_settings().max_body_bytes))


def build_router() -> Router:
    router = Router()

    def event() -> dict[str, Any]:
        raw: dict[str, Any] = router.current_event.raw_event
        return raw

    @router.post(
        "/webhook-subscriptions",
        summary="Subscribe a URL to domain events (admin)",
        description="Deliveries are POSTed as JSON (the event as the EventBridge bus has it), signed with "
        '`X-Signature: t=<unix>,v1=<HMAC-SHA256 of "{t}.{body}">` with the secret returned here once, and '
        "carry `X-Event-Id` (drop ids you have seen: delivery is at least once). Timeouts, 5xx and 429 are "
        "retried with backoff for 24 h (honouring `Retry-After`).",
        tags=["Webhooks"],
        security=JWT,
        responses=documented_responses(
            {201: ("The subscription, with its secret (shown once)", CreatedWebhookSubscriptionResponse)},
            *CHANGE_ERRORS,
        ),
        openapi_extensions=request_model(CreateWebhookSubscriptionRequest),
    )
    def create_route() -> Response[str]:
        principal = _admin(event())
        request = model_from(CreateWebhookSubscriptionRequest, _body(event()))
        subscription = bootstrap.webhook_service().create(
            request.url, request.events, request.description, principal.actor, principal.email
        )
        return json_response(
            HTTPStatus.CREATED,
            CreatedWebhookSubscriptionResponse.created(subscription),
            headers={"Location": f"/webhook-subscriptions/{subscription.id}"},
        )

    @router.get(
        "/webhook-subscriptions",
        summary="Webhook subscriptions (admin)",
        tags=["Webhooks"],
        security=JWT,
        responses=documented_responses(
            {200: ("The subscriptions", WebhookSubscriptionListResponse)}, 401, 403, 503
        ),
    )
    def list_route() -> Response[str]:
        _admin(event())
        items = [WebhookSubscriptionResponse.of(s) for s in bootstrap.webhook_service().subscriptions()]
        return json_response(HTTPStatus.OK, WebhookSubscriptionListResponse(items=items))

    @router.get(
        "/webhook-subscriptions/<subscription_id>",
        summary="A webhook subscription (admin)",
        tags=["Webhooks"],
        security=JWT,
        responses=documented_responses(
            {200: ("The subscription", WebhookSubscriptionResponse)}, *_READ_ERRORS
        ),
    )
    def get_route(subscription_id: str) -> Response[str]:
        _admin(event())
        subscription = bootstrap.webhook_service().get(_id(subscription_id))
        return json_response(HTTPStatus.OK, WebhookSubscriptionResponse.of(subscription))

    @router.patch(
        "/webhook-subscriptions/<subscription_id>",
        summary="Pause or resume a subscription, or change its events, URL or description (admin)",
        tags=["Webhooks"],
        security=JWT,
        responses=documented_responses(
            {200: ("The subscription", WebhookSubscriptionResponse)}, *CHANGE_ERRORS
        ),
        openapi_extensions=request_model(UpdateWebhookSubscriptionRequest),
    )
    def update_route(subscription_id: str) -> Response[str]:
        _admin(event())
        request = model_from(UpdateWebhookSubscriptionRequest, _body(event()))
        subscription = bootstrap.webhook_service().update(
            _id(subscription_id),
            state=SubscriptionState(request.state) if request.state else None,
            events=request.events,
            description=request.description,
            url=request.url,
        )
        return json_response(HTTPStatus.OK, WebhookSubscriptionResponse.of(subscription))

    @router.delete(
        "/webhook-subscriptions/<subscription_id>",
        summary="Delete a subscription: nothing more is sent to it (admin)",
        tags=["Webhooks"],
        security=JWT,
        responses=documented_responses({204: ("Deleted", None)}, *_READ_ERRORS),
    )
    def delete_route(subscription_id: str) -> Response[str]:
        _admin(event())
        bootstrap.webhook_service().delete(_id(subscription_id))
        return Response(status_code=HTTPStatus.NO_CONTENT, body="")

    @router.post(
        "/webhook-subscriptions/<subscription_id>/test",
        summary="Send a signed `ping` to the subscription's URL now and say how it answered (admin)",
        tags=["Webhooks"],
        security=JWT,
        responses=documented_responses(
            {200: ("How the receiver answered", WebhookTestResponse)}, *_READ_ERRORS
        ),
    )
    def test_route(subscription_id: str) -> Response[str]:
        _admin(event())
        attempt = bootstrap.webhook_service().test(_id(subscription_id))
        return json_response(HTTPStatus.OK, WebhookTestResponse.of(attempt))

    @router.get(
        "/webhook-subscriptions/<subscription_id>/deliveries",
        summary="Recent delivery attempts, newest first: state, HTTP status, latency (admin)",
        tags=["Webhooks"],
        security=JWT,
        responses=documented_responses({200: ("The attempts", WebhookDeliveryListResponse)}, *_READ_ERRORS),
    )
    def deliveries_route(subscription_id: str) -> Response[str]:
        _admin(event())
        attempts = bootstrap.webhook_service().deliveries(_id(subscription_id))
        items = [WebhookDeliveryAttemptResponse.model_validate(attempt) for attempt in attempts]
        return json_response(HTTPStatus.OK, WebhookDeliveryListResponse(items=items))

    return router
