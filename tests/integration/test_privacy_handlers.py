"""The privacy routes and the erasure worker through the real handler (sample events from events/), on moto:
admins only, clear 4xx naming the field, 202 with a queued job whose page the worker erases, and an export
that is empty (never 404) for an unknown email. Nothing logged carries the email."""

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from devstack.template import Template
from tests.integration.assignment_env import create_template_queues
from tests.support import event, response_json

ADMIN = {"sub": "11111111-1111-4111-8111-000000000001", "cognito:groups": "[admin]"}
MANAGER = {"sub": "11111111-1111-4111-8111-000000000002", "cognito:groups": "[manager]"}
EMAIL = "ada@example.com"


def as_caller(sample: dict[str, Any], claims: dict[str, str]) -> dict[str, Any]:
    sample["requestContext"]["authorizer"]["jwt"]["claims"] = claims
    return sample


@pytest.fixture
def privacy_aws(
    moto_stack: dict[str, Any], template: Template, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Any]:
    sqs = boto3.client("sqs", region_name="us-east-1")
    urls = create_template_queues(sqs, template)
    monkeypatch.setenv("PRIVACY_HASH_KEY", "handler-test-key")
    yield sqs, urls["PrivacyQueue"]


def received(sqs: Any, url: str) -> list[dict[str, Any]]:
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"]) for m in messages]


def test_an_erasure_is_accepted_queued_and_completed_by_the_worker(
    privacy_aws: Any, invoke: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    sqs, url = privacy_aws
    answer = invoke("PrivacyFunction", event("request_erasure.json"))
    assert answer["statusCode"] == 202, answer
    body = response_json(answer)
    assert set(body) == {"id", "state"} and body["state"] == "queued"
    pages = received(sqs, url)
    assert pages == [{"job_id": body["id"]}]  # nobody has this email: one page that only completes

    page = event("erasure_page.json")
    page["Records"][0]["body"] = json.dumps(pages[0])
    assert invoke("PrivacyFunction", page) == {"batchItemFailures": []}

    status = event("get_erasure.json", rawPath=f"/privacy/erasures/{body['id']}")
    status["requestContext"]["http"]["path"] = status["rawPath"]
    job = response_json(invoke("PrivacyFunction", status))
    assert (
        job["state"] == "completed"
        and job["leads_erased"] == 0
        and job["requested_by"].endswith(ADMIN["sub"])
    )
    assert EMAIL not in json.dumps(job) and EMAIL not in capsys.readouterr().out


def test_only_admins_may_erase_or_export(privacy_aws: Any, invoke: Any) -> None:
    for name in ("request_erasure.json", "export_personal_data.json", "get_erasure.json"):
        answer = invoke("PrivacyFunction", as_caller(event(name), MANAGER))
        assert answer["statusCode"] == 403, (name, answer)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"reason": "ticket"}, "email"),
        ({"email": "not-an-email", "reason": "ticket"}, "email"),
        ({"email": EMAIL}, "reason"),
        ({"email": EMAIL, "reason": "ticket", "include_converted": "yes"}, "include_converted"),
        ({"email": EMAIL, "reason": f"asked by {EMAIL.upper()}"}, "reason"),
    ],
)
def test_bad_erasure_requests_are_422_naming_the_field(
    privacy_aws: Any, invoke: Any, body: dict[str, Any], field: str
) -> None:
    sqs, url = privacy_aws
    answer = invoke("PrivacyFunction", event("request_erasure.json", body=body))
    assert answer["statusCode"] == 422, answer
    assert field in {problem["field"] for problem in response_json(answer)["fields"]}
    assert received(sqs, url) == []


def test_an_unknown_email_exports_empty_and_an_unknown_job_is_404(privacy_aws: Any, invoke: Any) -> None:
    answer = invoke("PrivacyFunction", event("export_personal_data.json"))
    assert answer["statusCode"] == 200
    export = response_json(answer)
    assert export["lead"] is None and export["activities"] == [] and len(export["email_hash"]) == 64
    missing = invoke("PrivacyFunction", event("get_erasure.json"))
    assert missing["statusCode"] == 404
    bad = invoke("PrivacyFunction", event("export_personal_data.json", queryStringParameters={"email": "x"}))
    assert bad["statusCode"] == 422 and "email" in bad["body"]


def test_the_daily_retention_run_does_nothing_while_the_setting_is_off(privacy_aws: Any, invoke: Any) -> None:
    sqs, url = privacy_aws
    assert invoke("PrivacyFunction", event("privacy_retention_schedule.json")) == {"job_id": None, "leads": 0}
    assert received(sqs, url) == []
