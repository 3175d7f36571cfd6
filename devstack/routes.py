"""HTTP API route selection: the most specific route wins, as in API Gateway.

Order: full literal paths, then paths with {param} segments (more literal segments first), then greedy
{proxy+} paths; a route for the exact method beats ANY; `$default` catches the rest.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass

from .template import HttpRoute


@dataclass(frozen=True)
class RouteMatch:
    route: HttpRoute
    path_parameters: dict[str, str]


def _match_path(pattern: str, path: str) -> dict[str, str] | None:
    pattern_parts = pattern.strip("/").split("/") if pattern.strip("/") else []
    path_parts = path.strip("/").split("/") if path.strip("/") else []
    params: dict[str, str] = {}
    for index, part in enumerate(pattern_parts):
        if part.startswith("{") and part.endswith("+}"):
            rest = path_parts[index:]
            if not rest or not any(rest):
                return None
            params[part[1:-2]] = urllib.parse.unquote("/".join(rest))
            return params
        if index >= len(path_parts):
            return None
        segment = path_parts[index]
        if part.startswith("{") and part.endswith("}"):
            if not segment:
                return None
            params[part[1:-1]] = urllib.parse.unquote(segment)
        elif part != segment:
            return None
    return params if len(path_parts) == len(pattern_parts) else None


def _specificity(route: HttpRoute) -> tuple[int, int, int, int]:
    parts = route.path.strip("/").split("/")
    greedy = int(any(p.endswith("+}") for p in parts))
    literal = sum(1 for p in parts if not p.startswith("{"))
    return (greedy, -literal, -len(parts), int(route.method == "ANY"))


def match_route(routes: list[HttpRoute], method: str, path: str) -> RouteMatch | None:
    """The route API Gateway would pick for `method path`, or None (a 404 Not Found)."""
    candidates = []
    default = None
    for route in routes:
        if route.path == "$default":
            default = route
            continue
        if route.method not in (method.upper(), "ANY"):
            continue
        params = _match_path(route.path, path)
        if params is not None:
            candidates.append((_specificity(route), route, params))
    if candidates:
        _, route, params = min(candidates, key=lambda item: item[0])
        return RouteMatch(route, params)
    return RouteMatch(default, {}) if default is not None else None
