"""Public unsubscribe (`GET /unsubscribe?token=…` shows, `POST /unsubscribe` acts): no sign-in, the signed
token is the credential.

- `POST` acts. It is RFC 8058's one-click: a mail client posts `List-Unsubscribe=One-Click` (form-encoded,
  or multipart) to the link of the email's `List-Unsubscribe` header, the token in its query string; the
  token may also come in a form or JSON body (the confirmation page's button posts the form). Answers 200
  (JSON; HTML if the client asks for `text/html`).
- `GET` is the footer link a person clicks. It changes nothing, because mail scanners fetch every link of
  an email: it answers a small page asking to confirm, whose button POSTs (JSON saying `unsubscribed: false`
  if `Accept` asks for `application/json`). A bad link clicked in a browser (an `Accept` preferring
  `text/html`) gets a small "This unsubscribe link is not valid" page with the 400; any other client gets
  the JSON error.

POST marks the lead do-not-email and withdraws its marketing consent (idempotent). A missing, malformed or
forged token is 400 naming `token`; a genuine token always gets the same answer, whether or not its lead
still exists or was already unsubscribed.
"""

import email.parser
import email.policy
import html
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse

from crm import bootstrap
from crm.api.models.nurture import (
    OneClickUnsubscribeQuery,
    UnsubscribeForm,
    UnsubscribeLinkQuery,
    UnsubscribeResponse,
)
from crm.api.openapi import query_model, request_model
from crm.platform.errors import BadQuery, UnsupportedMediaType
from crm.platform.http import (
    FORM,
    JSON,
    documented_responses,
    json_response,
    media_type,
    parse_form,
    parse_json_object,
    raw_body,
)
from crm.platform.settings import get_settings

MULTIPART = "multipart/form-data"
_NO_STORE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
_PAGE_HEADERS = {
    **_NO_STORE,
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
}
HTML = "text/html; charset=utf-8"


