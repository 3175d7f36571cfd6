"""The public capture function's role allows what its code does, and nothing like a Scan or a lead deletion.

Every AWS call the function makes while it captures (form, repeat, chat with assignment, partner webhook,
Idempotency-Key replay) is recorded and checked against the role's statements in template.yaml. Local
stacks do not enforce IAM, so without this a permission missing from the template would show only in AWS.
"""

import threading
import time
from collections.abc import Iterator
from typing import Any

import botocore.client
import pytest
from crm.capture.webhooks import sign

from devstack.template import Template
from tests.support import PARTNER_SECRET, body_bytes, event

pytestmark = pytest.mark.usefixtures("moto_stack")

# What each transaction item needs, by IAM's rules for DynamoDB transactions.
_TRANSACTION_ITEM_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
}


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, str, dict[str, Any]]]]:
    made: list[tuple[str, str, dict[str, Any]]] = []
    original = botocore.client.BaseClient._make_api_call  # type: ignore[attr-defined]
    # The handler runs in this thread; a local stack another test of this worker started runs pumps in
    # others, whose calls are not capture's.
    this_thread = threading.get_ident()

    def recording(client: Any, operation: str, params: dict[str, Any]) -> Any:
        if threading.get_ident() == this_thread:
            made.append((client.meta.service_model.service_name, operation, params))
        return original(client, operation, params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", recording)
    yield made


def dynamodb_needs(operation: str, params: dict[str, Any]) -> list[tuple[str, str | None]]:
    """(IAM action, partition key) pairs one DynamoDB call needs."""
    if operation == "TransactWriteItems":
        return [
            (f"dynamodb:{_TRANSACTION_ITEM_ACTIONS[kind]}", body["Key"]["PK"]["S"] if "Key" in body else None)
            for item in params["TransactItems"]
            for kind, body in item.items()
        ]
    if operation == "TransactGetItems":
        return [("dynamodb:GetItem", None) for _ in params["TransactItems"]]
    key = params.get("Key", {}).get("PK", {}).get("S")
    return [(f"dynamodb:{operation}", key)]


def allows(statements: list[dict[str, Any]], action: str, partition: str | None) -> bool:
    for statement in statements:
        granted = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        if statement["Effect"] != "Allow" or action not in granted:
            continue
        condition = statement.get("Condition")
        if condition is None:
            return True
        leading_keys = condition["ForAllValues:StringEquals"]["dynamodb:LeadingKeys"]
        if partition in leading_keys:
            return True
    return False


def capture_role(template: Template) -> list[dict[str, Any]]:
    role = template.resources["CaptureFunctionRole"]["Properties"]
    return [s for policy in role["Policies"] for s in policy["PolicyDocument"]["Statement"]]


def test_every_call_capture_makes_is_allowed_by_its_role(
    invoke: Any, template: Template, calls: list[tuple[str, str, dict[str, Any]]]
) -> None:
    body = body_bytes(event("partner_webhook.json"))
    timestamp = int(time.time())
    webhook = event(
        "partner_webhook.json",
        body=body.decode(),
        headers={"X-Signature": f"t={timestamp},v1={sign(PARTNER_SECRET, timestamp, body)}"},
    )
    keyed = event("capture_form_json.json", headers={"Idempotency-Key": "retry-1"})
    for logical_id, request in [
        ("CaptureFunction", event("capture_form_urlencoded.json")),
        ("CaptureFunction", event("capture_form_urlencoded.json")),  # a repeat merges
        ("CaptureFunction", event("capture_chat.json")),  # assigned at once, or waits
        ("CaptureFunction", webhook),
        ("CaptureFunction", keyed),
        ("CaptureFunction", keyed),  # the replay answers from the idempotency record
    ]:
        assert invoke(logical_id, request)["statusCode"] < 300

    statements = capture_role(template)
    dynamodb = [(op, params) for service, op, params in calls if service == "dynamodb"]
    assert {op for op, _ in dynamodb} >= {"PutItem", "GetItem", "Query", "UpdateItem", "TransactWriteItems"}
    refused = [
        (op, action, partition)
        for op, params in dynamodb
        for action, partition in dynamodb_needs(op, params)
        if not allows(statements, action, partition)
    ]
    assert refused == []
    assert not [op for op, _ in dynamodb if op in ("Scan", "DeleteItem", "BatchWriteItem")]

    sent_to = {params["QueueUrl"].rsplit("/", 1)[-1] for _, op, params in calls if op == "SendMessage"}
    sqs_resources = {s["Resource"] for s in statements if "sqs:SendMessage*" in s["Action"]}
    assert {f"arn:aws:sqs:us-east-1:000000000000:{queue}" for queue in sent_to} <= sqs_resources
