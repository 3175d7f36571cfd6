"""The second half of a lead's life through the local stack's HTTP API, as a client would live it:
capture → contacted (with If-Match) → qualified → converted → the contact, company and deal read back."""

import time
import uuid
from typing import Any

import pytest
from crm.leads.repository import LeadRepository
from crm.platform.errors import VersionConflict

from devstack.stack import LocalStack

from .conftest import Client, Response

pytestmark = pytest.mark.e2e


def bearer(local_stack: LocalStack, user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {local_stack.token(user=user)}"}


def assign_directly(local_stack: LocalStack, lead_id: str, username: str) -> None:
    """Give the lead to a demo rep in the stack's table, as the assignment engine would (not under test)."""
    assert local_stack.template is not None
    table = local_stack.template.function("LeadsApiFunction").environment["TABLE_NAME"]
    repository = LeadRepository(table, client=local_stack.clients.dynamodb)
    sub = local_stack.seed.user(username=username).sub
    for _ in range(20):  # stream consumers (scoring) may write the lead meanwhile: read again and retry
        lead = repository.get(lead_id)
        assert lead is not None
        try:
            repository.replace(lead.model_copy(update={"assigned_to": sub}), lead.version, [])
            return
        except VersionConflict:
            time.sleep(0.1)
    raise AssertionError("could not assign the lead")


def patch_status(client: Client, lead_id: str, status: str, headers: dict[str, str]) -> Response:
    """PATCH with the version just read (ETag → If-Match); on 409 read again, as a careful client does."""
    for _ in range(10):
        current = client.request("GET", f"/leads/{lead_id}", headers=headers)
        assert current.status == 200, current.body
        response = client.request(
            "PATCH",
            f"/leads/{lead_id}",
            json_body={"lead_status": status},
            headers={**headers, "If-Match": current.headers["ETag"]},
        )
        if response.status != 409:
            return response
        assert response.json()["current_version"] > current.json()["version"]
    raise AssertionError("the lead kept changing under the edit")


def test_a_lead_goes_from_capture_to_a_contact_company_and_deal(
    client: Client, local_stack: LocalStack
) -> None:
    tag = uuid.uuid4().hex[:8]
    captured = client.request(
        "POST",
        "/capture/form",
        data={
            "first_name": "Katherine",
            "last_name": "Johnson",
            "email": f"katherine-{tag}@orbital-{tag}.example",
            "company": f"Orbital {tag} Mechanics, Inc.",
        },
    )
    assert captured.status == 201, captured.body
    lead_id = captured.json()["id"]
    assign_directly(local_stack, lead_id, "rep1")
    rep1, rep2 = bearer(local_stack, "rep1"), bearer(local_stack, "rep2")

    contacted = patch_status(client, lead_id, "contacted", rep1)
    assert contacted.status == 200, contacted.body
    assert contacted.json()["lead_status"] == "contacted"
    assert contacted.headers["ETag"] == f'"{contacted.json()["version"]}"'

    qualified = client.request(
        "POST",
        f"/leads/{lead_id}/qualify",
        json_body={"has_budget": True, "has_authority": True, "has_need": True, "has_timeline": True},
        headers=rep1,
    )
    assert qualified.status == 200, qualified.body
    assert qualified.json()["lead"]["lead_status"] == "qualified"
    task = qualified.json()["task"]
    tasks = client.request("GET", "/tasks?owner=me", headers=rep1).json()["items"]
    assert task["id"] in [t["id"] for t in tasks]

    converted = client.request("POST", f"/leads/{lead_id}/convert", json_body={"amount": 12000}, headers=rep1)
    assert converted.status == 201, converted.body
    result = converted.json()
    again = client.request("POST", f"/leads/{lead_id}/convert", json_body={}, headers=rep1)
    assert again.status == 200
    assert {k: again.json()[k] for k in ("contact_id", "company_id", "deal_id")} == {
        k: result[k] for k in ("contact_id", "company_id", "deal_id")
    }

    contact = read(client, f"/contacts/{result['contact_id']}", rep1)
    company = read(client, f"/companies/{result['company_id']}", rep1)
    deal = read(client, f"/deals/{result['deal_id']}", rep1)
    assert (contact["last_name"], contact["company_id"]) == ("Johnson", company["id"])
    assert (company["name"], company["domain"]) == (
        f"Orbital {tag} Mechanics, Inc.",
        f"orbital-{tag}.example",
    )
    assert (deal["name"], deal["stage"], deal["contact_id"]) == (
        f"Orbital {tag} Mechanics, Inc. - Opportunity",
        "qualification",
        contact["id"],
    )
    lead = read(client, f"/leads/{lead_id}", rep1)
    assert (lead["lead_status"], lead["converted"], lead["contact_id"]) == ("converted", True, contact["id"])
    assert {"status_changed", "lead_qualified", "lead_converted"} <= {a["type"] for a in lead["activities"]}

    # Another rep does not even learn that the lead or what it became exist.
    for method, path, body in (
        ("GET", f"/leads/{lead_id}", None),
        ("PATCH", f"/leads/{lead_id}", {"title": "X", "version": lead["version"]}),
        ("POST", f"/leads/{lead_id}/convert", {}),
        ("GET", f"/contacts/{contact['id']}", None),
        ("GET", f"/deals/{deal['id']}", None),
    ):
        response = client.request(method, path, json_body=body, headers=rep2)
        assert response.status == 404, (method, path, response.body)


def read(client: Client, path: str, headers: dict[str, str]) -> Any:
    response = client.request("GET", path, headers=headers)
    assert response.status == 200, (path, response.body)
    return response.json()
