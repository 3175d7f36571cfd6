"""Hostile input over HTTP, as an attacker or a fuzzer sends it: each is a 4xx from the place where that
class of input enters, never a 500, never an injected header, never a stored corruption."""

import http.client
import json
import time
import urllib.parse
import uuid
from typing import Any

import pytest

from .conftest import Client

pytestmark = pytest.mark.e2e


def eventually(check: Any, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.25)


def raw_request(client: Client, method: str, path: str, body: bytes, headers: dict[str, str]) -> Any:
    """The body bytes exactly as given, and every response header as sent (repeats included)."""
    parts = urllib.parse.urlsplit(client.base)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    connection.request(method, path, body=body, headers=headers)
    response = connection.getresponse()
    return response.status, response.getheaders(), response.read()


def leads_named(client: Client, token: str, name: str) -> list[Any]:
    found = client.request("GET", f"/leads?q={name}", headers={"Authorization": f"Bearer {token}"})
    assert found.status == 200, found.body
    items: list[Any] = found.json()["items"]
    return items


def test_a_redirect_with_cr_lf_sets_no_cookie_and_stores_no_lead(client, local_stack):
    tag = uuid.uuid4().hex[:10]
    injected, control = f"Injected{tag}", f"Control{tag}"
    admin = local_stack.token("admin")

    status, headers, body = raw_request(
        client,
        "POST",
        "/capture/form",
        urllib.parse.urlencode(
            {
                "first_name": "Eve",
                "last_name": injected,
                "email": f"eve-{tag}@example.com",
                "redirect": "http://127.0.0.1:8000/t\r\nSet-Cookie: injected=1",
            }
        ).encode(),
        {"Content-Type": "application/x-www-form-urlencoded"},
    )
    sent_control = client.request(
        "POST",
        "/capture/form",
        data={"first_name": "Ada", "last_name": control, "email": f"ada-{tag}@example.com"},
    )

    assert status == 422, body
    assert [problem["field"] for problem in json.loads(body)["fields"]] == ["redirect"]
    assert not [value for name, value in headers if name.lower() in ("set-cookie", "location")]
    assert sent_control.status == 201
    # The control lead is found once indexed; the refused one never was stored.
    assert eventually(lambda: leads_named(client, admin, control.lower()))
    assert leads_named(client, admin, injected.lower()) == []


@pytest.mark.parametrize("path", ["/capture/form", "/capture/chat"])
def test_json_nested_a_thousand_levels_deep_is_400_on_the_public_routes(client, path):
    levels = 1000
    body = b'{"first_name": "Ada", "email": "a@example.com", "x": ' + b"[" * levels + b"]" * levels + b"}"

    status, _, answer = raw_request(client, "POST", path, body, {"Content-Type": "application/json"})

    assert status == 400, answer
    assert "deeper than 32 levels" in json.loads(answer)["message"]


def test_raw_bytes_that_are_not_utf8_are_400_not_stored_as_replacement_characters(client):
    body = b'{"first_name": "\xff\xfe", "last_name": "Lovelace", "email": "ada-utf8@example.com"}'

    status, _, answer = raw_request(
        client, "POST", "/capture/form", body, {"Content-Type": "application/json"}
    )

    assert (status, json.loads(answer)["message"]) == (400, "The body is not UTF-8")


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"big": 1e200}, "custom_fields.big"),
        ({"small": 1e-200}, "custom_fields.small"),
        ({"digits": 10**40}, "custom_fields.digits"),
    ],
)
def test_numbers_dynamodb_cannot_store_are_422_naming_the_field(client, extra, field):
    sent = {"first_name": "Ada", "last_name": "Lovelace", "email": f"n-{uuid.uuid4().hex[:8]}@example.com"}

    answer = client.request("POST", "/capture/chat", json_body=sent | {"custom_fields": extra})

    assert answer.status == 422, answer.body
    assert [problem["field"] for problem in answer.json()["fields"]] == [field]


def test_a_task_due_before_the_year_1900_is_422_and_the_task_list_still_answers(client, local_stack):
    admin = {"Authorization": f"Bearer {local_stack.token('admin')}"}
    lead = client.request(
        "POST",
        "/leads",
        json_body={
            "first_name": "Ada",
            "last_name": "Lovelace",
            "email": f"t-{uuid.uuid4().hex[:8]}@example.com",
        },
        headers=admin,
    ).json()

    refused = client.request(
        "POST",
        f"/leads/{lead['id']}/tasks",
        json_body={"title": "Call", "due_at": "0999-01-01T00:00:00Z"},
        headers=admin,
    )

    assert refused.status == 422, refused.body
    assert [problem["field"] for problem in refused.json()["fields"]] == ["due_at"]
    assert client.request("GET", "/tasks", headers=admin).status == 200


@pytest.mark.parametrize("path", ["/leads", "/tasks", "/leads/unassigned", "/leads/{id}/activities"])
@pytest.mark.parametrize("cursor", ["%C3%A9", "garbage", "a.b"])
def test_a_cursor_this_api_never_wrote_is_400_naming_cursor_on_every_list(client, local_stack, path, cursor):
    admin = {"Authorization": f"Bearer {local_stack.token('admin')}"}
    if "{id}" in path:
        email = f"c-{uuid.uuid4().hex[:8]}@example.com"
        lead = client.request(
            "POST", "/leads", json_body={"first_name": "A", "last_name": "B", "email": email}, headers=admin
        )
        path = path.replace("{id}", lead.json()["id"])

    answer = client.request("GET", f"{path}?cursor={cursor}", headers=admin)

    assert answer.status == 400, answer.body
    assert [problem["field"] for problem in answer.json()["fields"]] == ["cursor"]


@pytest.mark.parametrize("path", ["/capture/form", "/leads", "/nowhere"])
def test_trace_is_api_gateways_json_404(client, path):
    answer = client.request("TRACE", path)

    assert (answer.status, answer.json()) == (404, {"message": "Not Found"})
