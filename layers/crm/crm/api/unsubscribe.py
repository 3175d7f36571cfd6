"""Public one-click unsubscribe (`GET /unsubscribe?token=…`, `POST /unsubscribe`): no sign-in, the signed
token is the credential.

- `POST` is RFC 8058's one-click: a mail client posts `List-Unsubscribe=One-Click` (form-encoded, or
  multipart) to the link of the email's `List-Unsubscribe` header, the token in its query string; the token
  may also come in a form or JSON body. Answers 200 (JSON; HTML if the client asks for `text/html`).
- `GET` is the footer link a person clicks: answers a small "You are unsubscribed" page (JSON if `Accept`
  asks for `application/json`).

Both mark the lead do-not-email (idempotent). A missing, malformed or forged token is 400 naming `token`; a
genuine token always gets the same answer, whether or not its lead still exists or was already unsubscribed.
"""

import email.parser
import email.policy
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router

from crm import services
from crm.errors import BadQuery, UnsupportedMediaType
from crm.http import (
    FORM,
    JSON,
    documented_responses,
    json_response,
    media_type,
    parse_form,
    parse_json_object,
    raw_body,
)
from crm.nurture_api_models import UnsubscribeResponse
from crm.settings import get_settings

MULTIPART = "multipart/form-data"
_NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex"><title>You are unsubscribed</title>
<style>
body{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;color:#222}
</style>
</head><body><h1>You are unsubscribed</h1>
<p>You will not get marketing email from us any more. Nothing else is needed.</p></body></html>
"""


def _header(event: dict[str, Any], name: str) -> str:
    wanted = name.lower()
    return next((str(v) for k, v in (event.get("headers") or {}).items() if k.lower() == wanted), "")


def _multipart_fields(content_type: str, data: bytes) -> dict[str, str]:
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + data
    )
    fields: dict[str, str] = {}
    for part in message.iter_parts() if message.is_multipart() else []:
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(payload, bytes):
            fields.setdefault(name, payload.decode("utf-8", errors="replace"))
    return fields


def _body_token(event: dict[str, Any]) -> str | None:
    data = raw_body(event, get_settings().max_body_bytes)
    if not data.strip():
        return None
    kind = media_type(event.get("headers") or {})
    fields: dict[str, Any]
    if kind == FORM:
        fields = parse_form(data)
    elif kind in ("", JSON) or kind.endswith("+json"):
        fields = parse_json_object(data)
    elif kind == MULTIPART:
        fields = _multipart_fields(_header(event, "content-type"), data)
    else:
        raise UnsupportedMediaType(f"Content-Type must be {FORM}, {MULTIPART} or {JSON}")
    token = fields.get("token")
    if token is not None and not isinstance(token, str):
        raise BadQuery.single("token", "must be the text of the link's token")
    return token


def _answer(event: dict[str, Any], html_by_default: bool) -> Response[str]:
    accept = _header(event, "accept").lower()
    wants_html = "text/html" in accept or (html_by_default and "application/json" not in accept)
    if wants_html:
        return Response(
            status_code=HTTPStatus.OK,
            content_type="text/html; charset=utf-8",
            body=_PAGE,
            headers={**_NO_STORE, "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'"},
        )
    return json_response(HTTPStatus.OK, UnsubscribeResponse(), headers=dict(_NO_STORE))


def unsubscribe(event: dict[str, Any], from_link: bool) -> Response[str]:
    """Mark the token's lead do-not-email. `from_link`: a GET (a person clicked), else a POST."""
    token = (event.get("queryStringParameters") or {}).get("token")
    if token is None and not from_link:
        token = _body_token(event)
    lead_id = services.unsubscribe_tokens().lead_id_from(token)
    services.do_not_email_service().unsubscribe(lead_id)
    return _answer(event, html_by_default=from_link)


def build_router() -> Router:
    router = Router()

    def event() -> dict[str, Any]:
        raw: dict[str, Any] = router.current_event.raw_event
        return raw

    @router.get(
        "/unsubscribe",
        summary="Unsubscribe from marketing email (the link in every nurture email)",
        description="Query parameter `token` (from the email). Answers a page saying so, or JSON if `Accept` "
        "asks for `application/json`. Idempotent.",
        tags=["Nurture"],
        responses=documented_responses(
            {200: ("Unsubscribed (an HTML page, or this JSON)", UnsubscribeResponse)}, 400, 503
        ),
    )
    def unsubscribe_link_route() -> Response[str]:
        return unsubscribe(event(), from_link=True)

    @router.post(
        "/unsubscribe",
        summary="One-click unsubscribe (RFC 8058 List-Unsubscribe-Post)",
        description="The email's `List-Unsubscribe` URL (token in the query string), posted with the body "
        "`List-Unsubscribe=One-Click`; or the token in a form or JSON body. Idempotent.",
        tags=["Nurture"],
        responses=documented_responses({200: ("Unsubscribed", UnsubscribeResponse)}, 400, 413, 415, 503),
        openapi_extensions={"x-request-model": "UnsubscribeForm"},
    )
    def one_click_route() -> Response[str]:
        return unsubscribe(event(), from_link=False)

    return router
