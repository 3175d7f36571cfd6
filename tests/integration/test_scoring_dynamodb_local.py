"""Scoring against Amazon's DynamoDB Local (real conditional writes and transactions) and moto's SQS
server: lost races are recomputed, concurrent writers lose nothing, rule edits serialise, and a rule change
fans out over every open lead, each counted once."""

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest
from crm import bootstrap
from crm.leads.model import LeadStatus
from crm.platform.errors import VersionConflict
from crm.scoring.service import RescoreOutcome

from devstack.provision import create_queues, table_definition
from devstack.template import Template
from tests.integration.scoring_helpers import (
    activities_of,
    api,
    capture,
    drain_rescore_queue,
    lead_item,
    record,
    rules_meta,
    stream_event,
)
from tests.support import FakeLambdaContext, load_handler

pytestmark = pytest.mark.ddblocal


@pytest.fixture
def stack(
    local_aws: dict[str, Any], moto_endpoint: str, template: Template, monkeypatch: Any
) -> dict[str, Any]:
    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", moto_endpoint)
    sqs = boto3.client("sqs", region_name="us-east-1", endpoint_url=moto_endpoint)
    urls = create_queues(sqs, template)
    # Pages left by an earlier test (PurgeQueue is limited to once a minute): delete them.
    while leftovers := sqs.receive_message(QueueUrl=urls["RescoreQueue"], MaxNumberOfMessages=10).get(
        "Messages"
    ):
        for message in leftovers:
            sqs.delete_message(QueueUrl=urls["RescoreQueue"], ReceiptHandle=message["ReceiptHandle"])
    return {**local_aws, "sqs": sqs, "queues": urls}


def new_lead(invoke: Any, **fields: Any) -> str:
    defaults = {"title": "VP Engineering", "industry": "Technology", "employee_count": 1200}
    return capture(invoke, email=f"race-{uuid.uuid4().hex[:10]}@analytical.gov", **(defaults | fields))


def test_a_score_write_that_loses_a_race_is_recomputed_and_loses_nothing(
    invoke: Any, stack: dict, template: Template, function_env: Any, monkeypatch: Any
) -> None:
    lead_id = new_lead(invoke)
    handler = load_handler(template.function("ScoringFunction"), copy=20)
    function_env("ScoringFunction")
    scoring = bootstrap.scoring_service()
    leads = bootstrap.lead_repository()
    real_read = scoring.scores.read
    reads: list[int] = []

    def read_then_someone_else_writes(lead: str, with_activities: bool = True) -> Any:
        state = real_read(lead, with_activities)
        reads.append(state.lead.version)
        if len(reads) == 1:  # between our read and our write, a rep promotes the lead to CTO
            current = leads.get(lead)
            assert current is not None
            changed = current.model_copy(update={"title": "CTO", "custom_fields": {"met_at": "summit"}})
            leads.replace(changed, current.version, [])
        return state

    monkeypatch.setattr(scoring.scores, "read", read_then_someone_else_writes)
    insert = stream_event(record("INSERT", lead_item(stack["dynamodb"], stack["table"], lead_id)))

    response = handler(insert, FakeLambdaContext(function_name="scoring"))

    item = lead_item(stack["dynamodb"], stack["table"], lead_id)
    assert response == {"batchItemFailures": []}
    assert reads == [1, 2]  # the conditional write failed on version 1; the retry read version 2
    assert item["title"]["S"] == "CTO" and item["custom_fields"]["M"] == {"met_at": {"S": "summit"}}
    assert (item["score"]["N"], item["grade"]["S"], item["version"]["N"]) == ("55", "D", "3")  # C-level 20
    (changed,) = activities_of(stack["dynamodb"], stack["table"], lead_id, "score_changed")
    assert changed["description"]["S"] == "Score 0 → 55 (grade none → D)"


def test_concurrent_writers_and_scorers_lose_no_update(invoke: Any, stack: dict, function_env: Any) -> None:
    lead_id = new_lead(invoke)
    function_env("ScoringFunction")
    scoring = bootstrap.scoring_service()
    leads = bootstrap.lead_repository()
    book = scoring.rule_book()
    start = threading.Barrier(12)

    def write_field(index: int) -> int:
        start.wait()
        for attempt in range(200):
            current = leads.get(lead_id)
            assert current is not None
            fields = {**current.custom_fields, f"k{index}": index}
            try:
                leads.replace(current.model_copy(update={"custom_fields": fields}), current.version, [])
                return attempt
            except VersionConflict:
                continue
        raise AssertionError("a writer never got through")

    def rescore(_: int) -> list[RescoreOutcome]:
        start.wait()
        return [scoring.rescore(lead_id, book) for _ in range(5)]

    with ThreadPoolExecutor(max_workers=12) as pool:
        writers = [pool.submit(write_field, index) for index in range(8)]
        scorers = [pool.submit(rescore, index) for index in range(4)]
        retries = sum(future.result() for future in writers)
        outcomes = [outcome for future in scorers for outcome in future.result()]

    final = scoring.rescore(lead_id, book)
    item = lead_item(stack["dynamodb"], stack["table"], lead_id)
    assert set(item["custom_fields"]["M"]) == {f"k{index}" for index in range(8)}  # every write survived
    assert retries > 0  # they really raced
    assert RescoreOutcome.CHANGED in outcomes and final is RescoreOutcome.UNCHANGED
    assert (item["score"]["N"], item["grade"]["S"]) == ("50", "D")
    status, score, _ = api(
        invoke, "get_lead_score.json", path=f"/leads/{lead_id}/score", params={"id": lead_id}
    )
    assert status == 200 and sum(e["points"] for e in score["entries"]) == score["score"] == 50


