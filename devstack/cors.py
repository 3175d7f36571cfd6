"""API Gateway HTTP API CORS: it answers preflights itself and adds the configured headers to responses
for allowed origins, ignoring any CORS headers the function returns."""

from __future__ import annotations

from .template import CorsConfig


def is_preflight(method: str, headers: dict[str, str]) -> bool:
    return method.upper() == "OPTIONS" and "origin" in headers and "access-control-request-method" in headers


def origin_allowed(cors: CorsConfig, origin: str | None) -> bool:
    if not origin:
        return False
    for allowed in cors.allow_origins:
        if allowed in ("*", origin):
            return True
        if "*" in allowed:
            # "https://*" (any https origin) or "https://*.example.com" (any subdomain).
            head, _, tail = allowed.partition("*")
            if origin.startswith(head) and origin.endswith(tail) and len(origin) > len(head) + len(tail):
                return True
    return False


def _allow_origin_value(cors: CorsConfig, origin: str) -> str:
    return "*" if "*" in cors.allow_origins and not cors.allow_credentials else origin


def preflight_headers(cors: CorsConfig, headers: dict[str, str]) -> dict[str, str]:
    """Headers of API Gateway's own 204 answer to a preflight; empty when the origin or method is not
    allowed (the browser then blocks the request)."""
    origin = headers.get("origin")
    method = headers.get("access-control-request-method", "").upper()
    if not origin_allowed(cors, origin) or not ("*" in cors.allow_methods or method in cors.allow_methods):
        return {}
    assert origin is not None
    result = {
        "access-control-allow-origin": _allow_origin_value(cors, origin),
        "access-control-allow-methods": ",".join(cors.allow_methods),
    }
    if cors.allow_headers:
        result["access-control-allow-headers"] = ",".join(h.lower() for h in cors.allow_headers)
    if cors.max_age is not None:
        result["access-control-max-age"] = str(cors.max_age)
    if cors.allow_credentials:
        result["access-control-allow-credentials"] = "true"
    if cors.expose_headers:
        result["access-control-expose-headers"] = ",".join(h.lower() for h in cors.expose_headers)
    return result


def response_headers(cors: CorsConfig, headers: dict[str, str]) -> dict[str, str]:
    """CORS headers API Gateway adds to an actual (non-preflight) response."""
    origin = headers.get("origin")
    if not origin_allowed(cors, origin):
        return {}
    assert origin is not None
    result = {"access-control-allow-origin": _allow_origin_value(cors, origin)}
    if cors.allow_credentials:
        result["access-control-allow-credentials"] = "true"
    if cors.expose_headers:
        result["access-control-expose-headers"] = ",".join(h.lower() for h in cors.expose_headers)
    return result


def strip_cors_headers(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(k, v) for k, v in headers if not k.lower().startswith("access-control-")]
