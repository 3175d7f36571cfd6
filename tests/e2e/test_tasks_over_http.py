"""Reading tasks back over HTTP, whatever became of them: one task by id, a lead's tasks, and an owner's tasks
by state (open, done, cancelled, all). The follow-ups a contact cancels are the cancelled ones, as a rep
meets them."""

import uuid
from typing import Any

import pytest

from devstack.stack import LocalStack

from .conftest import Client
from .test_assignment_over_http import bearer, eventually, qualifying_lead
from .test_lifecycle_over_http import patch_status

pytestmark = pytest.mark.e2e


def username_of(stack: LocalStack, sub: str) -> str:
    return next(user.username for user in stack.seed.users if user.sub == sub)


def listed(client: Client, path: str, headers: dict[str, str]) -> list[dict[str, Any]]:
    """Every item of a list route, page after page (`items` + `next_cursor`)."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        response = client.request("GET", path + (f"&cursor={cursor}" if cursor else ""), headers=headers)
        assert response.status == 200, response.body
        body = response.json()
        items += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            return items


def test_done_and_cancelled_tasks_can_be_read_back(client: Client, local_stack: LocalStack) -> None:
    # Given a lead routed to a rep, with its two follow-ups and a task of the rep's own, done
    captured = client.request(
        "POST", "/capture/form", json_body=qualifying_lead(f"tasks-{uuid.uuid4().hex[:8]}@navy-research.com")
    )
    assert captured.status == 201, captured.body
    lead_id = captured.json()["id"]
    admin, manager = bearer(local_stack, "admin"), bearer(local_stack, "manager")
    lead = eventually(
        lambda: (r := client.request("GET", f"/leads/{lead_id}", headers=admin).json())["assigned_to"] and r
    )
    rep_name = username_of(local_stack, lead["assigned_to"])
    rep = bearer(local_stack, user=rep_name)
    other_rep = bearer(local_stack, user=next(u for u in ("rep1", "rep2", "rep3") if u != rep_name))
    follow_ups = eventually(
        lambda: (
            len(
                found := [
                    t
                    for t in listed(client, f"/tasks?owner={lead['assigned_to']}&limit=100", admin)
                    if t["lead_id"] == lead_id and t["kind"] == "follow_up"
                ]
            )
            == 2
            and found
        )
    )
    made = client.request(
        "POST",
        f"/leads/{lead_id}/tasks",
        json_body={"title": "Send the proposal", "due_at": "2030-01-01T09:00:00Z"},
        headers=rep,
    ).json()
    done = client.request(
        "PATCH", f"/tasks/{made['id']}", json_body={"done": True, "version": made["version"]}, headers=rep
    )
    assert done.status == 200, done.body

    # When the rep contacts the lead (which cancels its follow-ups)
    assert patch_status(client, lead_id, "contacted", rep).status == 200
    eventually(
        lambda: all(
            client.request("GET", f"/tasks/{t['id']}", headers=rep).json()["cancelled_at"] for t in follow_ups
        )
    )

    # Then each task reads back by id, with why and when it closed, to those who may see it
    follow_up = client.request("GET", f"/tasks/{follow_ups[0]['id']}", headers=rep)
    assert follow_up.status == 200
    assert follow_up.json()["cancel_reason"] == "lead contacted"
    assert follow_up.headers["ETag"] == f'"{follow_up.json()["version"]}"'
    for headers in (manager, admin):
        assert client.request("GET", f"/tasks/{made['id']}", headers=headers).json()["done"] is True
    assert client.request("GET", f"/tasks/{made['id']}", headers=other_rep).status == 404
    assert client.request("GET", f"/tasks/{uuid.uuid4()}", headers=admin).status == 404

    # ... and the owner's lists by state hold each where it belongs
    def ids(state: str, limit: int = 100) -> list[str]:
        items = listed(client, f"/tasks?owner=me&state={state}&limit={limit}", rep)
        return [t["id"] for t in items if t["lead_id"] == lead_id]

    follow_up_ids = {t["id"] for t in follow_ups}
    assert ids("open") == [] and ids("done") == [made["id"]]
    assert set(ids("cancelled")) == follow_up_ids
    every = sorted(follow_ups, key=lambda t: t["due_at"])
    assert ids("all") == [every[0]["id"], every[1]["id"], made["id"]]  # soonest due first
    assert ids("all", limit=1) == ids("all")  # the same, one page at a time
    assert ids("open") == [
        t["id"] for t in listed(client, "/tasks?owner=me&limit=100", rep) if t["lead_id"] == lead_id
    ]
    bad = client.request("GET", "/tasks?state=closed", headers=rep)
    assert bad.status == 422 and [f["field"] for f in bad.json()["fields"]] == ["state"]

    # ... and under the lead, for anyone who may see the lead
    under_lead = client.request("GET", f"/leads/{lead_id}/tasks", headers=rep).json()
    assert [t["id"] for t in under_lead["items"]] == ids("all") and under_lead["next_cursor"] is None
    assert client.request("GET", f"/leads/{lead_id}/tasks", headers=other_rep).status == 404
