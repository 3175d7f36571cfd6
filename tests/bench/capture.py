"""Capture benchmark: prints figures as ratios against baselines measured in the same run.

    python -m tests.bench.capture [--seconds 5] [--workers 8]

1. Raw TransactWriteItems per second on this DynamoDB Local (the same three-item transaction a new
   lead costs), then capture-handler requests per second with p50/p99 latency, as a ratio to it.
   Aim: >= 50%.
2. DynamoDB calls per new capture and per duplicate capture (counted on the client).
3. Cold import time of the capture function's module (with its layer) beside a bare handler that
   imports only boto3 and makes one client. Aim: <= 2x.
"""

import argparse
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
os.environ.update(
    AWS_ACCESS_KEY_ID="bench",
    AWS_SECRET_ACCESS_KEY="bench",
    AWS_DEFAULT_REGION="us-east-1",
    AWS_REGION="us-east-1",
    POWERTOOLS_TRACE_DISABLED="true",
    POWERTOOLS_METRICS_DISABLED="true",
    POWERTOOLS_LOG_LEVEL="WARNING",
)

import boto3  # noqa: E402

from devstack.dynamodb_local import DynamoDBLocal  # noqa: E402
from devstack.provision import create_tables  # noqa: E402
from devstack.template import load_template  # noqa: E402


def run_for(seconds: float, workers: int, operation: Callable[[int, int], None]) -> tuple[int, list[float]]:
    """Run `operation(worker, n)` from `workers` threads for `seconds`; return count and latencies."""
    latencies: list[list[float]] = [[] for _ in range(workers)]
    deadline = time.perf_counter() + seconds

    def loop(worker: int) -> None:
        n = 0
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            operation(worker, n)
            latencies[worker].append(time.perf_counter() - started)
            n += 1

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(loop, range(workers)))
    flat = [value for worker in latencies for value in worker]
    return len(flat), flat


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def raw_transactions(client: Any, table: str, seconds: float, workers: int) -> float:
    def transact(worker: int, n: int) -> None:
        key = uuid.uuid4().hex
        client.transact_write_items(
            TransactItems=[
                {
                    "Put": {
                        "TableName": table,
                        "Item": {"PK": {"S": f"RAW#{key}"}, "SK": {"S": "LEAD"}, "n": {"N": str(n)}},
                        "ConditionExpression": "attribute_not_exists(PK)",
                    }
                },
                {
                    "Put": {
                        "TableName": table,
                        "Item": {"PK": {"S": f"RAWEMAIL#{key}"}, "SK": {"S": "EMAIL"}},
                        "ConditionExpression": "attribute_not_exists(PK)",
                    }
                },
                {"Put": {"TableName": table, "Item": {"PK": {"S": f"RAW#{key}"}, "SK": {"S": "ACTIVITY#1"}}}},
            ]
        )

    count, _ = run_for(seconds, workers, transact)
    return count / seconds


def capture_handlers(template: Any, workers: int) -> list[Any]:
    from tests.support import load_handler

    return [load_handler(template.function("CaptureFunction"), copy=index) for index in range(workers)]


def form_event(email: str) -> dict[str, Any]:
    from tests.support import event

    return event("capture_form_json.json", body={"first_name": "Bench", "last_name": "Mark", "email": email})


def capture_throughput(template: Any, seconds: float, workers: int) -> tuple[float, float, float]:
    from tests.support import FakeLambdaContext

    handlers = capture_handlers(template, workers)
    failures: list[int] = []

    def capture(worker: int, n: int) -> None:
        response = handlers[worker](
            form_event(f"bench-{uuid.uuid4().hex}@example.com"), FakeLambdaContext("bench")
        )
        if response["statusCode"] != 201:
            failures.append(response["statusCode"])

    count, latencies = run_for(seconds, workers, capture)
    if failures:
        raise SystemExit(f"capture failed during the benchmark: {failures[:5]}")
    return count / seconds, statistics.median(latencies) * 1000, percentile(latencies, 0.99) * 1000


def calls_per_capture(template: Any) -> tuple[int, int]:
    from crm.platform import aws

    from tests.support import FakeLambdaContext

    calls = {"n": 0}

    def count(**_: Any) -> None:
        calls["n"] += 1

    aws.dynamodb().meta.events.register("before-call.dynamodb", count)
    handler = capture_handlers(template, 1)[0]
    email = f"calls-{uuid.uuid4().hex}@example.com"
    handler(form_event(email), FakeLambdaContext("bench"))
    new_calls = calls["n"]
    calls["n"] = 0
    handler(form_event(email), FakeLambdaContext("bench"))
    return new_calls, calls["n"]


BARE_HANDLER = "import boto3\nclient = boto3.client('dynamodb')\n"
CAPTURE_HANDLER = "import app\n"


def cold_import_seconds(code: str, env: dict[str, str], repeats: int) -> float:
    """Median wall time of importing `code` in a fresh interpreter (only the import is timed)."""
    path = [str(ROOT / "functions" / "capture"), str(ROOT / "layers" / "crm")]
    timer = (
        "import sys, time\n"
        f"sys.path[:0] = {path!r}\n"
        "started = time.perf_counter()\n"
        f"exec(compile({code!r}, 'handler', 'exec'))\n"
        "print(time.perf_counter() - started)\n"
    )
    samples = []
    for _ in range(repeats):
        output = subprocess.run(
            [sys.executable, "-c", timer], env=env, capture_output=True, text=True, check=True, cwd="/"
        )
        samples.append(float(output.stdout.strip().splitlines()[-1]))
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--imports", type=int, default=7, help="cold-import repetitions (median)")
    args = parser.parse_args()

    template = load_template()
    function_env = dict(template.function("CaptureFunction").environment)
    with DynamoDBLocal() as database:
        os.environ.update(function_env)
        # One log line and one metric per capture would drown the figures.
        os.environ.update(POWERTOOLS_LOG_LEVEL="WARNING", POWERTOOLS_METRICS_DISABLED="true")
        os.environ["AWS_ENDPOINT_URL_DYNAMODB"] = database.endpoint_url
        client = boto3.client("dynamodb", endpoint_url=database.endpoint_url)
        create_tables(client, template)
        table = function_env["TABLE_NAME"]

        print(
            f"DynamoDB Local {database.endpoint_url}, {args.workers} workers, {args.seconds:.0f} s per figure"
        )
        raw_rate = raw_transactions(client, table, args.seconds, args.workers)
        print(f"  raw TransactWriteItems (3 puts):  {raw_rate:8.1f} /s   (baseline)")
        rate, p50, p99 = capture_throughput(template, args.seconds, args.workers)
        print(
            f"  capture handler:                  {rate:8.1f} /s   p50 {p50:.1f} ms  p99 {p99:.1f} ms"
            f"   ratio {rate / raw_rate:.0%} of raw (aim >= 50%)"
        )
        new_calls, duplicate_calls = calls_per_capture(template)
        print(f"  DynamoDB calls per new capture:       {new_calls}   (aim: 1)")
        print(f"  DynamoDB calls per duplicate capture: {duplicate_calls}")

    env = {**os.environ, **function_env, "AWS_ENDPOINT_URL_DYNAMODB": "http://127.0.0.1:1"}
    bare = cold_import_seconds(BARE_HANDLER, env, args.imports)
    capture = cold_import_seconds(CAPTURE_HANDLER, env, args.imports)
    print(
        f"  cold import: bare boto3 handler {bare * 1000:.0f} ms, capture function {capture * 1000:.0f} ms"
        f"   ratio {capture / bare:.2f}x (aim <= 2x)"
    )


if __name__ == "__main__":
    main()
