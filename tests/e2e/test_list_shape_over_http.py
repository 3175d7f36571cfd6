"""One list shape over HTTP: every list route answers `items` and `next_cursor`; the routes that named their
list otherwise (`leads`, `rules`, `users`, `sequences`) still carry that name, the same list, as a deprecated
alias for one release."""

import uuid

import pytest

from devstack.stack import LocalStack

from .conftest import Client
from .test_assignment_over_http import bearer

pytestmark = pytest.mark.e2e

# route -> the deprecated name of its list, if it had one
LIST_ROUTES = {
    "/leads?limit=5": None,
    "/leads/{lead}/activities": None,
    "/leads/{lead}/tasks": None,
    "/tasks": None,
    "/leads/unassigned?limit=5": "leads",
    "/scoring-rules": "rules",
    "/assignment-rules": "rules",
    "/nurture-sequences": "sequences",
    "/users": "users",
}


@pytest.mark.parametrize("route", list(LIST_ROUTES))
def test_every_list_route_answers_items_and_next_cursor(
    client: Client, local_stack: LocalStack, route: str
) -> None:
    captured = client.request(
        "POST",
        "/capture/form",
        data={"first_name": "Li", "last_name": "St", "email": f"{uuid.uuid4().hex}@x.io"},
    )
    assert captured.status == 201, captured.body
    response = client.request(
        "GET", route.format(lead=captured.json()["id"]), headers=bearer(local_stack, "admin")
    )
    assert response.status == 200, response.body
    body = response.json()
    assert isinstance(body["items"], list) and "next_cursor" in body
    assert body["items"] or route.startswith("/tasks") or route.endswith("/tasks")
    alias = LIST_ROUTES[route]
    if alias is not None:
        assert body[alias] == body["items"]
