"""Capture leads, then find them in lists, in search and in the dashboards, through the local stack's HTTP
API: the stream (LeadEventsFunction) keeps search and analytics up to date within moments."""

import time
import urllib.parse
import uuid
from datetime import UTC, datetime
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


def get(client: Client, path: str, token: str) -> Any:
    return client.request("GET", path, headers={"Authorization": f"Bearer {token}"})


def test_a_captured_lead_is_listed_searched_and_counted(client: Client, local_stack: Any) -> None:
    tag = uuid.uuid4().hex[:6]
    admin, manager, rep = (local_stack.token(role) for role in ("admin", "manager", "rep"))
    today = datetime.now(UTC).date().isoformat()
    funnel_before = get(client, f"/analytics/funnel?from={today}&to={today}", manager).json()["total"][
        "leads"
    ]
    created = client.request(
        "POST",
        "/capture/form",
        data={
            "first_name": "Zoë",
            "last_name": f"Ångström{tag}",
            "email": f"zoe.{tag}@nordique.example",
            "company": f"Société {tag}",
        },
    )
    assert created.status == 201
    lead_id = created.json()["id"]

    found = eventually(lambda: get(client, f"/leads?q=angstrom{tag}", admin).json()["items"])
    assert [item["id"] for item in found] == [lead_id]
    for prefix in (f"ANGSTRÖM{tag.upper()}", f"zoe.{tag}", f"societe {tag}"):
        page = get(
            client, "/leads?" + urllib.parse.urlencode({"q": prefix}, quote_via=urllib.parse.quote), admin
        )
        assert [item["id"] for item in page.json()["items"]] == [lead_id], prefix

    newest = get(client, f"/leads?created_from={today}&limit=100", admin).json()
    assert lead_id in {item["id"] for item in newest["items"]}
    timeline = get(client, f"/leads/{lead_id}/activities", admin)
    assert timeline.status == 200
    assert "lead_captured" in {item["type"] for item in timeline.json()["items"]}

    counted = eventually(
        lambda: (
            get(client, f"/analytics/funnel?from={today}&to={today}", manager).json()["total"]["leads"]
            > funnel_before
        )
    )
    assert counted
    sources = get(client, f"/analytics/sources?from={today}&to={today}", manager).json()["sources"]
    assert "website_form" in {figures["source"] for figures in sources}
    assert get(client, "/analytics/funnel", rep).status == 403


def test_a_tampered_cursor_and_an_unserved_combination_are_400(client: Client, local_stack: Any) -> None:
    admin = local_stack.token("admin")
    for index in range(3):
        client.request(
            "POST",
            "/capture/form",
            data={
                "first_name": "Page",
                "last_name": f"Turner{index}",
                "email": f"p{uuid.uuid4().hex[:8]}@x.example",
            },
        )
    first = get(client, "/leads?limit=1", admin).json()
    assert first["next_cursor"]
    tampered = get(client, f"/leads?limit=1&cursor={first['next_cursor'][:-4]}AAAA", admin)
    replayed = get(client, f"/leads?limit=1&status=new&cursor={first['next_cursor']}", admin)
    unserved = get(client, "/leads?source=website_form&status=new", admin)

    assert (tampered.status, tampered.json()["fields"][0]["field"]) == (400, "cursor")
    assert (replayed.status, replayed.json()["fields"][0]["field"]) == (400, "cursor")
    assert unserved.status == 400
    assert {problem["field"] for problem in unserved.json()["fields"]} == {"source", "status"}


def test_the_nightly_reconciliation_runs_on_its_schedule(local_stack: Any) -> None:
    results = local_stack.run_schedule("AnalyticsReconcileFunction")

    assert [result["ok"] for result in results] == [True], results
