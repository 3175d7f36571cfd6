"""Domain events over the local stack: a lead captured, qualified and converted over HTTP is published to
the lead-events bus (moto), one event per fact, each matching its JSON Schema, seen at /_local/events."""

import json
import time
import uuid
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from devstack.stack import LocalStack

from .conftest import Client
from .test_lifecycle_over_http import assign_directly, bearer, patch_status

pytestmark = pytest.mark.e2e

SCHEMAS = Path(__file__).resolve().parents[2] / "events" / "schemas"


def events_of(client: Client, lead_id: str, until: set[str], timeout: float = 30.0) -> list[dict[str, Any]]:
    """The published events of one lead, waiting until every name in `until` was seen."""
    deadline = time.monotonic() + timeout
    while True:
        response = client.request("GET", "/_local/events?last=500")
        assert response.status == 200, response.body
        mine = [event for event in response.json() if event["detail"].get("lead_id") == lead_id]
        mine.sort(key=lambda event: event["detail"]["occurred_at"])  # the bus does not promise order
        if until <= {event["detail-type"] for event in mine} or time.monotonic() > deadline:
            return mine
        time.sleep(0.3)


def test_a_converted_lead_tells_each_fact_once_on_the_bus(client: Client, local_stack: LocalStack) -> None:
    tag = uuid.uuid4().hex[:8]
    captured = client.request(
        "POST",
        "/capture/form",
        data={
            "first_name": "Grace",
            "last_name": "Hopper",
            "email": f"grace-{tag}@navy-{tag}.example",
            "company": f"Navy {tag}",
        },
    )
    assert captured.status == 201, captured.body
    lead_id = captured.json()["id"]
    assign_directly(local_stack, lead_id, "rep1")
    rep1 = bearer(local_stack, "rep1")
    assert patch_status(client, lead_id, "contacted", rep1).status == 200
    qualified = client.request(
        "POST",
        f"/leads/{lead_id}/qualify",
        json_body={"has_budget": True, "has_authority": True, "has_need": True, "has_timeline": True},
        headers=rep1,
    )
    assert qualified.status == 200, qualified.body
    converted = client.request("POST", f"/leads/{lead_id}/convert", json_body={"amount": 5000}, headers=rep1)
    assert converted.status == 201, converted.body
    ids = converted.json()

    expected = {
        "lead.captured",
        "lead.scored",
        "lead.assigned",
        "lead.status_changed",
        "lead.qualified",
        "lead.converted",
    }
    events = events_of(client, lead_id, expected)

    names = [event["detail-type"] for event in events]
    assert expected <= set(names), names
    for event in events:
        assert event["source"] == "leadflow"
        jsonschema.validate(
            event,
            json.loads((SCHEMAS / f"{event['detail-type']}.json").read_text()),
            format_checker=jsonschema.FormatChecker(),
        )
    assert names.count("lead.captured") == 1 and names.count("lead.converted") == 1
    assert len({event["detail"]["id"] for event in events}) == len(events)
    [conversion] = [event["detail"] for event in events if event["detail-type"] == "lead.converted"]
    assert {key: conversion[key] for key in ("contact_id", "company_id", "deal_id")} == {
        key: ids[key] for key in ("contact_id", "company_id", "deal_id")
    }
    statuses = [
        event["detail"]["changes"]["lead_status"]["new"]
        for event in events
        if event["detail-type"] == "lead.status_changed"
    ]
    assert statuses == ["contacted", "qualified", "converted"]
