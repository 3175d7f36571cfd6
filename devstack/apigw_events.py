"""API Gateway HTTP API payload format 2.0: the event a function receives and how its answer becomes HTTP."""

from __future__ import annotations

import base64
import json
import urllib.parse
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .auth import Authorization
from .template import LOCAL_ACCOUNT_ID

# Bodies of these types reach the function as text; everything else (form posts included, as on AWS)
# arrives base64-encoded with isBase64Encoded true.
_TEXT_TYPES = {
    "application/json",
    "application/xml",
    "application/javascript",
    "application/x-javascript",
    "application/ecmascript",
    "application/graphql",
    "application/ld+json",
}


@dataclass(frozen=True)
class HttpRequest:
    method: str
    raw_path: str
    raw_query: str
    headers: list[tuple[str, str]]  # as received, in order, original case
    body: bytes
    source_ip: str
    protocol: str = "HTTP/1.1"

    def header_map(self) -> dict[str, str]:
        """Lower-cased names; repeated headers joined with commas, as API Gateway does."""
        merged: dict[str, str] = {}
        for name, value in self.headers:
            key = name.lower()
            merged[key] = f"{merged[key]},{value}" if key in merged else value
        return merged

    def query_map(self) -> dict[str, str]:
        merged: dict[str, str] = {}
        for pair in self.raw_query.split("&") if self.raw_query else []:
            name, _, value = pair.partition("=")
            key, val = urllib.parse.unquote(name), urllib.parse.unquote(value)
            merged[key] = f"{merged[key]},{val}" if key in merged else val
        return merged


def _utf8_or_none(data: bytes) -> str | None:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def is_text_content(content_type: str | None) -> bool:
    if not content_type:
        return False
    mime = content_type.split(";")[0].strip().lower()
    return mime.startswith("text/") or mime in _TEXT_TYPES or mime.endswith(("+json", "+xml"))


def build_event(
    request: HttpRequest,
    *,
    route_key: str,
    path_parameters: dict[str, str],
    api_id: str,
    request_id: str,
    authorization: Authorization | None,
    now: datetime | None = None,
) -> dict[str, Any]:
    now = now or datetime.now(UTC)
    headers = request.header_map()
    cookies = [c.strip() for c in headers.pop("cookie", "").split(";") if c.strip()]
    host = headers.get("host", "127.0.0.1")
    context: dict[str, Any] = {
        "accountId": LOCAL_ACCOUNT_ID,
        "apiId": api_id,
        "domainName": host,
        "domainPrefix": host.split(".")[0],
        "http": {
            "method": request.method.upper(),
            "path": urllib.parse.unquote(request.raw_path),
            "protocol": request.protocol,
            "sourceIp": request.source_ip,
            "userAgent": headers.get("user-agent", ""),
        },
        "requestId": request_id,
        "routeKey": route_key,
        "stage": "$default",
        "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
        "timeEpoch": int(now.timestamp() * 1000),
    }
    if authorization is not None:
        context["authorizer"] = {"jwt": {"claims": authorization.claims, "scopes": authorization.scopes}}
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": request.raw_path,
        "rawQueryString": request.raw_query,
    }
    if cookies:
        event["cookies"] = cookies
    event["headers"] = headers
    query = request.query_map()
    if query:
        event["queryStringParameters"] = query
    event["requestContext"] = context
    if path_parameters:
        event["pathParameters"] = path_parameters
    if request.body:
        text = _utf8_or_none(request.body) if is_text_content(headers.get("content-type")) else None
        if text is not None:
            event["body"] = text
            event["isBase64Encoded"] = False
        else:
            # Binary types, and "text" that is not UTF-8: the function gets the bytes as sent (not U+FFFD in
            # place of each bad byte), so it can refuse them instead of storing a corrupted value.
            event["body"] = base64.b64encode(request.body).decode("ascii")
            event["isBase64Encoded"] = True
    else:
        event["isBase64Encoded"] = False
    return event


@dataclass
class HttpResponse:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""


class MalformedResponse(Exception):
    """The function's answer is not a valid payload 2.0 response (API Gateway answers 500)."""


def json_response(status: int, payload: Any, headers: list[tuple[str, str]] | None = None) -> HttpResponse:
    return HttpResponse(
        status, [("content-type", "application/json"), *(headers or [])], json.dumps(payload).encode()
    )


def convert_response(result: Any) -> HttpResponse:
    """Payload 2.0 response -> HTTP. Without a statusCode, API Gateway takes 200 JSON, the result as body."""
    if not isinstance(result, dict) or "statusCode" not in result:
        text = result if isinstance(result, str) else json.dumps(result)
        return HttpResponse(200, [("content-type", "application/json")], text.encode())
    try:
        status = int(result["statusCode"])
    except (TypeError, ValueError) as exc:
        raise MalformedResponse(f"statusCode {result['statusCode']!r}") from exc
    if not 100 <= status <= 599:
        raise MalformedResponse(f"statusCode {status}")
    headers: list[tuple[str, str]] = []
    for name, value in (result.get("headers") or {}).items():
        headers.append((str(name), _header_value(value)))
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers.extend((str(name), _header_value(v)) for v in (values or []))
    headers.extend(("set-cookie", str(cookie)) for cookie in result.get("cookies") or [])
    body = result.get("body")
    if body is None:
        data = b""
    elif not isinstance(body, str):
        raise MalformedResponse("body must be a string")
    elif result.get("isBase64Encoded"):
        try:
            data = base64.b64decode(body, validate=True)
        except ValueError as exc:
            raise MalformedResponse("body is not valid base64") from exc
    else:
        data = body.encode("utf-8")
    return HttpResponse(status, headers, data)


def _header_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
