"""Rescoring benchmark: leads rescored per second in the fan-out, as a ratio to a baseline measured in the
same run against the same DynamoDB Local.

    PYTHONPATH=layers/crm:. python -m tests.bench.rescoring [--leads 1000] [--workers 8] [--seconds 5]

1. Baseline: raw conditional UpdateItem calls per second (`SET version = :next IF version = :read`, each
   thread on its own items, so none conflicts) from `--workers` threads: the cheapest write a rescore
   could possibly be.
2. The fan-out of a rule change: the rescore job (16 status partitions, pages of 50 leads, each page
   enqueueing the next) drained by `--workers` workers standing in for concurrent Lambdas (one DynamoDB
   caller each, the same concurrency as the baseline), with every lead's score changing. Each lead costs
   one Query of its partition and one TransactWriteItems (lead update, ledger, score_changed activity).
   Figures: leads rescored per second, the ratio to the baseline, and DynamoDB calls per lead.
The SQS queue is an in-memory list here: the figure is the table's, not SQS's.
"""

import argparse
import os
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
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
from botocore.config import Config
from crm.leads.model import Activity, Lead
from crm.leads.repository import LeadRepository
from crm.platform.ids import new_id
from crm.scoring.rescore_job_repository import RescoreJobRepository
from crm.scoring.rescore_queue import InMemoryRescoreQueue
from crm.scoring.rescoring import RescoreJob
from crm.scoring.rule_repository import ScoringRuleRepository
from crm.scoring.rules import ScoringRuleInput
from crm.scoring.score_repository import ScoreRepository
from crm.scoring.service import RescoreService, RuleService, ScoringService

from devstack.dynamodb_local import DynamoDBLocal
from devstack.provision import create_tables
from devstack.template import load_template

SHARDS = 4


class CallCounter:
    """Counts the DynamoDB API calls a client makes (botocore's before-call event)."""

    def __init__(self, client: Any) -> None:
        self.calls = 0
        self._lock = threading.Lock()
        client.meta.events.register("before-call.dynamodb.*", self._count)

    def _count(self, **_: Any) -> None:
        with self._lock:
            self.calls += 1


def raw_conditional_updates(client: Any, table: str, seconds: float, workers: int) -> float:
    """Conditional UpdateItem calls per second, each thread on its own 50 items."""
    keys = [
        [{"PK": {"S": f"BENCH#{worker}#{n}"}, "SK": {"S": "BENCH"}} for n in range(50)]
        for worker in range(workers)
    ]
    for worker_keys in keys:
        for key in worker_keys:
            client.put_item(TableName=table, Item={**key, "version": {"N": "1"}})
    deadline = time.perf_counter() + seconds
    counts = [0] * workers

    def loop(worker: int) -> None:
        versions = [1] * len(keys[worker])
        while time.perf_counter() < deadline:
            index = counts[worker] % len(versions)
            client.update_item(
                TableName=table,
                Key=keys[worker][index],
                UpdateExpression="SET #v = :next",
                ConditionExpression="#v = :read",
                ExpressionAttributeNames={"#v": "version"},
                ExpressionAttributeValues={
                    ":read": {"N": str(versions[index])},
                    ":next": {"N": str(versions[index] + 1)},
                },
            )
            versions[index] += 1
            counts[worker] += 1

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(loop, range(workers)))
    return sum(counts) / (time.perf_counter() - started)


def make_leads(leads: LeadRepository, count: int, workers: int) -> None:
    now = datetime.now(UTC)
    tag = uuid.uuid4().hex[:8]

    def create(index: int) -> None:
        lead = Lead(
            id=new_id(),
            first_name="Ada",
            last_name=f"Bench {index}",
            email=f"bench-{tag}-{index}@analytical.gov",
            title=("VP Engineering", "Director of IT", "CTO", "Engineer")[index % 4],
            industry=("Technology", "Retail", "Finance")[index % 3],
            employee_count=(50, 500, 5000)[index % 3],
            lead_source="api",
            created_at=now,
            updated_at=now,
        )
        visits = [
            Activity(
                id=new_id(),
                lead_id=lead.id,
                type=kind,
                description=kind,
                created_by="bench",
                created_at=now,
            )
            for kind in ("page_viewed", "email_opened", "email_clicked")[: index % 4]
        ]
        leads.create(lead, visits)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(create, range(count)))


