"""Route selection: the most specific route wins, as in API Gateway."""

from devstack.routes import match_route
from devstack.template import HttpRoute


def route(method: str, path: str) -> HttpRoute:
    return HttpRoute("Api", method, path, f"{method} {path}", None)


ROUTES = [
    route("GET", "/leads/{id}"),
    route("GET", "/leads/export"),
    route("POST", "/leads"),
    route("ANY", "/leads/{id}"),
    route("GET", "/files/{proxy+}"),
]


def test_literal_paths_beat_parameters():
    match = match_route(ROUTES, "GET", "/leads/export")
    assert match is not None and match.route.path == "/leads/export"


def test_path_parameters_are_extracted_and_decoded():
    match = match_route(ROUTES, "GET", "/leads/a%20b")
    assert match is not None and match.route.method == "GET" and match.path_parameters == {"id": "a b"}


def test_a_method_route_beats_any_and_any_catches_other_methods():
    patch = match_route(ROUTES, "PATCH", "/leads/7")
    assert patch is not None and patch.route.method == "ANY"


def test_greedy_proxy_takes_the_rest_of_the_path():
    match = match_route(ROUTES, "GET", "/files/a/b/c.txt")
    assert match is not None and match.path_parameters == {"proxy": "a/b/c.txt"}
    assert match_route(ROUTES, "GET", "/files") is None


def test_unknown_paths_and_methods_are_not_found():
    assert match_route(ROUTES, "GET", "/nope") is None
    assert match_route(ROUTES, "DELETE", "/leads") is None
    assert match_route(ROUTES, "GET", "/leads/1/extra") is None


def test_default_route_catches_the_rest():
    default = HttpRoute("Api", "ANY", "$default", "Fallback", None)
    match = match_route([*ROUTES, default], "GET", "/nope")
    assert match is not None and match.route is default
