"""A person's data on request through the local stack's HTTP API, as an admin would do it: a person captured
by the website form (custom fields) and a chat (transcript), assigned, qualified and converted; their export
holds the marker put in their transcript and custom fields; the erasure (202, then completed) leaves nothing
of them in the table, in search or behind any route, and another lead of the same company untouched."""

import json
import time
import uuid
from typing import Any

import pytest

from devstack.stack import LocalStack

from .conftest import Client
from .test_lifecycle_over_http import assign_directly, bearer, patch_status, read

pytestmark = pytest.mark.e2e


def scan_for(local_stack: LocalStack, needles: list[str]) -> list[dict[str, Any]]:
    """Items of the whole table holding any needle (a Scan: test code only)."""
    assert local_stack.template is not None
    table = local_stack.template.function("LeadsApiFunction").environment["TABLE_NAME"]
    dynamodb = local_stack.clients.dynamodb
    found: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"TableName": table, "ConsistentRead": True}
    while True:
        page = dynamodb.scan(**kwargs)
        found += [
            item for item in page["Items"] if any(n.lower() in json.dumps(item).lower() for n in needles)
        ]
        if "LastEvaluatedKey" not in page:
            return found
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def eventually(check: Any, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.5)


def test_an_admin_exports_then_erases_a_person_over_http(client: Client, local_stack: LocalStack) -> None:
    tag = uuid.uuid4().hex[:8]
    marker = f"marker{uuid.uuid4().hex}"
    email, last, phone = (
        f"grace-{tag}@navy-{tag}.example",
        f"Hopper{tag}",
        f"+1 555 {uuid.uuid4().int % 10**7:07d}",
    )
    domain = f"navy-{tag}.example"
    admin, rep1 = bearer(local_stack, "admin"), bearer(local_stack, "rep1")
    form = client.request(
        "POST",
        "/capture/form",
        data={
            "first_name": "Grace",
            "last_name": last,
            "email": email,
            "phone": phone,
            "company": f"Navy {tag}",
            "wish": f"tell {marker}",
        },
    )
    assert form.status == 201, form.body
    lead_id = form.json()["id"]
    chat = client.request(
        "POST",
        "/capture/chat",
        json_body={
            "first_name": "Grace",
            "last_name": last,
            "email": email,
            "chat_id": f"chat-{tag}",
            "transcript": [{"author": "visitor", "text": f"I am {marker}"}],
        },
    )
    assert chat.status in (200, 201), chat.body
    other = client.request(
        "POST",
        "/capture/form",
        data={"first_name": "Other", "last_name": f"Person{tag}", "email": f"other-{tag}@{domain}"},
    )
    assert other.status == 201, other.body
    assign_directly(local_stack, lead_id, "rep1")
    assert patch_status(client, lead_id, "contacted", rep1).status == 200
    qualified = client.request(
        "POST",
        f"/leads/{lead_id}/qualify",
        json_body={"has_budget": True, "has_authority": True, "has_need": True, "has_timeline": True},
        headers=rep1,
    )
    assert qualified.status == 200, qualified.body
    converted = client.request("POST", f"/leads/{lead_id}/convert", json_body={"amount": 500}, headers=rep1)
    assert converted.status == 201, converted.body
    contact_id = converted.json()["contact_id"]
    assert eventually(lambda: read(client, f"/leads?q={last.lower()}", admin)["items"])

    export = client.request("GET", f"/privacy/export?email={email}", headers=admin)
    assert export.status == 200, export.body
    assert marker in export.body.decode() and export.json()["lead"]["id"] == lead_id
    assert export.json()["contact"]["id"] == contact_id and export.json()["tasks"]
    assert client.request("GET", f"/privacy/export?email={email}", headers=rep1).status == 403

    erasure = client.request(
        "POST",
        "/privacy/erasures",
        json_body={"email": email, "reason": f"ticket {tag}", "include_converted": True},
        headers=admin,
    )
    assert erasure.status == 202, erasure.body
    assert erasure.json()["state"] == "queued"
    job_path = f"/privacy/erasures/{erasure.json()['id']}"
    job = eventually(lambda: (j := read(client, job_path, admin))["state"] == "completed" and j)
    assert job, read(client, job_path, admin)
    assert job["leads_erased"] == 1 and job["erased"]["contact"] == 1 and email not in json.dumps(job)

    assert client.request("GET", f"/leads/{lead_id}", headers=admin).status == 404
    assert client.request("GET", f"/contacts/{contact_id}", headers=admin).status == 404
    assert eventually(lambda: not read(client, f"/leads?q={last.lower()}", admin)["items"])
    empty = client.request("GET", f"/privacy/export?email={email}", headers=admin).json()
    assert empty["lead"] is None and marker not in json.dumps(empty)
    # Stream consumers settle; then nothing of the person is left anywhere in the table.
    assert eventually(lambda: not scan_for(local_stack, [email, last, phone, marker]), 30), scan_for(
        local_stack, [email, last, phone, marker]
    )
    assert read(client, f"/leads/{other.json()['id']}", admin)["last_name"] == f"Person{tag}"
