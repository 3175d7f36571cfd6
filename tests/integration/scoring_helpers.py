"""Helpers of the scoring integration tests: API calls as a given role, stream and SQS records built from
the sample events in events/ around the items really stored, and a drain of the rescore queue."""

import copy
import json
from typing import Any

from tests.support import event, response_json

USERS = {
    "admin": "5f0b7c1e-0a11-4d2b-9a01-000000000001",
    "manager": "5f0b7c1e-0a11-4d2b-9a01-000000000002",
    "rep1": "5f0b7c1e-0a11-4d2b-9a01-000000000011",
    "rep2": "5f0b7c1e-0a11-4d2b-9a01-000000000012",
}


def as_user(request: dict[str, Any], user: str) -> dict[str, Any]:
    role = "rep" if user.startswith("rep") else user
    claims = request["requestContext"]["authorizer"]["jwt"]["claims"]
    claims.update({"sub": USERS[user], "cognito:groups": f"[{role}]", "email": f"{user}@demo.leadflow.local"})
    return request


def api(
    invoke: Any,
    sample: str,
    *,
    user: str = "manager",
    path: str | None = None,
    params: dict[str, str] | None = None,
    body: Any = None,
    headers: dict[str, str | None] | None = None,
    method: str | None = None,
) -> tuple[int, Any, dict[str, str]]:
    """Call the scoring API function with a sample event, as `user`; returns (status, JSON body, headers).

    A header given as None is removed from the sample; `method` replaces the sample's method.
    """
    request = event(sample) if body is None else event(sample, body=body)
    for name, value in (headers or {}).items():
        request["headers"].pop(name.lower(), None)
        if value is not None:
            request["headers"][name.lower()] = value
    if path is not None:
        request["rawPath"] = path
        request["requestContext"]["http"]["path"] = path
    if params is not None:
        request["pathParameters"] = params
    if method is not None:
        request["requestContext"]["http"]["method"] = method
        template = request["routeKey"].split(" ", 1)[1]
        request["routeKey"] = request["requestContext"]["routeKey"] = f"{method} {template}"
    response = invoke("ScoringApiFunction", as_user(request, user))
    return response["statusCode"], response_json(response), response.get("headers") or {}


def capture(invoke: Any, **fields: Any) -> str:
    """A lead entered through the system API: no form submission, so its score is its fields' own."""
    body = {"first_name": "Ada", "last_name": "Lovelace", **fields}
    response = invoke("LeadsApiFunction", event("create_lead.json", body=body))
    assert response["statusCode"] in (200, 201), response
    lead_id: str = response_json(response)["id"]
    return lead_id


def partition(dynamodb: Any, table: str, lead_id: str) -> list[dict[str, Any]]:
    """Every item of a lead's partition, as DynamoDB JSON."""
    items: list[dict[str, Any]] = dynamodb.query(
        TableName=table,
        KeyConditionExpression="PK = :pk",
        ExpressionAttributeValues={":pk": {"S": f"LEAD#{lead_id}"}},
        ConsistentRead=True,
    )["Items"]
    return items


def lead_item(dynamodb: Any, table: str, lead_id: str) -> dict[str, Any]:
    item: dict[str, Any] = dynamodb.get_item(
        TableName=table, Key={"PK": {"S": f"LEAD#{lead_id}"}, "SK": {"S": "LEAD"}}, ConsistentRead=True
    )["Item"]
    return item


def activities_of(dynamodb: Any, table: str, lead_id: str, kind: str | None = None) -> list[dict[str, Any]]:
    return [
        item
        for item in partition(dynamodb, table, lead_id)
        if item["entity"]["S"] == "activity" and (kind is None or item["type"]["S"] == kind)
    ]


_SEQUENCE = [100]


def record(
    event_name: str, new_image: dict[str, Any], old_image: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A stream record shaped like the sample in events/scoring_stream.json, around a real item."""
    sample = json.loads(json.dumps(event("scoring_stream.json")["Records"][0]))
    _SEQUENCE[0] += 1
    sample["eventName"] = event_name
    sample["eventID"] = f"event-{_SEQUENCE[0]}"
    stream = sample["dynamodb"]
    stream["SequenceNumber"] = str(_SEQUENCE[0]).rjust(21, "0")
    stream["Keys"] = {"PK": new_image["PK"], "SK": new_image["SK"]}
    stream["NewImage"] = copy.deepcopy(new_image)
    if old_image is not None:
        stream["OldImage"] = copy.deepcopy(old_image)
    else:
        stream.pop("OldImage", None)
    return sample


def stream_event(*records: dict[str, Any]) -> dict[str, Any]:
    return {"Records": list(records)}


def rules_meta(dynamodb: Any, table: str) -> dict[str, Any]:
    item: dict[str, Any] = dynamodb.get_item(
        TableName=table, Key={"PK": {"S": "RULES#scoring"}, "SK": {"S": "META"}}, ConsistentRead=True
    )["Item"]
    return item


def score_new_lead(invoke: Any, dynamodb: Any, table: str, lead_id: str) -> dict[str, Any]:
    """Deliver a lead's INSERT record to the scoring function, as the stream would."""
    response: dict[str, Any] = invoke(
        "ScoringFunction", stream_event(record("INSERT", lead_item(dynamodb, table, lead_id)))
    )
    assert response == {"batchItemFailures": []}, response
    return response


def sqs_event(messages: list[dict[str, Any]]) -> dict[str, Any]:
    """SQS records shaped like events/rescore_page.json, around messages really received."""
    sample = event("rescore_page.json")["Records"][0]
    records = []
    for message in messages:
        item = copy.deepcopy(sample)
        item.update(
            messageId=message["MessageId"], receiptHandle=message["ReceiptHandle"], body=message["Body"]
        )
        records.append(item)
    return {"Records": records}


def drain_rescore_queue(
    invoke: Any, sqs: Any, queue_url: str, batch_size: int = 2, redeliver_first: bool = False
) -> int:
    """Feed the rescore worker until the queue is empty (as the event source mapping does); deletes what
    succeeded. With `redeliver_first`, the first batch is delivered twice (at-least-once delivery)."""
    batches = 0
    while True:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=batch_size).get("Messages", [])
        if not messages:
            return batches
        response = invoke("RescoreFunction", sqs_event(messages))
        if redeliver_first and batches == 0:
            assert invoke("RescoreFunction", sqs_event(messages)) == {"batchItemFailures": []}
        failed = {failure["itemIdentifier"] for failure in response["batchItemFailures"]}
        assert not failed, response
        for message in messages:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        batches += 1
