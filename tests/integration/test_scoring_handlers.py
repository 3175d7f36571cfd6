"""The scoring functions called in-process with the sample events (stream, SQS, API), against moto."""

import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from crm.platform import clock
from crm.platform.dynamo import unmarshal

from devstack.provision import create_queues
from devstack.template import LOCAL_ACCOUNT_ID, Template
from tests.integration.scoring_helpers import (
    USERS,
    activities_of,
    api,
    capture,
    drain_rescore_queue,
    lead_item,
    partition,
    record,
    rules_meta,
    score_new_lead,
    sqs_event,
    stream_event,
)
from tests.support import FakeLambdaContext, event, load_handler

LEAD_FIELDS = {"title": "VP Engineering", "industry": "Technology", "employee_count": 1200}


@pytest.fixture
def local_account(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto in the template's local account, so queue ARNs (redrive policies) resolve as in the stack."""
    monkeypatch.setenv("MOTO_ACCOUNT_ID", LOCAL_ACCOUNT_ID)


@pytest.fixture
def stack(
    local_account: None, moto_stack: dict[str, Any], template: Template, monkeypatch: pytest.MonkeyPatch
) -> dict[str, Any]:
    # moto's in-process backend is not built for concurrent callers: one thread per page here (the
    # DynamoDB Local suite runs the worker's threads against a real database).
    monkeypatch.setenv("RESCORE_CONCURRENCY", "1")
    sqs = boto3.client("sqs", region_name="us-east-1")
    urls = create_queues(sqs, template)
    return {**moto_stack, "sqs": sqs, "queues": urls}


def new_lead(invoke: Any, **fields: Any) -> str:
    return capture(invoke, email=f"ada-{uuid.uuid4().hex[:8]}@analytical.gov", **(LEAD_FIELDS | fields))


def score_of(stack: dict[str, Any], lead_id: str) -> tuple[int, str | None, int]:
    item = lead_item(stack["dynamodb"], stack["table"], lead_id)
    return int(item["score"]["N"]), item.get("grade", {}).get("S"), int(item["version"]["N"])


# ---------------------------------------------------------------- the stream consumer


def test_a_captured_lead_gets_score_grade_and_a_ledger_that_adds_up(invoke: Any, stack: dict) -> None:
    lead_id = new_lead(invoke)

    score_new_lead(invoke, stack["dynamodb"], stack["table"], lead_id)

    assert score_of(stack, lead_id) == (50, "D", 2)
    status, body, _ = api(
        invoke, "get_lead_score.json", path=f"/leads/{lead_id}/score", params={"id": lead_id}
    )
    assert status == 200
    assert body["score"] == 50 and body["grade"] == "D"
    assert sum(entry["points"] for entry in body["entries"]) + body["limit_adjustment"] == 50
    assert {entry["rule_id"]: entry["points"] for entry in body["entries"]} == {
        "seed-title-vp": 15,
        "seed-email-gov": 10,
        "seed-size-1000": 15,
        "seed-industry": 10,
    }
    assert next(e for e in body["entries"] if e["rule_id"] == "seed-size-1000")["matched_value"] == 1200
    (changed,) = activities_of(stack["dynamodb"], stack["table"], lead_id, "score_changed")
    assert changed["description"]["S"] == "Score 0 → 50 (grade none → D)"


def test_a_redelivered_record_changes_nothing(invoke: Any, stack: dict) -> None:
    lead_id = new_lead(invoke)
    insert = stream_event(record("INSERT", lead_item(stack["dynamodb"], stack["table"], lead_id)))
    assert invoke("ScoringFunction", insert) == {"batchItemFailures": []}
    before = partition(stack["dynamodb"], stack["table"], lead_id)

    again = invoke("ScoringFunction", insert)

    assert again == {"batchItemFailures": []}
    assert partition(stack["dynamodb"], stack["table"], lead_id) == before


def test_the_record_of_its_own_score_write_changes_nothing(invoke: Any, stack: dict) -> None:
    lead_id = new_lead(invoke)
    captured = lead_item(stack["dynamodb"], stack["table"], lead_id)
    score_new_lead(invoke, stack["dynamodb"], stack["table"], lead_id)
    scored = lead_item(stack["dynamodb"], stack["table"], lead_id)
    assert scored["written_by"] == {"S": "scoring"} and scored["scored_version"] == scored["version"]
    before = partition(stack["dynamodb"], stack["table"], lead_id)

    response = invoke("ScoringFunction", stream_event(record("MODIFY", scored, captured)))

    assert response == {"batchItemFailures": []}
    assert partition(stack["dynamodb"], stack["table"], lead_id) == before


def test_a_demo_request_raises_the_score(invoke: Any, stack: dict) -> None:
    lead_id = new_lead(invoke)
    score_new_lead(invoke, stack["dynamodb"], stack["table"], lead_id)

    status, activity, _ = api(
        invoke, "record_activity.json", path=f"/leads/{lead_id}/activities", params={"id": lead_id}
    )
    (stored,) = activities_of(stack["dynamodb"], stack["table"], lead_id, "demo_requested")
    response = invoke("ScoringFunction", stream_event(record("INSERT", stored)))

    assert status == 201 and activity["type"] == "demo_requested"
    assert response == {"batchItemFailures": []}
    assert score_of(stack, lead_id)[:2] == (70, "B")
    changes = [
        a["description"]["S"]
        for a in activities_of(stack["dynamodb"], stack["table"], lead_id, "score_changed")
    ]
    assert sorted(changes) == ["Score 0 → 50 (grade none → D)", "Score 50 → 70 (grade D → B)"]


def test_reaching_80_qualifies_the_lead_once_with_an_activity_saying_why(invoke: Any, stack: dict) -> None:
    lead_id = new_lead(invoke, title="CTO", annual_revenue="20000000")  # 70 points
    score_new_lead(invoke, stack["dynamodb"], stack["table"], lead_id)
    api(invoke, "record_activity.json", path=f"/leads/{lead_id}/activities", params={"id": lead_id})
    (demo,) = activities_of(stack["dynamodb"], stack["table"], lead_id, "demo_requested")
    delivery = stream_event(record("INSERT", demo))

    invoke("ScoringFunction", delivery)
    invoke("ScoringFunction", delivery)

    item = lead_item(stack["dynamodb"], stack["table"], lead_id)
    assert (item["score"]["N"], item["grade"]["S"], item["lead_status"]["S"]) == ("90", "A+", "qualified")
    assert item["qualified"] == {"BOOL": True} and "qualified_at" in item
    assert item["STATUSPK"]["S"].startswith("STATUS#qualified#")
    (why,) = activities_of(stack["dynamodb"], stack["table"], lead_id, "lead_auto_qualified")
    assert "reached 90" in why["description"]["S"]


def test_one_failing_record_is_reported_alone_and_the_rest_of_the_batch_is_scored(
    invoke: Any, stack: dict, template: Template
) -> None:
    lead_id = new_lead(invoke)
    api(invoke, "list_scoring_rules.json")  # seeds the rules
    stack["sqs"].delete_queue(
        QueueUrl=stack["queues"]["RescoreQueue"]
    )  # the rule change cannot start its job
    rules_change = record("INSERT", rules_meta(stack["dynamodb"], stack["table"]))
    lead_insert = record("INSERT", lead_item(stack["dynamodb"], stack["table"], lead_id))

    response = invoke("ScoringFunction", stream_event(rules_change, lead_insert))

    assert response == {"batchItemFailures": [{"itemIdentifier": rules_change["dynamodb"]["SequenceNumber"]}]}
    assert score_of(stack, lead_id)[0] == 50


def test_a_lead_whose_scoring_runs_past_its_time_budget_fails_alone_and_its_neighbours_are_scored(
    invoke: Any, stack: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One slow lead (each rule slow for it) must not time out the batch: its record fails alone, well
    inside the function's timeout, and the records before and after it are scored in the same invocation."""
    from crm.platform import budget
    from crm.scoring import engine

    before, slow, after = new_lead(invoke), new_lead(invoke, title="Slow Poke"), new_lead(invoke)
    api(invoke, "list_scoring_rules.json")  # seeds the rules
    award = engine._AttributeRule.award

    def slow_for_one_lead(rule: Any, lead: Any) -> Any:
        if lead.title == "Slow Poke":
            time.sleep(1.0)
        return award(rule, lead)

    monkeypatch.setattr(engine._AttributeRule, "award", slow_for_one_lead)
    # Wide enough that a neighbour's scoring fits it on a loaded machine (the slow lead's does not)
    monkeypatch.setattr(budget, "RECORD_BUDGET_SECONDS", 3.0)
    records = [
        record("INSERT", lead_item(stack["dynamodb"], stack["table"], lead)) for lead in (before, slow, after)
    ]

    started = time.monotonic()
    response = invoke("ScoringFunction", stream_event(*records))

    assert response == {"batchItemFailures": [{"itemIdentifier": records[1]["dynamodb"]["SequenceNumber"]}]}
    assert time.monotonic() - started < 15
    assert score_of(stack, before)[0] == score_of(stack, after)[0] == 50
    assert score_of(stack, slow)[1] is None  # not scored: retried alone by the event source mapping


# ---------------------------------------------------------------- rule changes fan out


def test_a_rule_change_rescores_every_open_lead_through_the_queue(invoke: Any, stack: dict) -> None:
    leads = [new_lead(invoke, custom_fields={"plan": "enterprise"}) for _ in range(5)]
    for lead_id in leads:
        score_new_lead(invoke, stack["dynamodb"], stack["table"], lead_id)
    status, created, _ = api(invoke, "create_scoring_rule.json")  # custom_fields.plan equals enterprise: +15
    job_id = created["rescore_job"]["job_id"]
    queued = api(
        invoke,
        "get_rescore_job.json",
        path=f"/scoring-rules/rescore-jobs/{job_id}",
        params={"job_id": job_id},
    )

    change = record("MODIFY", rules_meta(stack["dynamodb"], stack["table"]))
    assert invoke("ScoringFunction", stream_event(change)) == {"batchItemFailures": []}
    assert invoke("ScoringFunction", stream_event(change)) == {"batchItemFailures": []}  # redelivered
    batches = drain_rescore_queue(invoke, stack["sqs"], stack["queues"]["RescoreQueue"], redeliver_first=True)

    assert (status, job_id) == (201, "rules-2")
    assert queued[0] == 200 and queued[1]["state"] == "queued"
    assert batches >= 8  # 16 partitions (4 open statuses x 4 shards), two messages per batch
    assert [score_of(stack, lead_id)[:2] for lead_id in leads] == [(65, "C")] * 5
    _, job, _ = api(
        invoke,
        "get_rescore_job.json",
        path=f"/scoring-rules/rescore-jobs/{job_id}",
        params={"job_id": job_id},
    )
    assert job | {"started_at": None, "finished_at": None} == {
        "job_id": "rules-2",
        "reason": "rules_changed",
        "state": "completed",
        "leads_done": 5,
        "leads_total": 5,
        "total_final": True,
        "leads_changed": 5,
        "progress": "5 of 5 leads rescored (5 scores changed)",
        "started_at": None,
        "finished_at": None,
        "superseded_by": None,
    }


def test_pages_follow_each_other_and_count_each_lead_once(
    invoke: Any, stack: dict, function_env: Any, template: Template
) -> None:
    leads = [new_lead(invoke) for _ in range(7)]
    api(invoke, "list_scoring_rules.json")
    invoke("ScoringFunction", stream_event(record("INSERT", rules_meta(stack["dynamodb"], stack["table"]))))
    function_env("RescoreFunction", RESCORE_PAGE_SIZE="1")
    worker = load_handler(template.function("RescoreFunction"), copy=7)

    def run(page_event: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = worker(page_event, FakeLambdaContext(function_name="rescore"))
        return result

    batches = drain_with(run, stack)

    _, job, _ = api(invoke, "get_rescore_job.json")  # rules-2 does not exist: 404
    status, first, _ = api(
        invoke,
        "get_rescore_job.json",
        path="/scoring-rules/rescore-jobs/rules-1",
        params={"job_id": "rules-1"},
    )
    assert job["error"] == "not_found"
    assert status == 200 and (first["leads_done"], first["leads_total"]) == (7, 7)
    assert first["state"] == "completed" and batches > 8  # pages of one lead chain through the queue
    assert all(score_of(stack, lead_id)[0] == 50 for lead_id in leads)


def drain_with(run: Any, stack: dict[str, Any]) -> int:
    batches = 0
    url = stack["queues"]["RescoreQueue"]
    while messages := stack["sqs"].receive_message(QueueUrl=url, MaxNumberOfMessages=2).get("Messages", []):
        assert run(sqs_event(messages)) == {"batchItemFailures": []}
        for message in messages:
            stack["sqs"].delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        batches += 1
    return batches


# ---------------------------------------------------------------- decay


def test_the_daily_pass_does_nothing_while_decay_is_off(invoke: Any, stack: dict) -> None:
    assert invoke("RescoreFunction", event("rescore_decay_schedule.json")) == {"job_id": None}


def test_the_daily_pass_rescores_the_leads_whose_points_decay(
    invoke: Any,
    stack: dict,
    function_env: Any,
    template: Template,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    clock_file = tmp_path / "clock.json"
    clock_file.write_text(json.dumps({"offset_seconds": 0}))
    monkeypatch.setattr(clock, "_CLOCK_FILE", str(clock_file))
    decaying, steady = new_lead(invoke), new_lead(invoke)
    scoring = load_handler(template.function("ScoringFunction"), copy=8)
    rescore = load_handler(template.function("RescoreFunction"), copy=8)
    context = FakeLambdaContext(function_name="scoring")
    function_env("ScoringFunction", SCORE_HALF_LIFE_DAYS="30")
    for lead_id in (decaying, steady):
        scoring(
            stream_event(record("INSERT", lead_item(stack["dynamodb"], stack["table"], lead_id))), context
        )
    api(invoke, "record_activity.json", path=f"/leads/{decaying}/activities", params={"id": decaying})
    function_env("ScoringFunction", SCORE_HALF_LIFE_DAYS="30")
    (demo,) = activities_of(stack["dynamodb"], stack["table"], decaying, "demo_requested")
    scoring(stream_event(record("INSERT", demo)), context)
    assert (score_of(stack, decaying)[0], score_of(stack, steady)[0]) == (70, 50)

    clock_file.write_text(json.dumps({"offset_seconds": 30 * 86_400}))  # a half-life later
    function_env("RescoreFunction", SCORE_HALF_LIFE_DAYS="30")
    started = rescore(event("rescore_decay_schedule.json"), context)
    again = rescore(event("rescore_decay_schedule.json"), context)  # the schedule fires twice: one job
    drain_with(lambda page: rescore(page, context), stack)

    day = (datetime.now(UTC) + timedelta(days=30)).strftime("%Y-%m-%d")
    assert started == again == {"job_id": f"decay-{day}"}
    assert (score_of(stack, decaying)[0], score_of(stack, steady)[0]) == (60, 50)
    status, job, _ = api(
        invoke,
        "get_rescore_job.json",
        path=f"/scoring-rules/rescore-jobs/decay-{day}",
        params={"job_id": f"decay-{day}"},
    )
    assert status == 200
    assert (job["reason"], job["state"], job["leads_total"], job["leads_changed"]) == (
        "decay",
        "completed",
        1,
        1,
    )


# ---------------------------------------------------------------- rules CRUD


def test_a_manager_reads_the_seeded_defaults(invoke: Any, stack: dict) -> None:
    status, body, _ = api(invoke, "list_scoring_rules.json")

    assert status == 200 and body["revision"] == 1
    points = {rule["id"]: rule["points"] for rule in body["rules"]}
    assert points["seed-title-c-level"] == 20 and points["seed-revenue-10m"] == 15
    assert points["seed-activity-demo-requested"] == 20 and len(points) == 18
    switched_off = [rule for rule in body["rules"] if not rule["active"]]
    assert [(r["id"], r["count_operator"], r["count_value"], r["points"]) for r in switched_off] == [
        ("seed-quick-start-email-opens", "gt", 5, 20),
        ("seed-quick-start-page-views", "gt", 10, 15),
    ]
    industry = next(rule for rule in body["rules"] if rule["id"] == "seed-industry")
    assert industry["value"] == ["Technology", "Finance", "Healthcare"] and industry["version"] == 1


@pytest.mark.parametrize(
    ("sample", "method"),
    [
        ("list_scoring_rules.json", None),
        ("create_scoring_rule.json", None),
        ("update_scoring_rule.json", None),
        ("update_scoring_rule.json", "PUT"),
        ("update_scoring_rule.json", "DELETE"),
        ("update_scoring_rule.json", "GET"),
        ("get_rescore_job.json", None),
    ],
)
def test_reps_may_not_read_or_change_scoring_rules(
    invoke: Any, stack: dict, sample: str, method: str | None
) -> None:
    status, body, _ = api(invoke, sample, user="rep1", method=method)

    assert status == 403 and body["error"] == "forbidden"
    assert api(invoke, "list_scoring_rules.json")[1]["revision"] == 1  # nothing changed


@pytest.mark.parametrize(
    ("change", "field", "fragment"),
    [
        ({"operator": "sounds_like"}, "operator", "equals"),
        ({"field": "shoe_size"}, "field", "unknown field"),
        ({"operator": "regex", "value": "(unclosed"}, "value", "missing )"),
        ({"operator": "regex", "value": "vp(?= of)"}, "value", "lookarounds"),
        ({"points": 5000}, "points", "1000"),
        ({"points": -1001}, "points", "-1000"),
        ({"operator": "between", "value": [10, 1]}, "value", "low <= high"),
        ({"colour": "red"}, "colour", "unknown field"),
    ],
)
def test_invalid_rules_are_refused_naming_the_problem(
    invoke: Any, stack: dict, change: dict, field: str, fragment: str
) -> None:
    rule = json.loads(event("create_scoring_rule.json")["body"]) | change

    status, body, _ = api(invoke, "create_scoring_rule.json", body=rule)

    assert status == 422
    (problem,) = [p for p in body["fields"] if p["field"] == field]
    assert fragment in problem["message"]


def test_rules_are_created_changed_with_optimistic_locking_and_deleted(invoke: Any, stack: dict) -> None:
    definition = json.loads(event("create_scoring_rule.json")["body"])
    status, created, headers = api(invoke, "create_scoring_rule.json")
    rule_id = created["rule"]["id"]
    rule = {"path": f"/scoring-rules/{rule_id}", "params": {"id": rule_id}}

    read = api(invoke, "update_scoring_rule.json", method="GET", body="", headers={"if-match": None}, **rule)
    no_version = api(
        invoke, "update_scoring_rule.json", body={"points": 3}, headers={"if-match": None}, **rule
    )
    patched = api(invoke, "update_scoring_rule.json", body={"points": 3}, headers={"if-match": '"1"'}, **rule)
    stale = api(invoke, "update_scoring_rule.json", body={"points": 4}, headers={"if-match": '"1"'}, **rule)
    bad_merge = api(
        invoke,
        "update_scoring_rule.json",
        body={"operator": "gt", "version": 2},
        headers={"if-match": None},
        **rule,
    )
    replaced = api(
        invoke,
        "update_scoring_rule.json",
        method="PUT",
        body={**definition, "points": 25, "active": False, "version": 2},
        headers={"if-match": None},
        **rule,
    )
    delete_stale = api(invoke, "update_scoring_rule.json", method="DELETE", body="", **rule)  # If-Match "1"
    deleted = api(
        invoke, "update_scoring_rule.json", method="DELETE", body="", headers={"if-match": None}, **rule
    )
    gone = api(invoke, "update_scoring_rule.json", method="GET", body="", headers={"if-match": None}, **rule)

    assert status == 201 and headers["Location"] == f"/scoring-rules/{rule_id}"
    assert created["revision"] == 2
    assert created["rescore_job"] == {
        "job_id": "rules-2",
        "status_url": "/scoring-rules/rescore-jobs/rules-2",
    }
    assert read[0] == 200 and read[2]["ETag"] == '"1"' and read[1]["value"] == "enterprise"
    assert no_version[0] == 428 and no_version[1]["fields"][0]["field"] == "version"
    assert patched[0] == 200 and (patched[1]["rule"]["points"], patched[1]["rule"]["version"]) == (3, 2)
    assert stale[0] == 409 and stale[1]["current_version"] == 2
    assert bad_merge[0] == 422 and [p["field"] for p in bad_merge[1]["fields"]] == ["value"]
    assert replaced[0] == 200 and replaced[1]["rule"]["active"] is False and replaced[1]["revision"] == 4
    assert delete_stale[0] == 409 and delete_stale[1]["current_version"] == 3
    assert deleted[0] == 200 and deleted[1] == {
        "deleted": rule_id,
        "revision": 5,
        "rescore_job": {"job_id": "rules-5", "status_url": "/scoring-rules/rescore-jobs/rules-5"},
    }
    assert gone[0] == 404


def test_two_changes_from_the_same_version_cannot_both_win(invoke: Any, stack: dict) -> None:
    rule = {"path": "/scoring-rules/seed-industry", "params": {"id": "seed-industry"}}

    first = api(invoke, "update_scoring_rule.json", body={"points": 12}, **rule)
    second = api(invoke, "update_scoring_rule.json", body={"points": 14}, **rule)

    assert (first[0], second[0]) == (200, 409)
    assert api(invoke, "list_scoring_rules.json")[1]["revision"] == 2


# ---------------------------------------------------------------- score and activities routes


def test_a_lead_the_caller_may_not_see_has_no_score_for_them(invoke: Any, stack: dict) -> None:
    lead_id = new_lead(invoke)
    path, params = f"/leads/{lead_id}/score", {"id": lead_id}
    taken = {"assigned_to": {"S": "5f0b7c1e-0a11-4d2b-9a01-000000000012"}}
    stack["dynamodb"].update_item(
        TableName=stack["table"],
        Key={"PK": {"S": f"LEAD#{lead_id}"}, "SK": {"S": "LEAD"}},
        UpdateExpression="SET assigned_to = :a",
        ExpressionAttributeValues={":a": taken["assigned_to"]},
    )

    other_rep = api(invoke, "get_lead_score.json", user="rep1", path=path, params=params)
    owner = api(invoke, "get_lead_score.json", user="rep2", path=path, params=params)
    unknown = api(invoke, "get_lead_score.json", path=f"/leads/{uuid.uuid4()}/score", params={"id": "x"})

    assert other_rep[0] == 404 and unknown[0] == 404
    assert owner[0] == 200 and owner[1]["scored_at"] is None and owner[1]["entries"] == []


def test_an_event_id_records_an_event_once(invoke: Any, stack: dict) -> None:
    lead_id = new_lead(invoke)
    path, params = f"/leads/{lead_id}/activities", {"id": lead_id}

    first = api(invoke, "record_activity.json", path=path, params=params)
    replay = api(invoke, "record_activity.json", path=path, params=params)

    assert (first[0], replay[0]) == (201, 200)
    assert replay[1] == first[1]
    assert first[1]["data"] == {"page": "/pricing", "event_id": "web-7f3a9c2e"}
    assert len(activities_of(stack["dynamodb"], stack["table"], lead_id, "demo_requested")) == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"type": "score_changed"}, "type"),
        ({"type": "Demo Requested"}, "type"),
        ({"type": "page_viewed", "occurred_at": "2999-01-01T00:00:00Z"}, "occurred_at"),
        ({"type": "page_viewed", "occurred_at": "2026-01-01T00:00:00"}, "occurred_at"),
        ({"type": "page_viewed", "event_id": "has#hash"}, "event_id"),
        ({"type": "page_viewed", "source": "web"}, "source"),
    ],
)
def test_invalid_events_are_refused_naming_the_field(
    invoke: Any, stack: dict, body: dict, field: str
) -> None:
    lead_id = new_lead(invoke)

    status, answer, _ = api(
        invoke, "record_activity.json", path=f"/leads/{lead_id}/activities", params={"id": lead_id}, body=body
    )

    assert status == 422 and [p["field"] for p in answer["fields"]] == [field]
    assert activities_of(stack["dynamodb"], stack["table"], lead_id, "page_viewed") == []


