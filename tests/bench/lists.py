"""List and dashboard latency with 1,000 and with 100,000 leads, in one run: cost should follow the page.

    python -m tests.bench.lists [--small 1000] [--large 100000] [--requests 40]

Two tables shaped exactly like LeadsTable (template.yaml) in one DynamoDB Local, loaded with BatchWriteItem
in the stored shape (`LeadItem.from_lead`, list-index keys included) and with the analytics counters those
leads add up to (`counter_items`). The leads of both tables spread over the same 30 days, over every
status, holder and source; the large table simply has 100 times more per day. Then the real handlers of
LeadQueriesFunction and AnalyticsFunction answer the same requests on each table; the figure is the
large/small ratio of their median latency (aim: near 1, the work depends on the page, not the table).
"""

import argparse
import os
import statistics
import sys
import time
import uuid
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
    CURSOR_SIGNING_KEY="bench-cursor-key",
)

import boto3
from crm.analytics.repository import counter_items
from crm.platform.dynamo import marshal

from devstack.dynamodb_local import DynamoDBLocal
from devstack.provision import table_definition
from devstack.template import load_template
from tests.lead_data import item_of, store, varied_leads
from tests.support import FakeLambdaContext, event, load_handler

FIRST_DAY = datetime(2031, 3, 1, tzinfo=UTC)
DAYS = 30
ROUNDS = 4
MANAGER = {"sub": "bench-manager", "cognito:groups": "[manager]"}
REP = {"sub": "rep-1", "cognito:groups": "[rep]"}
ADMIN = {"sub": "bench-admin", "cognito:groups": "[admin]"}
RANGE = {
    "from": FIRST_DAY.date().isoformat(),
    "to": (FIRST_DAY + timedelta(days=DAYS - 1)).date().isoformat(),
}
REQUESTS: list[tuple[str, str, str, dict[str, str], dict[str, str]]] = [
    # (label, function, sample event, claims, query)
    ("GET /leads  manager, status=new", "LeadQueriesFunction", "list_leads.json", MANAGER, {"status": "new"}),
    ("GET /leads  rep, hottest first", "LeadQueriesFunction", "list_leads.json", REP, {"sort": "score"}),
    ("GET /leads  admin, grade=A", "LeadQueriesFunction", "list_leads.json", ADMIN, {"grade": "A"}),
    ("GET /leads  admin, everything", "LeadQueriesFunction", "list_leads.json", ADMIN, {}),
    (
        "GET /analytics/funnel  by source",
        "AnalyticsFunction",
        "analytics_funnel.json",
        MANAGER,
        {**RANGE, "group_by": "source"},
    ),
    (
        "GET /analytics/funnel  by day",
        "AnalyticsFunction",
        "analytics_funnel.json",
        MANAGER,
        {**RANGE, "group_by": "day"},
    ),
]


def create_table(client: Any, template: Any) -> str:
    table = next(t for t in template.tables if t.logical_id == "LeadsTable")
    definition = table_definition(table)
    definition["TableName"] = f"bench-{uuid.uuid4().hex[:8]}"
    definition.pop("StreamSpecification", None)  # loaded directly: no stream consumer runs here
    client.create_table(**definition)
    client.get_waiter("table_exists").wait(TableName=definition["TableName"])
    return str(definition["TableName"])


def load(client: Any, table: str, count: int) -> float:
    started = time.perf_counter()
    leads = varied_leads(count, FIRST_DAY, DAYS, seed=count)
    store(client, table, (item_of(lead, 4) for lead in leads))
    store(client, table, (marshal(item) for item in counter_items(leads)))
    return time.perf_counter() - started


def request(sample: str, claims: dict[str, str], query: dict[str, str]) -> dict[str, Any]:
    data = event(sample)
    data["requestContext"]["authorizer"]["jwt"]["claims"].update(claims)
    data["queryStringParameters"] = {**query, "limit": "25"} if "leads" in sample else dict(query)
    return data


def measure(handler: Any, sample: dict[str, Any], requests: int, warm: int = 2) -> list[float]:
    context = FakeLambdaContext(function_name="bench")
    for _ in range(warm):  # untimed: clients, caches
        assert handler(sample, context)["statusCode"] == 200
    timings = []
    for _ in range(requests):
        started = time.perf_counter()
        response = handler(sample, context)
        timings.append(time.perf_counter() - started)
        assert response["statusCode"] == 200, response["body"]
    return timings


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--large", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=40)
    args = parser.parse_args()
    template = load_template()

    with DynamoDBLocal() as database:
        client = boto3.client("dynamodb", endpoint_url=database.endpoint_url, region_name="us-east-1")
        tables = {size: create_table(client, template) for size in (args.small, args.large)}
        for size, table in tables.items():
            seconds = load(client, table, size)
            print(f"loaded {size:>7,} leads (+ their counters) in {seconds:6.1f} s")

        handlers = {
            name: load_handler(template.function(name))
            for name in ("LeadQueriesFunction", "AnalyticsFunction")
        }
        os.environ["AWS_ENDPOINT_URL_DYNAMODB"] = database.endpoint_url
        for name in handlers:
            for key, value in template.function(name).environment.items():
                os.environ.setdefault(key, value)
        results: dict[str, dict[int, list[float]]] = {}
        # Rounds alternate the tables, so warm-up (DynamoDB Local's JIT) and noise from other work on the
        # machine fall on both sizes alike; the first round only warms up.
        rounds = ROUNDS + 1
        for round_number in range(rounds):
            for size, table in tables.items():
                os.environ["TABLE_NAME"] = table
                _reset()
                for label, function, sample, claims, query in REQUESTS:
                    count = max(1, args.requests // ROUNDS)
                    timings = measure(handlers[function], request(sample, claims, query), count)
                    if round_number:
                        results.setdefault(label, {}).setdefault(size, []).extend(timings)

    print(f"\nmedian (p90) latency in ms, {args.requests} requests each, real handlers, DynamoDB Local")
    print(f"{'request':<40} {f'{args.small:,} leads':>16} {f'{args.large:,} leads':>18} {'large/small':>12}")
    for label, by_size in results.items():
        small, large = by_size[args.small], by_size[args.large]
        ratio = statistics.median(large) / statistics.median(small)
        print(f"{label:<40} {_figure(small):>16} {_figure(large):>18} {ratio:>11.2f}x")
    return 0


def _figure(timings: list[float]) -> str:
    ordered = sorted(timings)
    return f"{statistics.median(ordered) * 1000:6.1f} ({ordered[int(0.9 * len(ordered)) - 1] * 1000:5.1f})"


def _reset() -> None:
    from crm import bootstrap
    from crm.platform import aws
    from crm.platform.settings import get_settings

    aws.reset()
    get_settings.cache_clear()
    bootstrap.reset()


if __name__ == "__main__":
    sys.exit(main())
