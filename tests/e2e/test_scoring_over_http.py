"""Scoring through the local stack over HTTP: the stream scores captured leads, behavioural events raise
scores, and a rule change rescores the open leads through the rescore queue."""

import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from .conftest import Client

pytestmark = pytest.mark.e2e

TIMEOUT = 60.0
VP_AT_A_BIG_TECH_GOV = {"title": "VP Engineering", "industry": "Technology", "employee_count": 1200}


def eventually(probe: Callable[[], Any], what: str, timeout: float = TIMEOUT) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def capture(client: Client, **fields: Any) -> str:
    """Through the website form: its `form_submitted` activity counts 10 besides the fields."""
    body = {
        "first_name": "Ada",
        "last_name": "Lovelace",
        "email": f"e2e-{uuid.uuid4().hex[:10]}@analytical.gov",
    }
    response = client.request("POST", "/capture/form", json_body=body | VP_AT_A_BIG_TECH_GOV | fields)
    assert response.status == 201, response.body
    lead_id: str = response.json()["id"]
    return lead_id


def score(client: Client, token: str, lead_id: str) -> dict[str, Any]:
    response = client.request("GET", f"/leads/{lead_id}/score", headers={"Authorization": f"Bearer {token}"})
    assert response.status == 200, response.body
    body: dict[str, Any] = response.json()
    return body


def score_becomes(client: Client, token: str, lead_id: str, expected: int) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        current = score(client, token, lead_id)
        return current if current["scored_at"] and current["score"] == expected else None

    found: dict[str, Any] = eventually(probe, f"lead {lead_id} to score {expected}")
    return found


