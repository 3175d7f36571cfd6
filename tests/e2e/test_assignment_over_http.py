"""Assignment and notification through the local stack, as a client sees them: capture a lead, find it
assigned to a demo rep, and the rep's email in the local outbox."""

import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from devstack.stack import LocalStack

from .conftest import Client

pytestmark = pytest.mark.e2e

DEADLINE_SECONDS = 20.0


def eventually(check: Callable[[], Any], timeout: float = DEADLINE_SECONDS) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout}s")
        time.sleep(0.2)


def bearer(stack: LocalStack, role: str | None = None, user: str | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {stack.token(role, user=user)}"}


def qualifying_lead(email: str) -> dict[str, Any]:
    """Through the website form, scores 70 with the seed scoring rules: C-level 20, over 1,000 employees 15,
    revenue over $10M 15, target industry 10, and the form submission itself 10 (a `.com` address scores
    nothing)."""
    return {
        "first_name": "Grace",
        "last_name": "Hopper",
        "email": email,
        "title": "CTO",
        "company": "Navy Research",
        "employee_count": 5000,
        "industry": "Technology",
        "annual_revenue": 50_000_000,
    }


def emails_to(stack: LocalStack, address: str, lead_id: str) -> list[dict[str, Any]]:
    return [m for m in stack.outbox() if address in m["to"] and lead_id in (m.get("html") or "")]


def test_a_qualifying_lead_is_assigned_and_its_rep_is_emailed_within_seconds(
    client: Client, local_stack: LocalStack
) -> None:
    started = time.monotonic()
    captured = client.request(
        "POST", "/capture/form", json_body=qualifying_lead(f"grace-{uuid.uuid4().hex[:8]}@navy-research.com")
    )
    assert captured.status == 201
    lead_id = captured.json()["id"]
    admin = bearer(local_stack, "admin")

    lead = eventually(
        lambda: (r := client.request("GET", f"/leads/{lead_id}", headers=admin).json())["assigned_to"] and r
    )
    rep = client.request("GET", f"/users/{lead['assigned_to']}", headers=admin).json()
    (email,) = eventually(lambda: emails_to(local_stack, rep["email"], lead_id))
    elapsed = time.monotonic() - started

    assert lead["score"] == 70 and lead["grade"] == "B" and lead["team"] == "sales"
    assert rep["role"] == "rep" and "sales" in rep["teams"]
    assert email["subject"] == "New lead assigned to you: Grace Hopper (Navy Research)"
    # moto keeps the HTML part of an SES v2 email (the text part is checked in tests/unit).
    assert f"{local_stack.url}/app/#/leads/{lead_id}" in email["html"] and "70 (B)" in email["html"]
    assert elapsed < DEADLINE_SECONDS
    assigned = [a for a in lead["activities"] if a["type"] == "lead_assigned"]
    assert len(assigned) == 1 and assigned[0]["data"]["trigger"] == "score_threshold"
    assert {c["name"] for c in assigned[0]["data"]["candidates"]} == {"Riley Rep", "Robin Rep", "Reese Rep"}
    print(f"\ncapture -> assigned -> email in the outbox: {elapsed:.1f}s")


def test_the_same_person_entered_through_the_system_api_is_not_a_form_submission(
    client: Client, local_stack: LocalStack
) -> None:
    admin = bearer(local_stack, "admin")
    created = client.request(
        "POST",
        "/leads",
        json_body=qualifying_lead(f"grace-{uuid.uuid4().hex[:8]}@navy-research.com"),
        headers=admin,
    )
    assert created.status == 201
    lead_id = created.json()["id"]

    lead = eventually(
        lambda: (r := client.request("GET", f"/leads/{lead_id}", headers=admin).json())["grade"] and r
    )
    assert (lead["score"], lead["grade"]) == (60, "C")
    assert eventually(lambda: client.request("GET", f"/leads/{lead_id}", headers=admin).json()["nurture"])
    assert "form_submitted" not in [a["type"] for a in lead["activities"]]


def test_a_known_visitor_who_starts_a_chat_is_assigned_at_once(
    client: Client, local_stack: LocalStack
) -> None:
    email = f"nora-{uuid.uuid4().hex[:8]}@example.com"
    admin = bearer(local_stack, "admin")
    lead_id = client.request(
        "POST", "/capture/form", data={"first_name": "Nora", "last_name": "Return", "email": email}
    ).json()["id"]
    eventually(lambda: client.request("GET", f"/leads/{lead_id}", headers=admin).json()["nurture"])

    chat = client.request(
        "POST",
        "/capture/chat",
        json_body={"first_name": "Nora", "last_name": "Return", "email": email, "transcript": "Back again"},
    )
    assert chat.status == 201 and chat.json()["id"] == lead_id

    lead = client.request("GET", f"/leads/{lead_id}", headers=admin).json()
    assert lead["assigned_to"] is not None and lead["lead_status"] == "new"
    assigned = [a for a in lead["activities"] if a["type"] == "lead_assigned"]
    assert [a["data"]["trigger"] for a in assigned] == ["live_chat"]


def test_a_chat_lead_is_assigned_during_the_capture(client: Client, local_stack: LocalStack) -> None:
    captured = client.request(
        "POST",
        "/capture/chat",
        json_body={
            "first_name": "Linus",
            "last_name": "Chat",
            "email": f"linus-{uuid.uuid4().hex[:8]}@example.com",
            "transcript": "Hi, I would like a demo",
        },
    )
    assert captured.status == 201

    lead = client.request(
        "GET", f"/leads/{captured.json()['id']}", headers=bearer(local_stack, "admin")
    ).json()

    assert lead["assigned_to"] is not None and lead["team"] == "sales"
    (assigned,) = [a for a in lead["activities"] if a["type"] == "lead_assigned"]
    assert assigned["data"]["trigger"] == "live_chat"


def test_a_manager_finds_a_lead_in_the_unassigned_queue_and_assigns_it_by_hand(
    client: Client, local_stack: LocalStack
) -> None:
    email = f"ada-{uuid.uuid4().hex[:8]}@example.com"
    lead_id = client.request(
        "POST", "/capture/form", data={"first_name": "Ada", "last_name": "Lowscore", "email": email}
    ).json()["id"]
    manager = bearer(local_stack, "manager")

    def in_queue() -> bool:
        page = client.request(
            "GET", "/leads/unassigned?include_nurture=true&limit=200", headers=manager
        ).json()
        return any(lead["id"] == lead_id and lead["nurture"] for lead in page["leads"])

    eventually(in_queue)  # scored low, so left to nurture and waiting in the queue
    rep2 = local_stack.seed.user(username="rep2")
    assigned = client.request(
        "POST",
        f"/leads/{lead_id}/assign",
        json_body={"assigned_to": rep2.sub, "reason": "Robin met Ada at a conference"},
        headers=manager,
    )

    assert assigned.status == 200, assigned.body
    assert assigned.json()["assigned_to"] == rep2.sub and assigned.json()["nurture"] is False
    eventually(lambda: emails_to(local_stack, rep2.email, lead_id))
    rep_view = client.request("GET", f"/leads/{lead_id}", headers=bearer(local_stack, user="rep2")).json()
    (manual,) = [a for a in rep_view["activities"] if a["type"] == "lead_assigned"]
    assert manual["data"]["reason"] == "Robin met Ada at a conference"
    assert client.request("GET", "/leads/unassigned", headers=bearer(local_stack, "rep")).status == 403


def test_the_demo_team_is_seeded_with_users_and_default_rules(
    client: Client, local_stack: LocalStack
) -> None:
    manager = bearer(local_stack, "manager")

    users = client.request("GET", "/users?team=sales", headers=bearer(local_stack, "rep")).json()["users"]
    rules = client.request("GET", "/assignment-rules", headers=manager).json()["rules"]

    assert {(u["name"], u["role"]) for u in users} >= {
        ("Morgan Manager", "manager"),
        ("Riley Rep", "rep"),
        ("Robin Rep", "rep"),
        ("Reese Rep", "rep"),
    }
    assert [r["id"] for r in rules] == ["seed-enterprise", "seed-everyone-else"]
