"""Speed to lead per rep over HTTP, on a stack of the module's own (its figures are this module's leads only):
a chat lead, contacted at capture and assigned a moment later, counts under its rep, as the funnel's
`group_by=owner` counts it, never under `unassigned`."""

import uuid

import pytest

from devstack.stack import LocalStack

from .conftest import Client
from .test_assignment_over_http import bearer, eventually

pytestmark = pytest.mark.e2e


def test_a_chat_lead_assigned_at_capture_counts_under_its_rep(http: Client, clock_stack: LocalStack) -> None:
    # Given a visitor who starts a chat (contacted at once) and gets a rep at capture
    chat = {
        "first_name": "Alan",
        "last_name": "Turing",
        "email": f"alan-{uuid.uuid4().hex[:8]}@bletchley.example.org",
        "chat_id": f"chat-{uuid.uuid4().hex[:8]}",
        "transcript": [{"author": "visitor", "text": "Hi, can I get a demo?"}],
    }
    captured = http.request("POST", "/capture/chat", json_body=chat)
    assert captured.status == 201, captured.body
    admin = bearer(clock_stack, "admin")
    lead_id = captured.json()["id"]
    lead = eventually(
        lambda: (r := http.request("GET", f"/leads/{lead_id}", headers=admin).json())["assigned_to"] and r
    )
    rep = lead["assigned_to"]

    # When the dashboards are read (once the stream has counted the capture and the assignment)
    def funnel_owners() -> dict[str, int]:
        body = http.request("GET", "/analytics/funnel?group_by=owner", headers=admin).json()
        return {group["key"]: group["leads"] for group in body["groups"]}

    def speed_reps() -> dict[str, int]:
        body = http.request("GET", "/analytics/speed-to-lead", headers=admin).json()
        return {entry["rep"]: entry["contacted"] for entry in body["reps"]}

    eventually(lambda: funnel_owners() == {rep: 1})
    # Then speed to lead puts the lead under the same rep as the funnel does
    assert eventually(lambda: speed_reps() == {rep: 1})
    speed = http.request("GET", "/analytics/speed-to-lead", headers=admin).json()
    assert speed["overall"]["contacted"] == 1
