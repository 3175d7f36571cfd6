"""Follow-ups through the real local stack with its clock moved forward, as a client and a rep see them:
an assigned lead's one-day reminder arrives once, contacting the lead first cancels it, and a lead nobody
contacts escalates to the team's manager.

These tests move the stack's clock by days, so they run on a stack of their own (`clock_stack`).
"""

import time
import uuid
from typing import Any

import pytest

from devstack.stack import LocalStack

from .conftest import Client
from .test_assignment_over_http import bearer, eventually, qualifying_lead
from .test_lifecycle_over_http import patch_status

pytestmark = pytest.mark.e2e

DAY = 24 * 3600
SETTLE_SECONDS = 3.0  # long enough for a queued job to reach the outbox (they take well under a second)
MANAGER = "5f0b7c1e-0a11-4d2b-9a01-000000000002"  # devstack/seed.json


def assigned_lead(http: Client, stack: LocalStack) -> tuple[dict[str, Any], dict[str, Any]]:
    """Capture a lead that scores to sales; wait for its rep and its two follow-ups. (lead, rep)"""
    captured = http.request(
        "POST", "/capture/form", json_body=qualifying_lead(f"grace-{uuid.uuid4().hex[:8]}@navy-research.com")
    )
    assert captured.status == 201
    lead_id = captured.json()["id"]
    admin = bearer(stack, "admin")
    lead = eventually(
        lambda: (r := http.request("GET", f"/leads/{lead_id}", headers=admin).json())["assigned_to"] and r
    )
    rep = http.request("GET", f"/users/{lead['assigned_to']}", headers=admin).json()
    eventually(lambda: len(follow_ups(http, stack, rep["sub"], lead_id)) == 2)
    return lead, rep


def follow_ups(http: Client, stack: LocalStack, owner: str, lead_id: str) -> list[dict[str, Any]]:
    response = http.request("GET", f"/tasks?owner={owner}&limit=100", headers=bearer(stack, "admin"))
    assert response.status == 200
    return [t for t in response.json()["items"] if t["lead_id"] == lead_id and t["kind"] == "follow_up"]


def emails(stack: LocalStack, address: str, lead_id: str, subject_start: str) -> list[dict[str, Any]]:
    return [
        m
        for m in stack.outbox()
        if address in m["to"]
        and lead_id in (m.get("html") or "")
        and str(m["subject"]).startswith(subject_start)
    ]


def test_an_assigned_lead_gets_its_one_day_reminder_once(http: Client, clock_stack: LocalStack) -> None:
    lead, rep = assigned_lead(http, clock_stack)
    day, week = sorted(follow_ups(http, clock_stack, rep["sub"], lead["id"]), key=lambda t: t["due_at"])
    assert day["title"] == "Follow up: 1 day after assignment" and day["priority"] == "high"
    assert week["title"] == "Follow up: 1 week after assignment" and week["owner"] == rep["sub"]
    reminder = "Reminder: Follow up: 1 day after assignment"
    assert emails(clock_stack, rep["email"], lead["id"], reminder) == []

    clock_stack.advance_clock(DAY + 120)  # fires the due schedules, FollowUpsFunction among them
    clock_stack.run_schedule("FollowUpsFunction")  # and an overlapping run: nothing is sent twice
    (email,) = eventually(lambda: emails(clock_stack, rep["email"], lead["id"], reminder))
    clock_stack.run_schedule("FollowUpsFunction")
    time.sleep(SETTLE_SECONDS)

    assert len(emails(clock_stack, rep["email"], lead["id"], reminder)) == 1
    assert email["subject"] == f"{reminder} - Grace Hopper"
    assert f"{clock_stack.url}/app/#/leads/{lead['id']}" in email["html"]  # the console's lead page
    open_tasks = {t["id"]: t for t in follow_ups(http, clock_stack, rep["sub"], lead["id"])}
    assert open_tasks[day["id"]]["reminded_at"] is not None  # still open: the rep has not called yet
    assert open_tasks[week["id"]]["reminded_at"] is None
    timeline = http.request(
        "GET", f"/leads/{lead['id']}/activities", headers=bearer(clock_stack, "admin")
    ).json()
    sent = [
        a
        for a in timeline["items"]
        if a["type"] == "notification_sent" and a["data"]["kind"] == "task_reminder"
    ]
    assert len(sent) == 1


def test_contacting_the_lead_first_cancels_its_reminder(http: Client, clock_stack: LocalStack) -> None:
    lead, rep = assigned_lead(http, clock_stack)
    changed = patch_status(http, lead["id"], "contacted", bearer(clock_stack, "admin"))
    assert changed.status == 200, changed.body
    eventually(lambda: follow_ups(http, clock_stack, rep["sub"], lead["id"]) == [])

    clock_stack.advance_clock(DAY + 120)
    clock_stack.run_schedule("FollowUpsFunction")
    time.sleep(SETTLE_SECONDS)

    assert emails(clock_stack, rep["email"], lead["id"], "Reminder:") == []
    timeline = http.request(
        "GET", f"/leads/{lead['id']}/activities", headers=bearer(clock_stack, "admin")
    ).json()
    cancelled = [a for a in timeline["items"] if a["type"] == "task_cancelled"]
    assert len(cancelled) == 2 and {a["data"]["reason"] for a in cancelled} == {"lead contacted"}


def test_a_lead_nobody_contacts_escalates_to_the_team_manager(http: Client, clock_stack: LocalStack) -> None:
    lead, _rep = assigned_lead(http, clock_stack)
    manager = http.request("GET", f"/users/{MANAGER}", headers=bearer(clock_stack, "admin")).json()

    clock_stack.advance_clock(4 * DAY)  # at least one working hour, whatever the weekday
    clock_stack.run_schedule("FollowUpsFunction")
    (email,) = eventually(lambda: emails(clock_stack, manager["email"], lead["id"], "SLA missed"))

    assert email["subject"] == "SLA missed: Grace Hopper not contacted yet"
    assert "has not been contacted" in email["html"] and "team sales" in email["html"]
    timeline = http.request(
        "GET", f"/leads/{lead['id']}/activities", headers=bearer(clock_stack, "admin")
    ).json()
    assert [a["data"]["team"] for a in timeline["items"] if a["type"] == "sla_breached"] == ["sales"]