def drain(service: RescoreService, queue: InMemoryRescoreQueue, workers: int) -> None:
    """Workers take pages until the queue stays empty (a page in flight may still enqueue the next)."""
    busy = [0]
    lock = threading.Lock()

    def work(_: int) -> None:
        while True:
            page = queue.take()
            if page is None:
                with lock:
                    if busy[0] == 0 and not queue.messages:
                        return
                time.sleep(0.001)
                continue
            with lock:
                busy[0] += 1
            try:
                service.process_page(page)
            finally:
                with lock:
                    busy[0] -= 1

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(work, range(workers)))


def timed_job(
    start: Callable[[], RescoreJob], service: RescoreService, queue: InMemoryRescoreQueue, workers: int
) -> tuple[RescoreJob, float]:
    started = time.perf_counter()
    job = start()
    drain(service, queue, workers)
    elapsed = time.perf_counter() - started
    final = service.jobs.get(job.job_id)
    assert final is not None
    return final, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--leads", type=int, default=1000)
    parser.add_argument(
        "--workers", type=int, default=8, help="concurrent callers (baseline threads, workers)"
    )
    parser.add_argument("--seconds", type=float, default=5.0, help="length of the baseline measurement")
    args = parser.parse_args()

    template = load_template()
    table = template.tables[0].name
    with DynamoDBLocal() as database:
        config = Config(retries={"mode": "standard", "max_attempts": 4}, max_pool_connections=64)
        client = boto3.client(
            "dynamodb", region_name="us-east-1", endpoint_url=database.endpoint_url, config=config
        )
        create_tables(client, template)

        baseline = raw_conditional_updates(client, table, args.seconds, args.workers)

        leads = LeadRepository(table, shards=SHARDS, client=client)
        make_leads(leads, args.leads, args.workers)
        rules = ScoringRuleRepository(table, client=client)
        scoring = ScoringService(ScoreRepository(table, SHARDS, client=client), rules)
        queue = InMemoryRescoreQueue()
        service = RescoreService(
            RescoreJobRepository(table, client=client),
            rules,
            scoring,
            queue,
            shards=SHARDS,
            page_size=50,
            concurrency=1,  # one caller per worker: the same concurrency as the baseline
        )

        # First scoring of every lead (the seeded defaults' job), then a rule change that moves every score.
        first, first_seconds = timed_job(
            lambda: service.start_rules_job(rules.rule_set().revision), service, queue, args.workers
        )
        rule = ScoringRuleInput(
            name="Government email (bench)",
            category="demographic",
            field="email",
            operator="ends_with",
            value=".gov",
            points=3,
        )
        _, revision = RuleService(rules).create(rule)
        counter = CallCounter(client)
        changed, changed_seconds = timed_job(
            lambda: service.start_rules_job(revision), service, queue, args.workers
        )
        calls = counter.calls

    assert first.leads_done == first.leads_found == args.leads, first
    assert changed.leads_done == changed.leads_changed == args.leads, changed
    first_rate = first.leads_done / first_seconds
    changed_rate = changed.leads_done / changed_seconds
    print(f"DynamoDB Local, {args.leads} open leads (0-3 activities each), {args.workers} concurrent callers")
    print(f"  baseline: conditional UpdateItem     {baseline:10,.0f} writes/s   (baseline)")
    print(
        f"  fan-out, first scoring                {first_rate:10,.0f} leads/s    "
        f"ratio {first_rate / baseline:.1%} of baseline   ({first_seconds:.2f} s)"
    )
    print(
        f"  fan-out, after a rule change          {changed_rate:10,.0f} leads/s    "
        f"ratio {changed_rate / baseline:.1%} of baseline   ({changed_seconds:.2f} s)"
    )
    print(f"  DynamoDB calls per rescored lead      {calls / changed.leads_done:10.2f}        (all included)")


if __name__ == "__main__":
    main()
