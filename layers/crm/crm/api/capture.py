"""Public capture routes: read and check the request, call CaptureService, answer with the id only."""

import dataclasses
import re
import time
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.utilities.typing import LambdaContext

from crm import bootstrap
from crm.api.models.leads import CaptureResponse, ChatCaptureRequest, LeadFields, PublicCaptureResponse
from crm.api.openapi import request_model
from crm.capture.partner_secrets import partner_secrets
from crm.capture.service import CaptureResult
from crm.capture.webhooks import PARTNER_NAME, verify_signature
from crm.leads.model import Channel
from crm.platform import captcha, idempotency
from crm.platform.errors import InvalidInput, Unauthorized
from crm.platform.http import documented_responses, model_from, parse_body, parse_json_object, raw_body
from crm.platform.ids import new_id
from crm.platform.observability import logger, metrics
from crm.platform.settings import get_settings

_LEAD_FIELD_NAMES = frozenset(LeadFields.model_fields) - {"lead_source", "custom_fields"}
_REDIRECT_FIELD = "redirect"
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _header(event: dict[str, Any], name: str) -> str | None:
    wanted = name.lower()
    return next((v for k, v in (event.get("headers") or {}).items() if k.lower() == wanted), None)


def _source_ip(event: dict[str, Any]) -> str | None:
    source: str | None = ((event.get("requestContext") or {}).get("http") or {}).get("sourceIp")
    return source


def _answer(produced: dict[str, Any]) -> Response[str]:
    return Response(
        status_code=produced["status"],
        content_type=content_types.APPLICATION_JSON,
        body=produced["body"],
        headers=produced.get("headers"),
    )


def respond_once(
    event: dict[str, Any], scope: str, body: bytes, context: LambdaContext | None, produce: Any
) -> Response[str]:
    """Honour an Idempotency-Key header when present; without one a new lead costs one DynamoDB call."""
    key = idempotency.validated_key(_header(event, "Idempotency-Key"))
    produced = produce() if key is None else idempotency.once_per_key(key, scope, body, context, produce)
    return _answer(produced)


def record_capture(result: CaptureResult, channel: Channel) -> None:
    metrics.add_dimension(name="channel", value=channel.value)
    metrics.add_metric(name="LeadsCaptured" if result.created else "LeadsMerged", unit="Count", value=1)
    logger.info(
        "Lead captured" if result.created else "Submission merged into existing lead",
        extra={"lead_id": result.lead_id, "channel": channel.value},
    )


def _public_answer(lead_id: str, redirect: str | None = None) -> dict[str, Any]:
    """The same for a new and a known email (and for a bot caught by the honeypot)."""
    body = PublicCaptureResponse(id=lead_id).model_dump_json()
    if redirect:
        return {"status": HTTPStatus.SEE_OTHER, "body": body, "headers": {"Location": redirect}}
    return {"status": HTTPStatus.CREATED, "body": body}


def _partner_answer(result: CaptureResult) -> dict[str, Any]:
    status = HTTPStatus.CREATED if result.created else HTTPStatus.OK
    return {
        "status": status,
        "body": CaptureResponse(id=result.lead_id, created=result.created).model_dump_json(),
    }


def _split_known_fields(data: dict[str, Any]) -> dict[str, Any]:
    """Website forms and partners send extra fields (utm_source, plan, ...): keep them as custom fields."""
    custom = data.get("custom_fields", {})
    if not isinstance(custom, dict):
        raise InvalidInput.single("custom_fields", "must be an object of named fields")
    custom_fields: dict[str, Any] = dict(custom)
    known: dict[str, Any] = {}
    for name, value in data.items():
        if name in _LEAD_FIELD_NAMES or (name == "lead_source"):
            known[name] = value
        elif name != "custom_fields":
            custom_fields[name] = value
    known["custom_fields"] = custom_fields
    return known


def _form_type(custom_fields: dict[str, Any]) -> str | None:
    # `form_type` is an ordinary extra field (kept in custom_fields), read also as what the form is.
    value = custom_fields.get("form_type")
    return value if isinstance(value, str) and value.strip() else None


def _allowed_redirect(target: Any) -> str:
    if not isinstance(target, str):
        raise InvalidInput.single(_REDIRECT_FIELD, "must be a URL")
    # Before anything reads it: urlsplit drops CR/LF and tabs, so "https://allowed/\r\nSet-Cookie: x" would
    # pass the origin check, and the raw value becomes the Location header (a header injection).
    if _CONTROL_CHARACTERS.search(target):
        raise InvalidInput.single(_REDIRECT_FIELD, "must not contain control characters")
    parts = urlsplit(target.strip())
    origin = f"{parts.scheme}://{parts.netloc}".lower()
    allowed = {o.lower() for o in get_settings().allowed_origins}
    if parts.scheme not in ("http", "https") or not parts.netloc or origin not in allowed:
        raise InvalidInput.single(_REDIRECT_FIELD, "must be a URL on an allowed origin")
    return target.strip()


# ---------------------------------------------------------------- endpoints


