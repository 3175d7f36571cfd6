"""CORS as API Gateway HTTP APIs do it."""

from devstack import cors
from devstack.template import CorsConfig

CONFIG = CorsConfig(
    allow_origins=("http://localhost:8000", "https://*.example.com"),
    allow_methods=("GET", "POST"),
    allow_headers=("Content-Type", "Authorization"),
    expose_headers=("X-Request-Id",),
    max_age=600,
)


def test_a_preflight_needs_origin_and_requested_method():
    assert cors.is_preflight("OPTIONS", {"origin": "x", "access-control-request-method": "GET"})
    assert not cors.is_preflight("OPTIONS", {"origin": "x"})
    assert not cors.is_preflight("GET", {"origin": "x", "access-control-request-method": "GET"})


def test_preflight_from_an_allowed_origin_gets_the_configured_headers():
    headers = cors.preflight_headers(
        CONFIG, {"origin": "http://localhost:8000", "access-control-request-method": "POST"}
    )
    assert headers == {
        "access-control-allow-origin": "http://localhost:8000",
        "access-control-allow-methods": "GET,POST",
        "access-control-allow-headers": "content-type,authorization",
        "access-control-max-age": "600",
        "access-control-expose-headers": "x-request-id",
    }


def test_preflight_from_another_origin_or_for_another_method_gets_nothing():
    assert (
        cors.preflight_headers(
            CONFIG, {"origin": "https://evil.test", "access-control-request-method": "GET"}
        )
        == {}
    )
    assert (
        cors.preflight_headers(
            CONFIG, {"origin": "http://localhost:8000", "access-control-request-method": "DELETE"}
        )
        == {}
    )


def test_wildcard_origins():
    assert cors.origin_allowed(CONFIG, "https://app.example.com")
    assert not cors.origin_allowed(CONFIG, "http://app.example.com")
    assert not cors.origin_allowed(CONFIG, "https://example.com.evil.test")
    assert cors.origin_allowed(CorsConfig(allow_origins=("*",)), "https://any.test")


def test_responses_get_allow_origin_only_for_allowed_origins():
    assert cors.response_headers(CONFIG, {"origin": "http://localhost:8000"})[
        "access-control-allow-origin"
    ] == ("http://localhost:8000")
    assert cors.response_headers(CONFIG, {"origin": "https://evil.test"}) == {}
    assert cors.response_headers(CONFIG, {}) == {}


def test_the_function_own_cors_headers_are_dropped():
    kept = cors.strip_cors_headers([("Access-Control-Allow-Origin", "*"), ("content-type", "text/plain")])
    assert kept == [("content-type", "text/plain")]
