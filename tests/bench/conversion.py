"""Conversion benchmark: DynamoDB calls per conversion and its latency, beside a same-run baseline.

    PYTHONPATH=layers/crm:. python -m tests.bench.conversion [--count 300]

1. DynamoDB calls per conversion, counted on the client, by operation (aim: one TransactWriteItems; the rest
   are reads), and per repeated conversion of a lead already converted.
2. p50/p99 latency against DynamoDB Local of the conversion handler (`POST /leads/{id}/convert`: a lead
   with a company, so contact + company + two company keys + deal + activity + the lead) beside the
   baseline: a raw TransactWriteItems of exactly the items that conversion writes, prepared in advance.
"""

import argparse
import os
import statistics
import time
import uuid
import warnings
from collections import Counter
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

from devstack.dynamodb_local import DynamoDBLocal
from devstack.provision import create_tables
from devstack.template import load_template
from tests.bench.capture import percentile


def qualified_leads(client: Any, table: str, count: int) -> list[Any]:
    """Qualified, assigned leads, each of its own company (so every conversion creates one)."""
    from crm.leads.model import Channel, LeadStatus, LeadSubmission, new_lead
    from crm.leads.repository import LeadRepository

    repository = LeadRepository(table, client=client)
    leads = []
    for index in range(count):
        tag = uuid.uuid4().hex[:10]
        submission = LeadSubmission(
            channel=Channel.API,
            first_name="Bench",
            last_name=f"Mark {index}",
            email=f"bench-{tag}@company-{tag}.example",
            lead_source="api",
            submitted_by="bench",
            company=f"Company {tag} Ltd",
            title="VP Sales",
        )
        lead = new_lead(submission, datetime.now(UTC)).model_copy(
            update={"lead_status": LeadStatus.QUALIFIED, "qualified": True, "assigned_to": "bench-rep"}
        )
        repository.create(lead, [])
        leads.append(lead)
    return leads


def baseline(client: Any, table: str, leads: list[Any]) -> list[float]:
    """Raw TransactWriteItems of the very items each conversion writes, built before the clock starts."""
    from crm.conversion.model import ConversionOptions, Lookup, plan_conversion
    from crm.conversion.repository import ConversionRepository
    from crm.platform.auth import Principal

    repository = ConversionRepository(table, client=client)
    manager = Principal("bench-manager", None, frozenset({"manager"}))
    prepared = [
        [
            item
            for _, item in repository.transact_items(
                plan_conversion(
                    lead, ConversionOptions(), Lookup({}), manager, now=datetime.now(UTC), forced=False
                )
            )
        ]
        for lead in leads
    ]
    latencies = []
    for items in prepared:
        started = time.perf_counter()
        client.transact_write_items(TransactItems=items)
        latencies.append(time.perf_counter() - started)
    return latencies


def convert_event(lead_id: str) -> dict[str, Any]:
    from tests.support import event

    return event(
        "convert_lead.json",
        rawPath=f"/leads/{lead_id}/convert",
        pathParameters={"id": lead_id},
        body={"amount": 1000},
    )


def handler_latencies(template: Any, leads: list[Any]) -> list[float]:
    from tests.support import FakeLambdaContext, load_handler

    handler = load_handler(template.function("ConversionFunction"))
    events = [convert_event(lead.id) for lead in leads]
    latencies = []
    for request in events:
        started = time.perf_counter()
        response = handler(request, FakeLambdaContext("bench"))
        latencies.append(time.perf_counter() - started)
        if response["statusCode"] != 201:
            raise SystemExit(f"conversion failed during the benchmark: {response}")
    return latencies


def calls_per_conversion(template: Any, lead: Any) -> tuple[Counter[str], Counter[str]]:
    from crm.platform import aws

    from tests.support import FakeLambdaContext, load_handler

    calls: Counter[str] = Counter()

    def count(event_name: str, **_: Any) -> None:
        calls[event_name.rsplit(".", 1)[-1]] += 1

    aws.dynamodb().meta.events.register("before-call.dynamodb", count)
    handler = load_handler(template.function("ConversionFunction"), copy=1)
    first = handler(convert_event(lead.id), FakeLambdaContext("bench"))
    assert first["statusCode"] == 201, first
    fresh = Counter(calls)
    calls.clear()
    again = handler(convert_event(lead.id), FakeLambdaContext("bench"))
    assert again["statusCode"] == 200, again
    return fresh, Counter(calls)


def describe(calls: Counter[str]) -> str:
    detail = ", ".join(f"{name} {n}" for name, n in sorted(calls.items()))
    return f"{sum(calls.values())} ({detail})"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=300, help="conversions per figure")
    args = parser.parse_args()
    # A repeated conversion publishes no metric; Powertools warns about that on every call.
    warnings.filterwarnings("ignore", "No application metrics to publish")

    template = load_template()
    function_env = dict(template.function("ConversionFunction").environment)
    with DynamoDBLocal() as database:
        os.environ.update(function_env)
        os.environ.update(POWERTOOLS_LOG_LEVEL="WARNING", POWERTOOLS_METRICS_DISABLED="true")
        os.environ["AWS_ENDPOINT_URL_DYNAMODB"] = database.endpoint_url
        client = boto3.client("dynamodb", endpoint_url=database.endpoint_url)
        create_tables(client, template)
        table = function_env["TABLE_NAME"]

        fresh, repeated = calls_per_conversion(template, qualified_leads(client, table, 1)[0])
        print(f"DynamoDB Local {database.endpoint_url}, {args.count} conversions per figure, one at a time")
        print(f"  DynamoDB calls per conversion:           {describe(fresh)}")
        print(f"    transactional writes on the request path: {fresh['TransactWriteItems']} (aim: 1)")
        print(f"  DynamoDB calls per repeated conversion:  {describe(repeated)}")

        # Warm both paths (JIT of DynamoDB Local, connection pool, imports) before measuring.
        baseline(client, table, qualified_leads(client, table, 20))
        handler_latencies(template, qualified_leads(client, table, 20))
        raw = baseline(client, table, qualified_leads(client, table, args.count))
        handled = handler_latencies(template, qualified_leads(client, table, args.count))
        raw_p50, raw_p99 = statistics.median(raw) * 1000, percentile(raw, 0.99) * 1000
        p50, p99 = statistics.median(handled) * 1000, percentile(handled, 0.99) * 1000
        print(
            f"  raw TransactWriteItems (its 7 items): p50 {raw_p50:6.1f} ms  p99 {raw_p99:6.1f} ms"
            "   (baseline)"
        )
        print(
            f"  conversion handler:                   p50 {p50:6.1f} ms  p99 {p99:6.1f} ms"
            f"   p50 {p50 / raw_p50:.1f}x baseline"
        )


if __name__ == "__main__":
    main()