def test_concurrent_edits_of_one_rule_from_one_version_let_exactly_one_through(
    invoke: Any, stack: dict, template: Template, function_env: Any
) -> None:
    status, created, _ = api(
        invoke, "create_scoring_rule.json", body=rule_body(f"race-{uuid.uuid4().hex}", 1)
    )
    assert status == 201
    rule_id, revision = created["rule"]["id"], created["revision"]
    function_env("ScoringApiFunction")
    handlers = [load_handler(template.function("ScoringApiFunction"), copy=30 + index) for index in range(10)]
    start = threading.Barrier(10)

    def patch(index: int) -> int:
        from tests.integration.scoring_helpers import as_user
        from tests.support import event

        request = event("update_scoring_rule.json", body={"points": index + 2})
        request["rawPath"] = request["requestContext"]["http"]["path"] = f"/scoring-rules/{rule_id}"
        request["pathParameters"] = {"id": rule_id}
        start.wait()
        response = handlers[index](as_user(request, "manager"), FakeLambdaContext(function_name="api"))
        status_code: int = response["statusCode"]
        return status_code

    with ThreadPoolExecutor(max_workers=10) as pool:
        statuses = sorted(pool.map(patch, range(10)))

    _, rules, _ = api(invoke, "list_scoring_rules.json")
    stored = next(rule for rule in rules["rules"] if rule["id"] == rule_id)
    assert statuses == [200] + [409] * 9
    assert (stored["version"], rules["revision"]) == (2, revision + 1)
    deleted = api(
        invoke,
        "update_scoring_rule.json",
        method="DELETE",
        body="",
        headers={"if-match": None},
        path=f"/scoring-rules/{rule_id}",
        params={"id": rule_id},
    )
    assert deleted[0] == 200


def rule_body(marker: str, points: int) -> dict[str, Any]:
    return {
        "name": f"Campaign {marker[:20]}",
        "category": "firmographic",
        "field": "custom_fields.campaign",
        "operator": "equals",
        "value": marker,
        "points": points,
    }


def open_leads(dynamodb: Any, table: str, shards: int) -> int:
    total = 0
    for status in LeadStatus:
        if status is LeadStatus.CONVERTED:
            continue
        for shard in range(shards):
            kwargs: dict[str, Any] = {
                "TableName": table,
                "IndexName": "StatusByCreated",
                "KeyConditionExpression": "STATUSPK = :pk",
                "ExpressionAttributeValues": {":pk": {"S": f"STATUS#{status.value}#{shard}"}},
                "Select": "COUNT",
            }
            while True:
                page = dynamodb.query(**kwargs)
                total += page["Count"]
                if "LastEvaluatedKey" not in page:
                    break
                kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return total


@pytest.fixture
def own_table(stack: dict[str, Any], template: Template, function_env: Any) -> dict[str, Any]:
    """A table of the test's own: a count over every open lead must not see other tests' leads."""
    definition = table_definition(template.tables[0]) | {"TableName": f"fanout-{uuid.uuid4().hex[:12]}"}
    stack["dynamodb"].create_table(**definition)
    stack["dynamodb"].get_waiter("table_exists").wait(TableName=definition["TableName"])
    function_env.pin(TABLE_NAME=definition["TableName"])
    return {**stack, "table": definition["TableName"]}


def test_a_rule_change_fans_out_over_every_open_lead_counting_each_once(
    invoke: Any, own_table: dict, template: Template, function_env: Any
) -> None:
    stack = own_table
    campaign = f"spring-{uuid.uuid4().hex[:12]}"
    leads = [new_lead(invoke, custom_fields={"campaign": campaign}) for _ in range(24)]
    scored = invoke(
        "ScoringFunction",
        stream_event(
            *(record("INSERT", lead_item(stack["dynamodb"], stack["table"], lead)) for lead in leads)
        ),
    )
    assert scored == {"batchItemFailures": []}
    function_env("ScoringFunction")
    lead_repository = bootstrap.lead_repository()
    converted = lead_repository.get(leads[0])
    assert converted is not None
    lead_repository.replace(
        converted.model_copy(update={"lead_status": LeadStatus.CONVERTED}), converted.version, []
    )

    status, created, _ = api(invoke, "create_scoring_rule.json", body=rule_body(campaign, 7))
    job_id = created["rescore_job"]["job_id"]
    change = record("MODIFY", rules_meta(stack["dynamodb"], stack["table"]))
    assert invoke("ScoringFunction", stream_event(change)) == {"batchItemFailures": []}
    function_env("RescoreFunction", RESCORE_PAGE_SIZE="10")
    worker = load_handler(template.function("RescoreFunction"), copy=40)

    def run_worker(logical_id: str, page_event: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = worker(page_event, FakeLambdaContext(function_name="rescore"))
        return result

    drain_rescore_queue(run_worker, stack["sqs"], stack["queues"]["RescoreQueue"], redeliver_first=True)

    expected_total = open_leads(stack["dynamodb"], stack["table"], 4)
    _, job, _ = api(
        invoke,
        "get_rescore_job.json",
        path=f"/scoring-rules/rescore-jobs/{job_id}",
        params={"job_id": job_id},
    )
    assert status == 201
    assert job["state"] == "completed" and job["total_final"] is True
    assert job["leads_done"] == job["leads_total"] == expected_total
    assert job["leads_changed"] >= 23
    scores = [int(lead_item(stack["dynamodb"], stack["table"], lead)["score"]["N"]) for lead in leads]
    assert scores == [50] + [57] * 23  # the converted lead keeps its score
    rule = {"path": f"/scoring-rules/{created['rule']['id']}", "params": {"id": created["rule"]["id"]}}
    assert (
        api(invoke, "update_scoring_rule.json", method="DELETE", body="", headers={"if-match": None}, **rule)[
            0
        ]
        == 200
    )
