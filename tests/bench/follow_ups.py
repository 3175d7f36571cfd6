"""Follow-up scheduler benchmark against DynamoDB Local, beside a same-run baseline.

    PYTHONPATH=layers/crm:. python -m tests.bench.follow_ups [--tasks 500]

1. Reminders fired per second by one scheduler run (Query the due index, queue the job, conditional
   UpdateItem per task) against the baseline: the same number of raw conditional UpdateItems, one after
   the other, on prepared items. The scheduler does one extra read of the lead per task, so about 50% of
   the baseline is the aim.
2. DynamoDB calls of an idle run (nothing due): what the every-minute rule costs when there is no work.
3. DynamoDB calls of a run after a 3-day outage with the same tasks due: the wider window costs a few more
   Queries, not a scan.
"""

import argparse
import os
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

os.environ.update(
    AWS_ACCESS_KEY_ID="bench",
    AWS_SECRET_ACCESS_KEY="bench",
    AWS_DEFAULT_REGION="us-east-1",
    AWS_REGION="us-east-1",
    POWERTOOLS_TRACE_DISABLED="true",
    POWERTOOLS_METRICS_DISABLED="true",
    POWERTOOLS_LOG_LEVEL="WARNING",
)

import boto3

from devstack.dynamodb_local import DynamoDBLocal
from devstack.provision import create_tables
from devstack.template import load_template

BASE = datetime(2032, 6, 1, 9, 0, tzinfo=UTC)


class NullPublisher:
    def __init__(self) -> None:
        self.sent = 0

    def send(self, queue_url: str, body: dict[str, Any]) -> None:
        self.sent += 1

    def send_many(self, queue_url: str, bodies: list[dict[str, Any]]) -> None:
        self.sent += len(bodies)


def counting(client: Any) -> Counter[str]:
    calls: Counter[str] = Counter()

    def count(event_name: str, **_: Any) -> None:
        calls[event_name.rsplit(".", 1)[-1]] += 1

    client.meta.events.register("before-call.dynamodb.*", count)
    return calls


def prepare_tasks(client: Any, table: str, count: int, due: datetime) -> list[str]:
    from crm.leads.model import Activity
    from crm.leads.repository import LeadRepository
    from crm.leads.task_repository import TaskRepository
    from crm.leads.tasks import new_task

    from tests.assignment_support import make_lead

    leads, tasks = LeadRepository(table, client=client), TaskRepository(table, client=client)
    ids = []
    for n in range(count):
        lead = make_lead(leads)
        task = new_task(
            lead.id, f"Call {n}", due_at=due, owner="rep", created_by="bench", now=due - timedelta(days=1)
        )
        tasks.create(task, list[Activity]())
        ids.append(task.id)
    return ids


def scheduler(client: Any, table: str, now: datetime, checkpoint: str) -> tuple[Any, NullPublisher]:
    from crm.follow_ups.repository import FollowUpRepository
    from crm.follow_ups.rules import SpeedToLeadSla
    from crm.follow_ups.service import FollowUpService
    from crm.leads.repository import LeadRepository
    from crm.leads.task_repository import TaskRepository
    from crm.platform.checkpoints import CheckpointRepository
    from crm.platform.scheduler import FollowUpScheduler

    class Checkpoints(CheckpointRepository):
        def get(self, source: str) -> datetime | None:
            return super().get(f"{checkpoint}-{source}")

        def put(self, source: str, until: datetime) -> None:
            super().put(f"{checkpoint}-{source}", until)

    publisher = NullPublisher()
    service = FollowUpService(
        LeadRepository(table, client=client),
        TaskRepository(table, client=client),
        FollowUpRepository(table, client=client),
        publisher,
        notification_queue_url="queue",
        sla=SpeedToLeadSla(timedelta(hours=1)),
        default_team="sales",
        now=lambda: now,
    )
    checkpoints = Checkpoints(table, client=client)
    return FollowUpScheduler(
        checkpoints, service.due_sources(), now=lambda: now, batch_limit=100_000
    ), publisher


def raw_updates(client: Any, table: str, count: int) -> float:
    keys = [f"RAWREMIND#{uuid.uuid4().hex}" for _ in range(count)]
    for key in keys:
        client.put_item(TableName=table, Item={"PK": {"S": key}, "SK": {"S": "TASK"}, "version": {"N": "1"}})
    started = time.perf_counter()
    for key in keys:
        client.update_item(
            TableName=table,
            Key={"PK": {"S": key}, "SK": {"S": "TASK"}},
            UpdateExpression="SET reminded_at = :now, version = :next REMOVE GSI2PK, GSI2SK",
            ConditionExpression="version = :read",
            ExpressionAttributeValues={":now": {"S": "x"}, ":read": {"N": "1"}, ":next": {"N": "2"}},
        )
    return count / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=500)
    args = parser.parse_args()
    template = load_template("template.yaml")
    with DynamoDBLocal() as database:
        client = boto3.client("dynamodb", endpoint_url=database.endpoint_url)
        create_tables(client, template)
        table = template.tables[0].name
        calls = counting(client)

        due = BASE + timedelta(minutes=30)
        prepare_tasks(client, table, args.tasks, due)
        baseline = raw_updates(client, table, args.tasks)

        run, publisher = scheduler(client, table, BASE, "idle")
        run.run()  # the first run: establishes the checkpoint
        calls.clear()
        run.run()
        idle_calls = sum(calls.values())

        run, publisher = scheduler(client, table, due + timedelta(minutes=1), "idle")
        calls.clear()
        started = time.perf_counter()
        report = run.run()
        elapsed = time.perf_counter() - started
        assert report.fired == args.tasks and publisher.sent == args.tasks, (report, publisher.sent)
        rate = args.tasks / elapsed
        per_task = {name: round(count / args.tasks, 2) for name, count in sorted(calls.items())}

        prepare_tasks(client, table, args.tasks, BASE + timedelta(days=2, minutes=30))
        run, publisher = scheduler(client, table, BASE + timedelta(days=3), "idle")
        calls.clear()
        outage = run.run()
        outage_queries = calls["Query"]

    print(f"follow-up scheduler, {args.tasks} due task reminders against DynamoDB Local")
    print(f"  baseline: raw conditional UpdateItem      {baseline:8.0f} /s")
    print(f"  scheduler run: reminders fired            {rate:8.0f} /s   {rate / baseline:.2f} of baseline")
    print(f"  DynamoDB calls per reminder                {per_task}")
    print(f"  idle run (nothing due): DynamoDB calls     {idle_calls}")
    print(
        f"  run after a 3-day outage: fired {outage.fired}, Queries {outage_queries} "
        f"(4 shards x 4 due days x {len(outage.sources)} kinds of due work)"
    )


if __name__ == "__main__":
    main()
