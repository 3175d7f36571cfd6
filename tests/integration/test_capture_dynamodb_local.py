"""Races and replays against Amazon's DynamoDB Local: real transactions, real conditional writes."""

import json
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from crm.capture.webhooks import sign

from devstack.template import Template
from tests.support import FakeLambdaContext, event, load_handler, response_json

pytestmark = pytest.mark.ddblocal


def unique_email() -> str:
    return f"race-{uuid.uuid4().hex[:12]}@example.com"


def items_for_email(stack: dict[str, Any], email: str) -> tuple[int, list[str]]:
    """(email claims, lead ids) stored for an email: read back with keyed reads and a Query."""
    dynamodb, table = stack["dynamodb"], stack["table"]
    claim = dynamodb.get_item(TableName=table, Key={"PK": {"S": f"EMAIL#{email}"}, "SK": {"S": "EMAIL"}})
    claims = 1 if "Item" in claim else 0
    lead_ids: list[str] = []
    request: dict[str, Any] = {
        "TableName": table,
        "FilterExpression": "entity = :lead AND email = :email",
        "ExpressionAttributeValues": {":lead": {"S": "lead"}, ":email": {"S": email}},
    }
    while True:
        page = dynamodb.scan(**request)
        lead_ids += [item["id"]["S"] for item in page["Items"]]
        if "LastEvaluatedKey" not in page:
            break
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return claims, lead_ids


def handlers(template: Template, logical_id: str, count: int) -> list[Any]:
    """One handler per concurrent caller, each in its own module copy (its own execution environment)."""
    function = template.function(logical_id)
    return [load_handler(function, copy=index) for index in range(count)]


def test_fifty_concurrent_captures_of_one_new_email_make_exactly_one_lead(
    template: Template, local_aws: dict[str, Any]
) -> None:
    email = unique_email()
    environments = handlers(template, "CaptureFunction", 50)
    start = threading.Barrier(50)

    def submit(index: int) -> dict[str, Any]:
        request = event(
            "capture_form_json.json",
            body={
                "first_name": "Race",
                "last_name": f"Runner {index}",
                "email": email,
                "company": f"Co {index}",
            },
        )
        start.wait()
        return environments[index](request, FakeLambdaContext(function_name="capture"))

    with ThreadPoolExecutor(max_workers=50) as pool:
        responses = list(pool.map(submit, range(50)))

    # The public form answers 201 {id} whether it created or merged: the timeline tells which.
    assert {r["statusCode"] for r in responses} == {201}, [r["statusCode"] for r in responses]
    lead_id = response_json(responses[0])["id"]
    assert {response_json(r)["id"] for r in responses} == {lead_id}
    claims, lead_ids = items_for_email(local_aws, email)
    assert claims == 1
    assert lead_ids == [lead_id]
    timeline = local_aws["dynamodb"].query(
        TableName=local_aws["table"],
        KeyConditionExpression="PK = :pk AND begins_with(SK, :activity)",
        ExpressionAttributeValues={":pk": {"S": f"LEAD#{lead_id}"}, ":activity": {"S": "ACTIVITY#"}},
    )["Items"]
    kinds = [item["type"]["S"] for item in timeline]
    assert (kinds.count("lead_captured"), kinds.count("submission_merged")) == (1, 49)


def test_a_replayed_idempotency_key_makes_one_lead_even_when_replays_race(
    template: Template, local_aws: dict[str, Any]
) -> None:
    email = unique_email()
    environments = handlers(template, "CaptureFunction", 11)
    request = event(
        "capture_form_json.json",
        body={"first_name": "Idem", "last_name": "Potent", "email": email},
        headers={"Idempotency-Key": f"key-{uuid.uuid4()}"},
    )
    start = threading.Barrier(10)

    def submit(index: int) -> dict[str, Any]:
        start.wait()
        return environments[index](request, FakeLambdaContext(function_name="capture"))

    with ThreadPoolExecutor(max_workers=10) as pool:
        racing = list(pool.map(submit, range(10)))
    replay = environments[10](request, FakeLambdaContext(function_name="capture"))

    # A replay that arrives while the first is still running is told to retry (409), never served twice.
    assert {r["statusCode"] for r in racing} <= {201, 409}
    assert replay["statusCode"] == 201
    first_id = response_json(replay)["id"]
    assert all(response_json(r)["id"] == first_id for r in racing if r["statusCode"] == 201)
    claims, lead_ids = items_for_email(local_aws, email)
    assert (claims, lead_ids) == (1, [first_id])
    timeline = local_aws["dynamodb"].query(
        TableName=local_aws["table"],
        KeyConditionExpression="PK = :pk AND begins_with(SK, :activity)",
        ExpressionAttributeValues={":pk": {"S": f"LEAD#{first_id}"}, ":activity": {"S": "ACTIVITY#"}},
    )
    # lead_captured and form_submitted: the replays did not even record a merge
    assert timeline["Count"] == 2