def capture_form(event: dict[str, Any], context: LambdaContext | None) -> Response[str]:
    settings = get_settings()
    body = raw_body(event, settings.max_body_bytes)
    data = parse_body(event.get("headers") or {}, body, accept_form=True)
    redirect = _allowed_redirect(data.pop(_REDIRECT_FIELD)) if data.get(_REDIRECT_FIELD) else None
    data.pop(_REDIRECT_FIELD, None)
    if str(data.pop(settings.honeypot_field, "") or "").strip():
        # A bot filled the hidden field: answer as if it worked so it learns nothing; store nothing.
        logger.info("Honeypot field filled; submission dropped")
        metrics.add_metric(name="HoneypotSubmissions", unit="Count", value=1)
        return _answer(_public_answer(new_id(), redirect))
    data.pop("lead_source", None)  # website forms always count as website_form
    captcha_token = captcha.pop_token(data)
    request = model_from(LeadFields, _split_known_fields(data))
    bootstrap.captcha_verifier().verify(captcha_token, _source_ip(event))
    submission = request.to_submission(Channel.WEBSITE_FORM, Channel.WEBSITE_FORM.value, "website_form")
    submission = dataclasses.replace(submission, form_type=_form_type(request.custom_fields))

    def produce() -> dict[str, Any]:
        result = bootstrap.capture_service().capture(submission)
        record_capture(result, Channel.WEBSITE_FORM)
        return _public_answer(result.lead_id, redirect)

    return respond_once(event, "capture/form", body, context, produce)


def capture_chat(event: dict[str, Any], context: LambdaContext | None) -> Response[str]:
    settings = get_settings()
    body = raw_body(event, settings.max_body_bytes)
    data = parse_body(event.get("headers") or {}, body)
    captcha_token = captcha.pop_token(data)
    request = model_from(ChatCaptureRequest, data)
    bootstrap.captcha_verifier().verify(captcha_token, _source_ip(event))
    submission = request.to_submission(
        Channel.LIVE_CHAT, Channel.LIVE_CHAT.value, "live_chat", transcript=request.transcript_messages()
    )

    def produce() -> dict[str, Any]:
        result = bootstrap.capture_service().capture(submission)
        record_capture(result, Channel.LIVE_CHAT)
        return _public_answer(result.lead_id)

    return respond_once(event, "capture/chat", body, context, produce)


# One answer for every refused delivery: an unknown partner looks like a bad signature, so nobody can
# find out which partners exist.
WEBHOOK_REFUSED = "Missing or invalid signature"


def capture_webhook(event: dict[str, Any], partner: str, context: LambdaContext | None) -> Response[str]:
    settings = get_settings()
    body = raw_body(event, settings.max_body_bytes)
    try:
        secrets = (
            partner_secrets(settings.partner_secrets_path, partner) if PARTNER_NAME.match(partner) else None
        )
        if not secrets:
            raise Unauthorized("Unknown partner")
        # Authenticate the exact bytes received before reading anything from them.
        delivery = verify_signature(
            _header(event, "X-Signature"), body, secrets, time.time(), settings.webhook_tolerance_seconds
        )
    except Unauthorized as refused:
        logger.info("Webhook refused", extra={"reason": str(refused)})
        raise Unauthorized(WEBHOOK_REFUSED) from None
    request = model_from(LeadFields, _split_known_fields(parse_json_object(body)))
    submission = request.to_submission(Channel.PARTNER_WEBHOOK, partner, f"partner:{partner}")

    def produce() -> dict[str, Any]:
        result = bootstrap.capture_service().capture(submission)
        record_capture(result, Channel.PARTNER_WEBHOOK)
        return _partner_answer(result)

    # A delivery sent again (a replay of the same signed bytes) gets the first answer and changes nothing:
    # without an Idempotency-Key, the signature is the key, remembered longer than the tolerance window.
    key = idempotency.validated_key(_header(event, "Idempotency-Key")) or f"signature:{delivery}"
    return _answer(idempotency.once_per_key(key, f"webhooks/{partner}", body, context, produce))


def build_router() -> Router:
    router = Router()

    @router.post(
        "/capture/form",
        summary="Capture a lead from a website form",
        description="JSON or application/x-www-form-urlencoded. Unknown fields are kept in custom_fields; "
        "`redirect` answers 303 to an allowed origin; a filled honeypot field stores nothing.",
        tags=["Capture"],
        responses=documented_responses(
            {
                201: (
                    "Received: a new lead, or merged into the lead with this email (the same answer)",
                    PublicCaptureResponse,
                ),
                303: (
                    "Received; see the thank-you page in Location (the body is the same as 201's)",
                    PublicCaptureResponse,
                ),
            },
            400,
            413,
            415,
            422,
            503,
        ),
        openapi_extensions=request_model(LeadFields),
    )
    def capture_form_route() -> Response[str]:
        return capture_form(router.current_event.raw_event, router.lambda_context)

    @router.post(
        "/capture/chat",
        summary="Capture a lead from a live chat, with its transcript",
        tags=["Capture"],
        responses=documented_responses(
            {
                201: (
                    "Received: a new lead, or merged into the lead with this email (the same answer)",
                    PublicCaptureResponse,
                ),
            },
            400,
            413,
            415,
            422,
            503,
        ),
        openapi_extensions=request_model(ChatCaptureRequest),
    )
    def capture_chat_route() -> Response[str]:
        return capture_chat(router.current_event.raw_event, router.lambda_context)

    @router.post(
        "/webhooks/<partner>",
        summary="Capture a lead delivered by a partner (HMAC-signed)",
        description='Header `X-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "{t}.{raw body}">`.',
        tags=["Capture"],
        responses=documented_responses(
            {
                201: ("A new lead", CaptureResponse),
                200: ("Merged into the lead with this email", CaptureResponse),
            },
            400,
            401,
            413,
            415,
            422,
            503,
        ),
        openapi_extensions=request_model(LeadFields),
    )
    def partner_webhook_route(partner: str) -> Response[str]:
        return capture_webhook(router.current_event.raw_event, partner, router.lambda_context)

    return router
