"""Assignment under real concurrency, on DynamoDB Local (real conditional writes and transactions).

Each worker thread is its own execution environment (its own copy of the handler module), as concurrent
Lambda invocations would be, all draining one job list against one table.
"""

import json
import queue
import random
import threading
import time
import urllib.request
from collections import Counter
from datetime import timedelta
from typing import Any

import boto3
import pytest
from crm.assignment.choice import Trigger
from crm.assignment.repository import AssignmentRepository, claim_key
from crm.assignment.routing import RoutingService
from crm.leads.repository import LeadRepository
from crm.platform.auth import Principal
from crm.platform.dynamo import marshal
from crm.users.model import OutOfOffice
from crm.users.repository import UserRepository

from devstack import outbox
from devstack.provision import create_queues, verify_email_identities
from devstack.seed import load_seed
from devstack.template import Template
from tests.assignment_support import NOW, make_lead, make_user, sqs_event, unique
from tests.support import FakeLambdaContext, load_handler

pytestmark = pytest.mark.ddblocal

WORKERS = 8


@pytest.fixture
def assignment_local(
    local_aws: dict[str, Any],
    moto_endpoint: str,
    template: Template,
    function_env: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> dict[str, Any]:
    """DynamoDB Local and moto's SQS behind the assignment function, a team of its own as the default team,
    and no assignment rules (the rules partition is shared by the session's tests)."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", moto_endpoint)
    create_queues(boto3.client("sqs", region_name="us-east-1", endpoint_url=moto_endpoint), template)
    team = unique("team")
    function_env("AssignmentFunction", DEFAULT_TEAM=team)
    client, table = local_aws["dynamodb"], local_aws["table"]
    assignments = AssignmentRepository(table, client=client)
    for rule in assignments.list_rules():
        assignments.delete_rule(rule.id)
    return {
        "team": team,
        "client": client,
        "table": table,
        "leads": LeadRepository(table, client=client),
        "users": UserRepository(table, client=client),
        "assignments": assignments,
    }


def run_concurrently(template: Template, lead_ids: list[str], workers: int = WORKERS) -> int:
    """Drain assignment jobs with `workers` threads, 10 per invocation; a failed job is delivered again
    (as SQS would). Returns the number of invocations."""
    function = template.function("AssignmentFunction")
    jobs: queue.Queue[str] = queue.Queue()
    for lead_id in lead_ids:
        jobs.put(lead_id)
    handlers = [load_handler(function, copy=100 + n) for n in range(workers)]
    invocations = Counter[int]()
    errors: list[BaseException] = []
    # A worker stops only when no job is queued and none is in flight: a batch still running may hand
    # its failed jobs back, and someone must be left to take them.
    in_flight = [0]
    lock = threading.Lock()

    def take_batch() -> list[str] | None:
        with lock:
            batch = []
            while len(batch) < 10:
                try:
                    batch.append(jobs.get_nowait())
                except queue.Empty:
                    break
            if batch:
                in_flight[0] += 1
                return batch
            return None if in_flight[0] == 0 else []

    def work(n: int) -> None:
        try:
            while True:
                batch = take_batch()
                if batch is None:
                    return
                if not batch:
                    time.sleep(0.01)
                    continue
                event = sqs_event(
                    [{"lead_id": i, "trigger": "score_threshold"} for i in batch],
                    "leadflow-local-AssignmentQueue",
                )
                try:
                    context = FakeLambdaContext(function_name=function.name, timeout_s=30)
                    response = handlers[n](event, context)
                    invocations[n] += 1
                    records = zip(event["Records"], batch, strict=True)
                    by_id = {record["messageId"]: lead_id for record, lead_id in records}
                    with lock:
                        for failure in response.get("batchItemFailures", []):
                            jobs.put(by_id[failure["itemIdentifier"]])
                finally:
                    with lock:
                        in_flight[0] -= 1
        except BaseException as exc:  # surfaced to the test below
            with lock:
                jobs.queue.clear()  # the others stop too: the test fails on this error
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not errors, errors
    return sum(invocations.values())


def owners(leads: LeadRepository, lead_ids: list[str]) -> Counter[str | None]:
    return Counter(leads.get(lead_id).assigned_to for lead_id in lead_ids)  # type: ignore[union-attr]


def claims(client: Any, table: str, lead_ids: list[str]) -> Counter[str | None]:
    found: Counter[str | None] = Counter()
    for lead_id in lead_ids:
        item = client.get_item(TableName=table, Key=marshal(claim_key(lead_id)), ConsistentRead=True).get(
            "Item"
        )
        found[item["user"]["S"] if item else None] += 1
    return found


def assigned_activities(leads: LeadRepository, lead_id: str) -> int:
    found = leads.get_with_activities(lead_id)
    assert found is not None
    return sum(1 for activity in found[1] if activity.type == "lead_assigned")


def test_200_leads_assigned_concurrently_over_5_reps_stay_balanced_and_counted(
    assignment_local: dict[str, Any], template: Template
) -> None:
    env = assignment_local
    reps = [make_user(env["users"], env["team"]) for _ in range(5)]
    lead_ids = [make_lead(env["leads"]).id for _ in range(200)]

    run_concurrently(template, lead_ids)

    by_owner = owners(env["leads"], lead_ids)
    assert None not in by_owner
    loads = [by_owner[rep.sub] for rep in reps]
    assert sum(loads) == 200
    assert max(loads) - min(loads) <= 1, loads
    counters = env["assignments"].loads(rep.sub for rep in reps)
    assert counters == {rep.sub: by_owner[rep.sub] for rep in reps}
    assert claims(env["client"], env["table"], lead_ids) == by_owner
    assert all(assigned_activities(env["leads"], lead_id) == 1 for lead_id in lead_ids)


def test_a_rep_at_capacity_or_out_of_office_is_skipped_under_concurrency(
    assignment_local: dict[str, Any], template: Template
) -> None:
    env = assignment_local
    absent = OutOfOffice(start=NOW - timedelta(days=1), end=NOW + timedelta(days=3650))
    capped = make_user(env["users"], env["team"], capacity=3)
    away = make_user(env["users"], env["team"], out_of_office=absent)
    inactive = make_user(env["users"], env["team"], active=False)
    open_ended = [make_user(env["users"], env["team"]) for _ in range(2)]
    lead_ids = [make_lead(env["leads"]).id for _ in range(40)]

    run_concurrently(template, lead_ids)

    by_owner = owners(env["leads"], lead_ids)
    assert by_owner[capped.sub] == 3
    assert by_owner[away.sub] == by_owner[inactive.sub] == 0
    assert sorted(by_owner[rep.sub] for rep in open_ended) == [18, 19]
    assert env["assignments"].loads([capped.sub, away.sub]) == {capped.sub: 3, away.sub: 0}


def test_concurrent_manual_reassignments_keep_every_counter_exact(
    assignment_local: dict[str, Any], template: Template, function_env: Any
) -> None:
    env = assignment_local
    reps = [make_user(env["users"], env["team"]) for _ in range(4)]
    lead_ids = [make_lead(env["leads"]).id for _ in range(12)]
    run_concurrently(template, lead_ids, workers=4)
    function_env("AssignmentApiFunction", DEFAULT_TEAM=env["team"])
    from crm import bootstrap

    service = bootstrap.assignment_service()
    manager = Principal(
        subject="manager-x", email=None, groups=frozenset({"manager"}), teams=frozenset({env["team"]})
    )
    errors: list[BaseException] = []

    def shuffle(seed: int) -> None:
        rng = random.Random(seed)
        try:
            for _ in range(15):
                service.assign_manually(rng.choice(lead_ids), rng.choice(reps).sub, "rebalancing", manager)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=shuffle, args=(seed,)) for seed in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)

    assert not errors, errors
    by_owner = owners(env["leads"], lead_ids)
    assert sum(by_owner.values()) == 12 and None not in by_owner
    assert env["assignments"].loads(rep.sub for rep in reps) == {rep.sub: by_owner[rep.sub] for rep in reps}
    assert claims(env["client"], env["table"], lead_ids) == by_owner


def test_notifications_delivered_many_times_at_once_send_each_email_once(
    assignment_local: dict[str, Any],
    moto_endpoint: str,
    template: Template,
    function_env: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Six execution environments receive every notification job at the same moment (SQS delivers at least
    once, and a redelivery can overlap the first attempt): the delivery claim lets one of them send."""
    env = assignment_local
    monkeypatch.setenv("AWS_ENDPOINT_URL_SESV2", moto_endpoint)
    verify_email_identities(
        boto3.client("sesv2", region_name="us-east-1", endpoint_url=moto_endpoint), template, load_seed()
    )
    function_env("NotificationFunction")
    jobs, recipients = [], []
    for _ in range(20):
        rep = make_user(env["users"], env["team"])
        lead = make_lead(env["leads"])
        env["leads"].replace(lead.model_copy(update={"assigned_to": rep.sub}), lead.version, [])
        jobs.append(
            {
                "kind": "lead_assigned",
                "lead_id": lead.id,
                "recipient": rep.sub,
                "event_id": f"assigned:{rep.sub}:t",
            }
        )
        recipients.append(rep.email)
    function = template.function("NotificationFunction")
    handlers = [load_handler(function, copy=200 + n) for n in range(6)]
    start = threading.Barrier(6)

    def deliver_all(n: int) -> None:
        start.wait()
        for offset in range(0, len(jobs), 10):
            event = sqs_event(jobs[offset : offset + 10], "leadflow-local-NotificationQueue")
            handlers[n](event, FakeLambdaContext(function_name=function.name))

    threads = [threading.Thread(target=deliver_all, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)

    # A worker that found another one mid-send reported that job failed: SQS delivers it again later.
    redelivered = handlers[0](
        sqs_event(jobs[:10], "leadflow-local-NotificationQueue"),
        FakeLambdaContext(function_name=function.name),
    )
    redelivered_rest = handlers[1](
        sqs_event(jobs[10:], "leadflow-local-NotificationQueue"),
        FakeLambdaContext(function_name=function.name),
    )

    sent = [
        address
        for message in outbox.sent_messages(moto_model_data(moto_endpoint))
        for address in message["to"]
        if address in recipients
    ]
    assert sorted(sent) == sorted(recipients)  # every email once, none twice
    assert redelivered == redelivered_rest == {"batchItemFailures": []}


def moto_model_data(endpoint: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{endpoint}/moto-api/data.json", timeout=10) as response:
        data: dict[str, Any] = json.loads(response.read())
    return data


class FailingThenWorkingPublisher:
    """The queue is unreachable for the first send, then works (as a throttled SQS call and its retry)."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.failures = 1

    def send(self, queue_url: str, body: dict[str, Any]) -> None:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("queue unreachable")
        self.sent.append(body)


def test_a_routing_request_whose_message_failed_is_withdrawn_without_a_delete_and_requested_again(
    assignment_local: dict[str, Any],
) -> None:
    """The capture role has no DeleteItem: withdrawing a request must be an update, and the retry must be
    able to request again over the withdrawn marker."""
    lead = make_lead(assignment_local["leads"], score=90, grade="A")
    publisher = FailingThenWorkingPublisher()
    calls: list[str] = []
    client = assignment_local["client"]
    client.meta.events.register("before-call.dynamodb.*", lambda model, **_: calls.append(model.name))
    routing = RoutingService(
        assignment_local["leads"],
        assignment_local["assignments"],
        publisher,  # type: ignore[arg-type]
        assignment_queue_url="queue",
        sales_threshold=lambda: 70,
        now=lambda: NOW,
    )

    with pytest.raises(ConnectionError):
        routing.request(lead.id, Trigger.LIVE_CHAT)
    assert "DeleteItem" not in calls
    assert assignment_local["assignments"].get_marker(lead.id) is None

    assert routing.request(lead.id, Trigger.LIVE_CHAT) is True
    assert [job["lead_id"] for job in publisher.sent] == [lead.id]
    marker = assignment_local["assignments"].get_marker(lead.id)
    assert marker is not None and marker.state.value == "requested"
    assert routing.request(lead.id, Trigger.LIVE_CHAT) is False  # requested once
