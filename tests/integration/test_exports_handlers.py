"""The export routes and the export worker through the real handler (sample events from events/), on moto:
a manager's export is accepted (202), queued, written by the worker from the SQS sample event and readable
back from S3 with the leads the manager's list holds; reps and people with no role are refused, bad bodies
get a 4xx naming the field."""

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from devstack.template import Template
from tests.integration.assignment_env import create_template_queues
from tests.lead_data import lead, store_leads
from tests.support import event, response_json

MANAGER = {"sub": "11111111-1111-4111-8111-000000000002", "cognito:groups": "[manager]"}
REP = {"sub": "11111111-1111-4111-8111-000000000011", "cognito:groups": "[rep]"}
NOBODY = {"sub": "11111111-1111-4111-8111-000000000099"}


def as_caller(sample: dict[str, Any], claims: dict[str, str]) -> dict[str, Any]:
    sample["requestContext"]["authorizer"]["jwt"]["claims"] = claims
    return sample


def at_path(sample: dict[str, Any], path: str) -> dict[str, Any]:
    sample["rawPath"] = sample["requestContext"]["http"]["path"] = path
    return sample


@pytest.fixture
def exports_aws(
    moto_stack: dict[str, Any], template: Template, monkeypatch: pytest.MonkeyPatch, function_env: Any
) -> Iterator[dict[str, Any]]:
    sqs = boto3.client("sqs", region_name="us-east-1")
    urls = create_template_queues(sqs, template)
    monkeypatch.setenv("CURSOR_SIGNING_KEY", "handler-test-cursor-key")
    bucket = function_env("ExportsFunction")["EXPORTS_BUCKET"]
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=bucket)
    yield {**moto_stack, "sqs": sqs, "queue": urls["ExportQueue"], "s3": s3, "bucket": bucket}


def received(sqs: Any, url: str) -> list[dict[str, Any]]:
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"]) for m in messages]


def test_a_managers_export_is_written_by_the_worker_and_readable_from_s3(
    exports_aws: dict[str, Any], invoke: Any
) -> None:
    now = datetime.now(UTC) - timedelta(minutes=1)
    unrouted = [lead(now, first_name="Zoë", last_name=f"Test{n}") for n in range(3)]  # every manager's
    elsewhere = lead(now, team="partners", assigned_to="rep-9")  # another team's: not this manager's
    store_leads(exports_aws["dynamodb"], exports_aws["table"], [*unrouted, elsewhere])

    answer = invoke("ExportsFunction", event("create_export.json"))
    assert answer["statusCode"] == 202, answer
    accepted = response_json(answer)
    assert set(accepted) == {"id", "state"} and accepted["state"] == "queued"
    assert answer["headers"]["Location"] == f"/exports/{accepted['id']}"
    pages = received(exports_aws["sqs"], exports_aws["queue"])
    assert pages == [{"export_id": accepted["id"], "part": 1}]

    page = event("export_page.json")
    page["Records"][0]["body"] = json.dumps(pages[0])
    assert invoke("ExportsFunction", page) == {"batchItemFailures": []}

    status = at_path(event("get_export.json"), f"/exports/{accepted['id']}")
    job = response_json(invoke("ExportsFunction", status))
    assert job["state"] == "completed", job
    assert job["rows_written"] == 3
    assert job["filters"]["status"] == "new" and job["download_url"]
    objects = exports_aws["s3"].list_objects_v2(Bucket=exports_aws["bucket"])["Contents"]
    (stored,) = [o for o in objects if accepted["id"] in o["Key"]]
    data = exports_aws["s3"].get_object(Bucket=exports_aws["bucket"], Key=stored["Key"])["Body"].read()
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    assert sorted(row["id"] for row in rows) == sorted(one.id for one in unrouted)

    listed = response_json(invoke("ExportsFunction", event("list_exports.json")))
    assert [item["id"] for item in listed["items"]] == [accepted["id"]]
    assert listed["next_cursor"] is None


@pytest.mark.parametrize(
    ("claims", "status"),
    [(REP, 403), (NOBODY, 403)],
)
def test_reps_and_people_without_a_role_are_refused(
    exports_aws: dict[str, Any], invoke: Any, claims: dict[str, str], status: int
) -> None:
    for sample in ("create_export.json", "list_exports.json", "get_export.json"):
        answer = invoke("ExportsFunction", as_caller(event(sample), claims))
        assert answer["statusCode"] == status, (sample, answer)
    assert received(exports_aws["sqs"], exports_aws["queue"]) == []


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ("{not json", 400, None),
        ({"colour": "red"}, 422, "colour"),
        ({"min_score": "10"}, 422, "min_score"),
        ({"created_from": "yesterday"}, 422, "created_from"),
        ({"q": "ad", "status": "new"}, 400, "status"),
        ({"min_score": 50, "sort": "created_at"}, 400, "min_score"),
    ],
)
def test_bad_requests_name_the_field_and_queue_nothing(
    exports_aws: dict[str, Any], invoke: Any, body: Any, status: int, field: str | None
) -> None:
    answer = invoke("ExportsFunction", event("create_export.json", body=body))
    assert answer["statusCode"] == status, answer
    if field is not None:
        assert field in {f["field"] for f in response_json(answer)["fields"]}
    assert received(exports_aws["sqs"], exports_aws["queue"]) == []


def test_another_managers_export_is_not_found(exports_aws: dict[str, Any], invoke: Any) -> None:
    accepted = response_json(invoke("ExportsFunction", event("create_export.json")))
    other = {"sub": "11111111-1111-4111-8111-000000000003", "cognito:groups": "[manager]"}
    path = f"/exports/{accepted['id']}"
    assert (
        invoke("ExportsFunction", as_caller(at_path(event("get_export.json"), path), other))["statusCode"]
        == 404
    )
    admin = {"sub": "11111111-1111-4111-8111-000000000001", "cognito:groups": "[admin]"}
    assert (
        invoke("ExportsFunction", as_caller(at_path(event("get_export.json"), path), admin))["statusCode"]
        == 200
    )