def test_events_for_unknown_or_read_only_leads_are_refused(invoke: Any, stack: dict) -> None:
    lead_id = new_lead(invoke)
    missing = str(uuid.uuid4())

    unknown = api(invoke, "record_activity.json", path=f"/leads/{missing}/activities", params={"id": missing})
    read_only = api(
        invoke,
        "record_activity.json",
        user="rep1",
        path=f"/leads/{lead_id}/activities",
        params={"id": lead_id},
    )

    assert unknown[0] == 404
    assert read_only[0] == 403  # an unassigned lead is read-only for reps
    assert activities_of(stack["dynamodb"], stack["table"], lead_id, "demo_requested") == []


def test_scoring_rule_changes_record_who_made_them(invoke: Any, stack: dict) -> None:
    changed = api(invoke, "update_scoring_rule.json")  # seed-industry: points 10 -> 12, by the manager
    deleted = api(
        invoke,
        "update_scoring_rule.json",
        user="admin",
        method="DELETE",
        body={},
        headers={"If-Match": '"2"'},
    )

    assert changed[0] == 200 and changed[1]["rule"]["updated_by"] == f"user:{USERS['manager']}"
    assert deleted[0] == 200, deleted[1]
    trail = [
        unmarshal(item)
        for item in stack["dynamodb"].query(
            TableName=stack["table"],
            KeyConditionExpression="PK = :pk",
            ExpressionAttributeValues={":pk": {"S": "AUDIT#scoring_rules"}},
        )["Items"]
    ]
    assert [(e["action"], e["actor"], e["record_id"]) for e in trail] == [
        ("updated", f"user:{USERS['manager']}", "seed-industry"),
        ("deleted", f"user:{USERS['admin']}", "seed-industry"),
    ]
    assert trail[0]["changes"]["points"] == {"old": 10, "new": 12}