@pytest.mark.parametrize("problem", ["missing", "stale", "wrong"])
def test_a_webhook_with_a_bad_signature_is_401_and_stores_nothing(
    template: Template, local_aws: dict[str, Any], problem: str
) -> None:
    email = unique_email()
    body = json.dumps({"first_name": "K", "last_name": "J", "email": email}).encode()
    now = int(time.time())
    headers = {
        "missing": {},
        "stale": {"X-Signature": f"t={now - 301},v1={sign('test-partner-secret', now - 301, body)}"},
        "wrong": {"X-Signature": f"t={now},v1={sign('guess', now, body)}"},
    }[problem]
    request = event("partner_webhook.json", body=body.decode(), headers=headers)
    if problem == "missing":
        request["headers"].pop("x-signature")
    handler = load_handler(template.function("CaptureFunction"))

    response = handler(request, FakeLambdaContext(function_name="capture"))

    assert response["statusCode"] == 401
    assert items_for_email(local_aws, email) == (0, [])


def test_a_correctly_signed_webhook_is_stored(template: Template, local_aws: dict[str, Any]) -> None:
    email = unique_email()
    body = json.dumps({"first_name": "K", "last_name": "J", "email": email}).encode()
    now = int(time.time())
    request = event(
        "partner_webhook.json",
        body=body.decode(),
        headers={"X-Signature": f"t={now},v1={sign('test-partner-secret', now, body)}"},
    )
    response = load_handler(template.function("CaptureFunction"))(request, FakeLambdaContext("capture"))
    assert response["statusCode"] == 201
    assert items_for_email(local_aws, email) == (1, [response_json(response)["id"]])


def test_a_hundred_public_submissions_for_one_email_leave_the_lead_small_and_writable(
    template: Template, local_aws: dict[str, Any]
) -> None:
    """Each submission brings 15 new 1 KB fields: unbounded, the item would pass DynamoDB's 400 KB limit
    after about 25 of them and nothing could write the lead any more."""
    email = unique_email()
    capture = load_handler(template.function("CaptureFunction"))
    answers = []
    for round_ in range(100):
        fields = {f"extra_{round_}_{n}": "v" * 1000 for n in range(15)}
        body = {"first_name": "Flo", "last_name": "Od", "email": email, **fields}
        response = capture(event("capture_form_json.json", body=body), FakeLambdaContext("capture"))
        answers.append((response["statusCode"], response_json(response)))
    assert {status for status, _ in answers} == {201}
    lead_id = answers[0][1]["id"]
    assert all(body == {"id": lead_id} for _, body in answers)

    dynamodb, table = local_aws["dynamodb"], local_aws["table"]
    key = {"PK": {"S": f"LEAD#{lead_id}"}, "SK": {"S": "LEAD"}}
    stored = dynamodb.get_item(TableName=table, Key=key)["Item"]
    assert len(json.dumps(stored)) < 40_000
    assert stored["lead_status"]["S"] == "new"

    leads_api = load_handler(template.function("LeadsApiFunction"))
    patch = event(
        "update_lead.json",
        rawPath=f"/leads/{lead_id}",
        pathParameters={"id": lead_id},
        body={"phone": "+44 20 7946 0001"},
        headers={"If-Match": f'"{stored["version"]["N"]}"'},
    )
    patched = leads_api(patch, FakeLambdaContext("leads"))
    assert patched["statusCode"] == 200, patched
    assert response_json(patched)["phone"] == "+44 20 7946 0001"

    activities = dynamodb.query(
        TableName=table,
        KeyConditionExpression="PK = :pk AND begins_with(SK, :activity)",
        ExpressionAttributeValues={":pk": {"S": f"LEAD#{lead_id}"}, ":activity": {"S": "ACTIVITY#"}},
    )["Items"]
    dropped = [a for a in activities if a["type"]["S"] == "custom_fields_dropped"]
    assert dropped, "the fields left out must be on the timeline"
    assert all(int(a["data"]["M"]["count"]["N"]) > 0 for a in dropped)