def finished(client: Client, token: str, job_id: str) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        response = client.request(
            "GET", f"/scoring-rules/rescore-jobs/{job_id}", headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status == 200, response.body
        job: dict[str, Any] = response.json()
        return job if job["state"] == "completed" else None

    job: dict[str, Any] = eventually(probe, f"rescore job {job_id} to complete")
    return job


def test_a_captured_lead_gets_a_score_and_grade_within_seconds(client: Client, local_stack: Any) -> None:
    token = local_stack.token("admin")
    started = time.monotonic()

    lead_id = capture(client)
    ledger = score_becomes(client, token, lead_id, 60)

    assert time.monotonic() - started < 20
    assert ledger["grade"] == "C"
    assert sum(entry["points"] for entry in ledger["entries"]) + ledger["limit_adjustment"] == 60
    lead = client.request("GET", f"/leads/{lead_id}", headers={"Authorization": f"Bearer {token}"}).json()
    assert (lead["score"], lead["grade"]) == (60, "C")
    assert "Score 0 → 60 (grade none → C)" in [a["description"] for a in lead["activities"]]


def test_a_demo_request_raises_the_score(client: Client, local_stack: Any) -> None:
    token = local_stack.token("admin")
    lead_id = capture(client)
    score_becomes(client, token, lead_id, 60)
    event_id = f"e2e-{uuid.uuid4().hex}"

    recorded = client.request(
        "POST",
        f"/leads/{lead_id}/activities",
        json_body={"type": "demo_requested", "event_id": event_id},
        headers={"Authorization": f"Bearer {token}"},
    )
    replayed = client.request(
        "POST",
        f"/leads/{lead_id}/activities",
        json_body={"type": "demo_requested", "event_id": event_id},
        headers={"Authorization": f"Bearer {token}"},
    )
    ledger = score_becomes(client, token, lead_id, 80)

    assert (recorded.status, replayed.status) == (201, 200)
    assert replayed.json()["id"] == recorded.json()["id"]
    demo = next(e for e in ledger["entries"] if e["rule_id"] == "seed-activity-demo-requested")
    assert (demo["points"], demo["activity_count"]) == (20, 1)
    assert ledger["grade"] == "A"


def test_changing_a_rule_rescores_the_open_leads(client: Client, local_stack: Any) -> None:
    token = local_stack.token("admin")
    auth = {"Authorization": f"Bearer {token}"}
    campaign = f"e2e-{uuid.uuid4().hex[:12]}"
    leads = [capture(client, campaign=campaign) for _ in range(3)]
    for lead_id in leads:
        score_becomes(client, token, lead_id, 60)
    rule = {
        "name": "E2E campaign",
        "category": "firmographic",
        "field": "custom_fields.campaign",
        "operator": "equals",
        "value": campaign,
        "points": 7,
    }

    created = client.request("POST", "/scoring-rules", json_body=rule, headers=auth)
    assert created.status == 201, created.body
    rule_id, first_job = created.json()["rule"]["id"], created.json()["rescore_job"]["job_id"]
    job = finished(client, token, first_job)
    scores_after_create = [score(client, token, lead_id)["score"] for lead_id in leads]

    changed = client.request(
        "PATCH", f"/scoring-rules/{rule_id}", json_body={"points": 9}, headers={**auth, "If-Match": '"1"'}
    )
    assert changed.status == 200, changed.body
    finished(client, token, changed.json()["rescore_job"]["job_id"])
    scores_after_change = [score(client, token, lead_id)["score"] for lead_id in leads]

    deleted = client.request("DELETE", f"/scoring-rules/{rule_id}", headers=auth)
    assert deleted.status == 200, deleted.body
    finished(client, token, deleted.json()["rescore_job"]["job_id"])

    assert scores_after_create == [67, 67, 67]
    assert scores_after_change == [69, 69, 69]
    assert job["total_final"] and job["leads_done"] == job["leads_total"] >= 3
    assert job["progress"].startswith(f"{job['leads_done']} of {job['leads_total']} leads rescored")
    assert [score(client, token, lead_id)["score"] for lead_id in leads] == [60, 60, 60]


def test_reps_may_not_change_the_rules(client: Client, local_stack: Any) -> None:
    rep = {"Authorization": f"Bearer {local_stack.token('rep')}"}
    rule = {"name": "x", "category": "demographic", "field": "title", "operator": "exists", "points": 1}

    created = client.request("POST", "/scoring-rules", json_body=rule, headers=rep)
    anonymous = client.request("POST", "/scoring-rules", json_body=rule)

    assert created.status == 403 and created.json()["error"] == "forbidden"
    assert anonymous.status == 401  # the gateway's JWT authorizer


def plain_lead(client: Client, auth: dict[str, str], **fields: Any) -> str:
    """A lead no default rule gives points to: a .com address, no title, company or activity."""
    body = {"first_name": "Plain", "last_name": "Lead", "email": f"e2e-{uuid.uuid4().hex[:10]}@example.com"}
    created = client.request("POST", "/leads", json_body=body | fields, headers=auth)
    assert created.status == 201, created.body
    lead_id: str = created.json()["id"]
    return lead_id


@pytest.mark.parametrize(
    "custom_fields",
    [{}, {"preferences": {}, "steps": [{}]}],  # DynamoDB Local's stream writes each of these maps as {}
    ids=["no custom fields", "empty objects inside"],
)
def test_a_lead_no_rule_matches_is_graded_f_within_seconds(
    client: Client, local_stack: Any, custom_fields: dict[str, Any]
) -> None:
    token = local_stack.token("admin")
    auth = {"Authorization": f"Bearer {token}"}
    started = time.monotonic()

    lead_id = plain_lead(client, auth, custom_fields=custom_fields)

    # The stream scores it: 0 points, grade F, an empty ledger, and when it was scored
    ledger = score_becomes(client, token, lead_id, 0)
    assert time.monotonic() - started < 10
    assert (ledger["grade"], ledger["entries"]) == ("F", [])
    lead = client.request("GET", f"/leads/{lead_id}", headers=auth).json()
    assert (lead["score"], lead["grade"], lead["custom_fields"]) == (0, "F", custom_fields)


@pytest.mark.parametrize("title", ["C-level", "c-LEVEL executive", "Chief Revenue Officer"])
def test_a_c_level_title_scores_20(client: Client, local_stack: Any, title: str) -> None:
    """The specification's title rule checks the literal text `C-level` as well as the executive titles."""
    token = local_stack.token("admin")
    lead_id = plain_lead(client, {"Authorization": f"Bearer {token}"}, title=title)

    ledger = score_becomes(client, token, lead_id, 20)
    assert [entry["points"] for entry in ledger["entries"]] == [20]


def set_active(client: Client, auth: dict[str, str], rule_id: str, active: bool) -> dict[str, Any]:
    current = client.request("GET", f"/scoring-rules/{rule_id}", headers=auth)
    assert current.status == 200, current.body
    changed = client.request(
        "PATCH",
        f"/scoring-rules/{rule_id}",
        json_body={"active": active},
        headers={**auth, "If-Match": current.headers["ETag"]},
    )
    assert changed.status == 200, changed.body
    body: dict[str, Any] = changed.json()
    return body


def test_switching_on_the_quick_start_email_rule_gives_20_for_more_than_5_opens(
    client: Client, local_stack: Any
) -> None:
    token = local_stack.token("manager")
    auth = {"Authorization": f"Bearer {token}"}
    quick_start = "seed-quick-start-email-opens"
    shipped = client.request("GET", f"/scoring-rules/{quick_start}", headers=auth).json()
    assert (shipped["active"], shipped["count_operator"], shipped["count_value"], shipped["points"]) == (
        False,
        "gt",
        5,
        20,
    )
    # Given a scored lead that opened 6 emails (2 points each by the default per-activity rule)
    lead_id = capture(client)
    base: dict[str, Any] = eventually(
        lambda: (current := score(client, token, lead_id))["scored_at"] and current, f"{lead_id} scored"
    )
    for _ in range(6):
        opened = client.request(
            "POST", f"/leads/{lead_id}/activities", json_body={"type": "email_opened"}, headers=auth
        )
        assert opened.status == 201, opened.body
    before = score_becomes(client, token, lead_id, base["score"] + 12)["score"]

    # When a manager switches the quick-start rule on
    switched_on = set_active(client, auth, quick_start, True)
    try:
        finished(client, token, switched_on["rescore_job"]["job_id"])
        after = score(client, token, lead_id)
    finally:
        finished(client, token, set_active(client, auth, quick_start, False)["rescore_job"]["job_id"])

    # Then the lead's score moves by 20, and its ledger says why
    assert after["score"] - before == 20
    entry = next(e for e in after["entries"] if e["rule_id"] == quick_start)
    assert (entry["points"], entry["raw_points"], entry["activity_count"]) == (20, 20, 6)
    assert score(client, token, lead_id)["score"] == before  # switched off again: back where it was


def test_a_count_rule_that_makes_no_sense_is_a_422_naming_the_field(client: Client, local_stack: Any) -> None:
    auth = {"Authorization": f"Bearer {local_stack.token('manager')}"}
    rule = {
        "name": "Fewer than 2 visits",
        "category": "behavioural",
        "field": "activity.type",
        "operator": "equals",
        "value": "page_viewed",
        "points": -5,
    }

    answers = [
        client.request("POST", "/scoring-rules", json_body=rule | changes, headers=auth)
        for changes in (
            {"count_operator": "lt", "count_value": 2},
            {"count_operator": "gt"},
            {"count_value": 2},
            {"count_operator": "gt", "count_value": 2, "cap": 10},
            {"category": "firmographic", "field": "industry", "count_operator": "gt", "count_value": 2},
        )
    ]

    assert [a.status for a in answers] == [422] * 5
    assert [[p["field"] for p in a.json()["fields"]] for a in answers] == [
        ["count_operator"],
        ["count_value"],
        ["count_value"],
        ["cap"],
        ["count_operator"],
    ]
