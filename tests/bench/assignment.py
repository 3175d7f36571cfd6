"""Assignment benchmark: assignments per second on DynamoDB Local, beside baselines measured in the same run.

    python -m tests.bench.assignment [--leads 400] [--workers 8] [--reps 5] [--seconds 3]

1. Raw conditional UpdateItem per second (ADD to a counter if it holds the value read: the cheapest write
   an assignment's concurrency control could be), from the same number of threads.
2. Raw 5-item TransactWriteItems per second (the shape of one assignment, without reads or contention).
3. Assignments per second: AssignmentService.assign from `workers` threads over one team of `reps` reps
   (reads, rules, choice, one transaction; lost races re-read and choose again), with the ratio to (1),
   the conflicts per assignment and the DynamoDB calls per assignment. Also with one worker, no contention.
"""

import argparse
import os
import sys
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
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


def timed(workers: int, seconds: float, operation: Any) -> float:
    """Operations per second of `operation(worker, n)` run by `workers` threads for `seconds`."""
    counts = [0] * workers
    deadline = time.perf_counter() + seconds

    def loop(worker: int) -> None:
        while time.perf_counter() < deadline:
            operation(worker, counts[worker])
            counts[worker] += 1

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(loop, range(workers)))
    return sum(counts) / (time.perf_counter() - started)


def raw_conditional_updates(client: Any, table: str, workers: int, seconds: float) -> float:
    keys = [f"RAW#{uuid.uuid4().hex}" for _ in range(workers)]

    def update(worker: int, n: int) -> None:
        client.update_item(
            TableName=table,
            Key={"PK": {"S": keys[worker]}, "SK": {"S": "LOAD"}},
            UpdateExpression="ADD open_leads :one",
            ConditionExpression="attribute_not_exists(open_leads) OR open_leads = :seen",
            ExpressionAttributeValues={":one": {"N": "1"}, ":seen": {"N": str(n)}},
        )

    return timed(workers, seconds, update)


def raw_transactions(client: Any, table: str, workers: int, seconds: float) -> float:
    def transact(worker: int, n: int) -> None:
        key = uuid.uuid4().hex
        client.transact_write_items(
            TransactItems=[
                {
                    "Put": {
                        "TableName": table,
                        "Item": {"PK": {"S": f"RAWTX#{key}"}, "SK": {"S": f"PART#{part}"}},
                        "ConditionExpression": "attribute_not_exists(PK)",
                    }
                }
                for part in range(5)
            ]
        )

    return timed(workers, seconds, transact)


def assign_all(service: Any, lead_ids: list[str], workers: int) -> tuple[float, int]:
    """Assign every lead from `workers` threads; returns (assignments per second, lost races)."""
    from crm.assignment import repository as assignment_repository
    from crm.assignment.choice import Trigger

    lost = Counter[str]()
    real_commit = assignment_repository.AssignmentRepository.commit_assignment

    def counting_commit(self: Any, plan: Any) -> None:
        try:
            real_commit(self, plan)
        except assignment_repository.LoadChanged:
            lost["load_changed"] += 1
            raise

    assignment_repository.AssignmentRepository.commit_assignment = counting_commit  # type: ignore[method-assign]
    pending = list(lead_ids)
    lock = threading.Lock()

    def work(_: int) -> None:
        while True:
            with lock:
                if not pending:
                    return
                lead_id = pending.pop()
            service.assign(lead_id, Trigger.SCORE_THRESHOLD)

    started = time.perf_counter()
    try:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(work, range(workers)))
    finally:
        assignment_repository.AssignmentRepository.commit_assignment = real_commit  # type: ignore[method-assign]
    return len(lead_ids) / (time.perf_counter() - started), sum(lost.values())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--leads", type=int, default=400)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()

    template = load_template()
    with DynamoDBLocal() as database:
        client = boto3.client("dynamodb", endpoint_url=database.endpoint_url, region_name="us-east-1")
        create_tables(client, template)
        table = template.global_environment["TABLE_NAME"]
        team = f"bench-{uuid.uuid4().hex[:6]}"
        os.environ.update(
            TABLE_NAME=table, AWS_ENDPOINT_URL_DYNAMODB=database.endpoint_url, DEFAULT_TEAM=team
        )

        from crm import bootstrap
        from crm.leads.repository import LeadRepository
        from crm.users.repository import UserRepository

        from tests.assignment_support import make_lead, make_user

        users = UserRepository(table, client=client)
        leads = LeadRepository(table, client=client)
        reps = [make_user(users, team) for _ in range(args.reps)]

        raw_updates = raw_conditional_updates(client, table, args.workers, args.seconds)
        raw_tx = raw_transactions(client, table, args.workers, args.seconds)

        calls = Counter[str]()
        service = bootstrap.assignment_service()
        service.leads.client.meta.events.register(
            "before-call.dynamodb", lambda model, **_: calls.update([model.name])
        )
        single = [make_lead(leads).id for _ in range(max(20, args.leads // 10))]
        calls.clear()
        single_rate, _ = assign_all(service, single, workers=1)
        calls_per_assignment = sum(calls.values()) / len(single)
        call_mix = ", ".join(f"{name} {count / len(single):.1f}" for name, count in sorted(calls.items()))

        lead_ids = [make_lead(leads).id for _ in range(args.leads)]
        rate, lost = assign_all(service, lead_ids, args.workers)
        loads = bootstrap.assignment_repository().loads(rep.sub for rep in reps)

    spread = max(loads.values()) - min(loads.values())
    print(f"DynamoDB Local, {args.workers} threads, team of {args.reps} reps")
    print(f"  raw conditional UpdateItem      {raw_updates:7.0f} /s  (baseline)")
    print(f"  raw 5-item TransactWriteItems   {raw_tx:7.0f} /s  ({raw_tx / raw_updates:.0%} of baseline)")
    print(
        f"  assignments, {args.workers} workers         {rate:7.0f} /s  "
        f"({rate / raw_updates:.0%} of baseline, "
        f"{rate / raw_tx:.0%} of raw transactions)"
    )
    print(f"      lost races per assignment  {lost / args.leads:7.2f}     (re-read and chosen again)")
    print(f"      open leads spread          {spread:7d}     (max - min over the reps)")
    print(
        f"  assignments, 1 worker          {single_rate:7.0f} /s  "
        f"({single_rate / raw_updates:.0%} of baseline)"
    )
    print(f"  DynamoDB calls per assignment  {calls_per_assignment:7.1f}     ({call_mix})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
