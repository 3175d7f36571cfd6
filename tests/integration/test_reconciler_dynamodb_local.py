"""The reconciler (issue 14) on DynamoDB Local: open leads written with scoring disabled (straight into the
table, no stream processing) are all scored and routed after one run, and a second run changes nothing.

It is a rescore job (`reconcile-<minute>`) over the open-status partitions of GSI2, with the real scoring
engine and the real routing (RoutingService.consider) on the table; only the assignment queue is in memory.
"""

import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from crm.assignment.repository import AssignmentRepository, RoutingState
from crm.assignment.routing import RoutingService
from crm.leads.model import Lead, LeadStatus
from crm.leads.repository import LeadRepository
from crm.scoring.rescore_job_repository import RescoreJobRepository
from crm.scoring.rescore_queue import InMemoryRescoreQueue
from crm.scoring.rescoring import JobState
from crm.scoring.rule_repository import ScoringRuleRepository
from crm.scoring.score_repository import ScoreRepository
from crm.scoring.service import RescoreService, ScoringService

from devstack.provision import table_definition
from devstack.template import Template
from tests.lead_data import item_of, lead, store

SHARDS = 4
TITLES = ["CEO", "VP Sales", "Director of IT", "Engineer", "Intern", "Chief Technology Officer"]
COMPANIES = ["Analytical Engines", None]


class RecordingPublisher:
    """The assignment queue, in memory."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def send(self, queue_url: str, body: dict[str, Any]) -> None:
        with self.lock:
            self.sent.append(body)

    def send_many(self, queue_url: str, bodies: list[dict[str, Any]]) -> None:
        for body in bodies:
            self.send(queue_url, body)


class Clock:
    def __init__(self) -> None:
        self.moment = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.moment


@pytest.fixture
def env(local_aws: dict[str, Any], template: Template) -> dict[str, Any]:
    dynamodb = local_aws["dynamodb"]
    name = f"reconcile-{uuid.uuid4().hex[:8]}"
    dynamodb.create_table(**(table_definition(template.tables[0]) | {"TableName": name}))
    dynamodb.get_waiter("table_exists").wait(TableName=name)
    clock = Clock()
    rules = ScoringRuleRepository(name, client=dynamodb)
    scoring = ScoringService(ScoreRepository(name, SHARDS, client=dynamodb), rules, now=clock)
    leads = LeadRepository(name, SHARDS, client=dynamodb)
    assignments = AssignmentRepository(name, SHARDS, client=dynamodb)
    publisher = RecordingPublisher()
    threshold = {"value": 0}
    routing = RoutingService(
        leads,
        assignments,
        publisher,
        assignment_queue_url="assignment-queue",
        sales_threshold=lambda: threshold["value"],
        now=clock,
    )
    queue = InMemoryRescoreQueue()
    jobs = RescoreService(
        RescoreJobRepository(name, client=dynamodb),
        rules,
        scoring,
        queue,
        shards=SHARDS,
        page_size=7,
        route=routing.consider,
        now=clock,
    )
    return {
        "dynamodb": dynamodb,
        "table": name,
        "scoring": scoring,
        "leads": leads,
        "assignments": assignments,
        "publisher": publisher,
        "threshold": threshold,
        "queue": queue,
        "clock": clock,
        "jobs": jobs,
    }


def run(env: dict[str, Any]) -> Any:
    env["clock"].moment += timedelta(hours=1)  # the next hourly run: a job of its own
    started = env["jobs"].start_reconcile_job()
    while (page := env["queue"].take()) is not None:
        env["jobs"].process_page(page)
    return env["jobs"].job_status(started.job_id)


def lead_partitions(dynamodb: Any, table: str) -> dict[tuple[str, str], dict[str, Any]]:
    """Every lead partition's items (lead, ledger, routing marker, activities), keyed by PK and SK."""
    items: dict[tuple[str, str], dict[str, Any]] = {}
    kwargs: dict[str, Any] = {"TableName": table}
    while True:
        response = dynamodb.scan(**kwargs)
        for item in response["Items"]:
            if item["PK"]["S"].startswith("LEAD#"):
                items[(item["PK"]["S"], item["SK"]["S"])] = item
        if "LastEvaluatedKey" not in response:
            return items
        kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def expected_score(env: dict[str, Any], stored: Lead) -> int:
    """What the engine gives the lead as written (no activities), with the stored rules."""
    book = env["scoring"].rule_book()
    return int(book.compiled.score(stored, [], datetime.now(UTC), None).score)