def _page(title: str, text: str, form: str = "") -> str:
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex"><title>{title}</title>
<style>
body{{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;color:#222}}
</style>
</head><body><h1>{title}</h1>
<p>{text}</p>{form}</body></html>
"""


_PAGE = _page(
    "You are unsubscribed", "You will not get marketing email from us any more. Nothing else is needed."
)
_NOT_YET = UnsubscribeResponse(
    unsubscribed=False,
    message="Not unsubscribed yet: POST to this link (RFC 8058 one-click) to unsubscribe.",
)


def _confirmation_page(token: str) -> str:
    # The form posts back to this very URL (its token in the query string) and carries the token as well.
    return _page(
        "Unsubscribe from our marketing email?",
        "You will not get marketing email from us any more.",
        '<form method="post" action=""><input type="hidden" name="token" '
        f'value="{html.escape(token, quote=True)}"><button type="submit">Unsubscribe</button></form>',
    )


# No detail about what is wrong with the link: the page must not help anyone probe tokens.
_INVALID_LINK_PAGE = _page(
    "This unsubscribe link is not valid", "Please use the link exactly as it appears in the email."
)


def _header(event: dict[str, Any], name: str) -> str:
    wanted = name.lower()
    return next((str(v) for k, v in (event.get("headers") or {}).items() if k.lower() == wanted), "")


def _quality(accept: str, media_type: str) -> float:
    """The q-value `Accept` gives `media_type`: from its most specific matching range, 0 if none matches."""
    kind = media_type.split("/", 1)[0]
    best, best_specificity = 0.0, 0
    for part in accept.lower().split(","):
        media_range, *parameters = (piece.strip() for piece in part.split(";"))
        specificity = {media_type: 3, f"{kind}/*": 2, "*/*": 1}.get(media_range, 0)
        if specificity <= best_specificity:
            continue
        quality = 1.0
        for parameter in parameters:
            name, _, value = parameter.partition("=")
            if name.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        best, best_specificity = quality, specificity
    return best


def _prefers_html(event: dict[str, Any]) -> bool:
    """A browser (`text/html,…,*/*;q=0.8`) prefers HTML; no Accept, `*/*` or a JSON client does not."""
    accept = _header(event, "accept")
    return _quality(accept, "text/html") > _quality(accept, JSON)


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
        return Response(status_code=HTTPStatus.OK, content_type=HTML, body=_PAGE, headers=dict(_PAGE_HEADERS))
    return json_response(HTTPStatus.OK, UnsubscribeResponse(), headers=dict(_NO_STORE))


def unsubscribe(event: dict[str, Any], from_link: bool) -> Response[str]:
    """`from_link` (a GET): check the token and ask to confirm. Else (a POST): mark the token's lead
    do-not-email and withdraw its marketing consent."""
    token = (event.get("queryStringParameters") or {}).get("token")
    if token is None and not from_link:
        token = _body_token(event)
    try:
        lead_id = bootstrap.unsubscribe_tokens().lead_id_from(token)
    except BadQuery:
        if not (from_link and _prefers_html(event)):
            raise  # the resolver answers the JSON 400 naming `token`
        return Response(
            status_code=HTTPStatus.BAD_REQUEST,
            content_type=HTML,
            body=_INVALID_LINK_PAGE,
            headers=dict(_PAGE_HEADERS),
        )
    if from_link:
        return _confirmation(event, str(token))
    bootstrap.do_not_email_service().unsubscribe(lead_id)
    return _answer(event, html_by_default=False)


def _confirmation(event: dict[str, Any], token: str) -> Response[str]:
    accept = _header(event, "accept").lower()
    if "application/json" in accept and "text/html" not in accept:
        return json_response(HTTPStatus.OK, _NOT_YET, headers=dict(_NO_STORE))
    return Response(
        status_code=HTTPStatus.OK,
        content_type=HTML,
        body=_confirmation_page(token.strip()),
        headers=dict(_PAGE_HEADERS),
    )


def _documented(
    success: str, *errors: int, bad_token: str, html_too: tuple[int, ...]
) -> dict[int, OpenAPIResponse]:
    """The routes' answers as they are: a 400 about the token (not the list routes' wording), no 422, and
    the HTML pages beside the JSON."""
    responses = documented_responses({200: (success, UnsubscribeResponse)}, 400, *errors)
    responses[400]["description"] = bad_token
    for status in html_too:
        responses[status].setdefault("content", {})["text/html"] = {"schema": {"type": "string"}}
    return responses


def build_router() -> Router:
    router = Router()

    def event() -> dict[str, Any]:
        raw: dict[str, Any] = router.current_event.raw_event
        return raw

    @router.get(
        "/unsubscribe",
        summary="The unsubscribe link of every nurture email: asks to confirm, changes nothing",
        description="Query parameter `token` (from the email). Answers a page whose button POSTs the "
        "unsubscribe, or JSON (`unsubscribed: false`) if `Accept` asks for `application/json`: mail scanners "
        "open every link, so a GET never unsubscribes. A bad link is 400: a small HTML page for a browser "
        "(an `Accept` preferring `text/html`), else the JSON error naming `token`.",
        tags=["Nurture"],
        responses=_documented(
            "A genuine link: the confirmation page, or this JSON",
            503,
            bad_token="Missing, malformed or forged `token` (named in `fields`); a browser gets an HTML page "
            "saying the link is not valid",
            html_too=(200, 400),
        ),
        openapi_extensions=query_model(UnsubscribeLinkQuery),
    )
    def unsubscribe_link_route() -> Response[str]:
        return unsubscribe(event(), from_link=True)

    @router.post(
        "/unsubscribe",
        summary="One-click unsubscribe (RFC 8058 List-Unsubscribe-Post)",
        description="The email's `List-Unsubscribe` URL (token in the query string), posted with the body "
        "`List-Unsubscribe=One-Click`; or the token in a form or JSON body (the confirmation page's button). "
        "Marks the lead do-not-email and withdraws its marketing consent. Idempotent.",
        tags=["Nurture"],
        responses=_documented(
            "Unsubscribed (JSON, or an HTML page if `Accept` asks for `text/html`)",
            413,
            415,
            503,
            bad_token="Missing, malformed or forged `token` (named in `fields`), or a malformed body",
            html_too=(200,),
        ),
        openapi_extensions={**request_model(UnsubscribeForm), **query_model(OneClickUnsubscribeQuery)},
    )
    def one_click_route() -> Response[str]:
        return unsubscribe(event(), from_link=False)

    return router
