"""Rule preview benchmark: the preview's time over N open leads on DynamoDB Local, as a ratio to plain reads
of the same leads in the same run.

    PYTHONPATH=layers/crm:. python -m tests.bench.rule_preview [--leads 10000] [--rounds 3]

The leads carry 0-3 behavioural activities each, so the default rules read activities. Each figure is the
median of `--rounds` runs, in this order each round:
1. Baseline, Query-and-read: Query every open-status shard of GSI2 for the ids, then read each lead with
   its activities (one Query of its partition), with the preview's own readers: the reads a preview needs,
   without scoring anything.
2. Reference, index only: Query every open-status shard of GSI2 for the whole lead items (no activities):
   the least any read of these leads can cost.
3. The preview of "Technology +25 instead of +10" and a threshold of 75 (RulePreviewService, as the API
   runs it): both rule sets scored for every lead, the grade counts and the 20 biggest movers.
"""

import argparse
import os
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
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
from boto3.dynamodb.types import TypeSerializer
from botocore.config import Config
from crm.leads.model import Activity, LeadStatus
from crm.leads.repository import ActivityItem
from crm.platform.auth import Principal
from crm.scoring.preview import parse_changes
from crm.scoring.preview_repository import PreviewRepository
from crm.scoring.preview_service import RulePreviewService
from crm.scoring.rescoring import status_partitions
from crm.scoring.rule_repository import ScoringRuleRepository

from devstack.dynamodb_local import DynamoDBLocal
from devstack.provision import create_tables
from devstack.template import load_template
from tests.lead_data import item_of, lead, store

SHARDS = 4
ADMIN = Principal("admin-bench", None, frozenset({"admin"}))
TECHNOLOGY_25 = [
    {"op": "update", "id": "seed-industry", "value": ["Finance", "Healthcare"]},
    {
        "op": "create",
        "name": "Technology",
        "category": "firmographic",
        "field": "industry",
        "operator": "equals",
        "value": "Technology",
        "points": 25,
    },
]
OPEN = (LeadStatus.NEW, LeadStatus.CONTACTED, LeadStatus.QUALIFIED, LeadStatus.UNQUALIFIED)


def make_leads(client: Any, table: str, count: int) -> int:
    """`count` open leads over every open status, with 0-3 behavioural activities each; returns items."""
    serializer = TypeSerializer()
    start = datetime(2026, 1, 5, tzinfo=UTC)
    items = []
    for index in range(count):
        created = start + timedelta(seconds=index)
        generated = lead(created, status=OPEN[index % len(OPEN)], qualified=index % 4 == 2).model_copy(
            update={
                "title": ("CEO", "VP Sales", "Director of IT", "Engineer")[index % 4],
                "industry": ("Technology", "Finance", "Retail")[index % 3],
                "employee_count": (50, 500, 5000)[index % 3],
            }
        )
        items.append(item_of(generated, SHARDS))
        for number, kind in enumerate(("page_viewed", "email_opened", "form_submitted")[: index % 4]):
            activity = Activity(
                id=f"{generated.id[:8]}-{number}",
                lead_id=generated.id,
                type=kind,
                description=kind,
                created_by="bench",
                created_at=created,
            )
            item = ActivityItem.from_activity(activity).model_dump()
            items.append(
                {key: serializer.serialize(value) for key, value in item.items() if value is not None}
            )
    return store(client, table, items)


def index_only(client: Any, table: str, readers: int) -> int:
    """Every open lead item, straight from GSI2, all shards in parallel."""

    def read(partition_key: str) -> int:
        request: dict[str, Any] = {
            "TableName": table,
            "IndexName": "GSI2",
            "KeyConditionExpression": "GSI2PK = :pk",
            "ExpressionAttributeValues": {":pk": {"S": partition_key}},
        }
        found = 0
        while True:
            response = client.query(**request)
            found += len(response["Items"])
            if "LastEvaluatedKey" not in response:
                return found
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    keys = [partition.key for partition in status_partitions(SHARDS)]
    with ThreadPoolExecutor(max_workers=readers) as pool:
        return sum(pool.map(read, keys))


def query_and_read(repository: PreviewRepository) -> int:
    """The ids from GSI2, then each lead with its activities: the preview's reads, nothing scored."""
    return sum(1 for _ in repository.leads_with_activities(repository.open_lead_ids()))


def median_seconds(run: Callable[[], Any], rounds: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(rounds):
        started = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--leads", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    template = load_template()
    table = template.tables[0].name
    with DynamoDBLocal() as database:
        config = Config(retries={"mode": "standard", "max_attempts": 4}, max_pool_connections=25)
        client = boto3.client(
            "dynamodb", region_name="us-east-1", endpoint_url=database.endpoint_url, config=config
        )
        create_tables(client, template)
        stored = make_leads(client, table, args.leads)
        rules = ScoringRuleRepository(table, client=client)
        rules.rule_set(lambda: datetime.now(UTC))  # the default rules, seeded once (a write)
        repository = PreviewRepository(table, SHARDS, client=client)
        service = RulePreviewService(rules, repository, lambda: 70, max_leads=args.leads)
        changes = parse_changes(TECHNOLOGY_25)

        baseline, read = median_seconds(lambda: query_and_read(repository), args.rounds)
        index, listed = median_seconds(lambda: index_only(client, table, repository.readers), args.rounds)
        previewing, preview = median_seconds(lambda: service.preview(ADMIN, changes, 75), args.rounds)

    assert read == listed == preview.leads_considered == args.leads, (read, listed, preview.leads_considered)
    print(
        f"DynamoDB Local, {args.leads:,} open leads ({stored - args.leads:,} activities), "
        f"{repository.readers} readers, median of {args.rounds}"
    )
    print(f"  baseline: Query-and-read (ids, then each lead's partition)  {baseline:6.2f} s   (baseline)")
    print(
        f"  reference: GSI2 lead items only, no activities           {index:6.2f} s   "
        f"ratio {index / baseline:.2f}x"
    )
    print(
        f"  preview: Technology +25, threshold 75                    {previewing:6.2f} s   "
        f"ratio {previewing / baseline:.2f}x of baseline, {previewing / index:.2f}x of the index-only read"
    )
    print(
        f"  preview answer: {preview.leads_moved:,} leads move; sales {preview.current.sales:,} → "
        f"{preview.proposed.sales:,}"
    )


if __name__ == "__main__":
    main()