def test_leads_written_with_scoring_disabled_are_scored_and_routed_by_one_run_and_a_second_changes_nothing(
    env: dict[str, Any],
) -> None:
    # Given 30 open, unassigned, never-scored leads, one assigned one and one converted one, written
    # straight to the table (no stream processing: scoring and routing never ran)
    created = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
    behind = [
        lead(created + timedelta(minutes=index), graded=False, company=COMPANIES[index % 2]).model_copy(
            update={"title": TITLES[index % len(TITLES)]}
        )
        for index in range(30)
    ]
    assigned = lead(created, graded=False, assigned_to="rep-1", team="sales").model_copy(
        update={"title": "CEO"}
    )
    converted = lead(created, graded=False, status=LeadStatus.CONVERTED, converted=True)
    store(env["dynamodb"], env["table"], [item_of(item, SHARDS) for item in [*behind, assigned, converted]])
    scores = {item.id: expected_score(env, item) for item in behind}
    # The sales threshold splits them: some go to sales, the others to nurture.
    env["threshold"]["value"] = sorted(scores.values())[len(scores) // 2]
    to_sales = {lead_id for lead_id, score in scores.items() if score >= env["threshold"]["value"]}
    assert 0 < len(to_sales) < len(behind)

    # When the reconciler runs once
    job = run(env)

    # Then every open lead is scored as the engine scores it, graded, and routed or nurtured once
    assert (job.effective_state, job.leads_found, job.leads_done, job.leads_changed) == (
        JobState.COMPLETED,
        31,
        31,
        31,
    )
    for item in behind:
        now = env["leads"].get(item.id)
        assert now is not None and now.grade is not None
        assert now.score == scores[item.id]
        marker = env["assignments"].get_marker(item.id)
        if item.id in to_sales:
            assert marker is not None and marker.state is RoutingState.REQUESTED
        else:
            assert now.nurture and marker is not None and marker.state is RoutingState.NURTURE
    assert sorted(body["lead_id"] for body in env["publisher"].sent) == sorted(to_sales)
    # the assigned lead is scored but not routed; the converted one is left alone
    assigned_now = env["leads"].get(assigned.id)
    assert assigned_now is not None and assigned_now.grade is not None
    assert env["assignments"].get_marker(assigned.id) is None
    converted_now = env["leads"].get(converted.id)
    assert converted_now is not None and converted_now.grade is None
    assert converted_now.version == converted.version

    # And a second run finds nothing: no write to any lead partition, no message
    before = lead_partitions(env["dynamodb"], env["table"])
    sent = len(env["publisher"].sent)
    again = run(env)
    assert (again.effective_state, again.leads_found, again.leads_changed) == (JobState.COMPLETED, 31, 0)
    assert lead_partitions(env["dynamodb"], env["table"]) == before
    assert len(env["publisher"].sent) == sent
    assert again.progress() == "31 of 31 open leads checked (0 brought up to date)"


def test_a_lead_changed_behind_the_pipelines_back_is_rescored_on_the_next_run(env: dict[str, Any]) -> None:
    # Given leads the reconciler brought up to date
    created = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
    leads = [
        lead(created + timedelta(minutes=index), graded=False).model_copy(update={"title": "Engineer"})
        for index in range(5)
    ]
    store(env["dynamodb"], env["table"], [item_of(item, SHARDS) for item in leads])
    env["threshold"]["value"] = 1000  # nobody reaches sales: all to nurture
    assert run(env).leads_changed == 5

    # When one lead's title changes in the table with no stream processing (a newer version, old ledger)
    changed = env["leads"].get(leads[0].id)
    assert changed is not None
    env["dynamodb"].update_item(
        TableName=env["table"],
        Key={"PK": {"S": f"LEAD#{changed.id}"}, "SK": {"S": "LEAD"}},
        UpdateExpression="SET title = :title, version = version + :one",
        ExpressionAttributeValues={":title": {"S": "CEO"}, ":one": {"N": "1"}},
    )
    ceo = changed.model_copy(update={"title": "CEO"})
    # ... and another changes within the grace period before the next run (its stream is still at work)
    recent = env["leads"].get(leads[1].id)
    assert recent is not None
    env["dynamodb"].update_item(
        TableName=env["table"],
        Key={"PK": {"S": f"LEAD#{recent.id}"}, "SK": {"S": "LEAD"}},
        UpdateExpression="SET title = :title, version = version + :one, updated_at = :at",
        ExpressionAttributeValues={
            ":title": {"S": "CEO"},
            ":one": {"N": "1"},
            ":at": {"S": (env["clock"].moment + timedelta(minutes=58)).isoformat()},
        },
    )

    # Then the next run rescores that lead alone, as the engine scores its new title
    job = run(env)
    assert (job.leads_found, job.leads_changed) == (5, 1)
    now = env["leads"].get(changed.id)
    assert now is not None and now.score == expected_score(env, ceo) != changed.score
    left_alone = env["leads"].get(recent.id)
    assert left_alone is not None and left_alone.score == recent.score  # changed 2 minutes before the run
    assert run(env).leads_changed == 1  # the run after the grace period brings it up to date
