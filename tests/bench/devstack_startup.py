"""Startup time of the local stack: fresh (empty data folder) and warm (same folder again), measured to the
first successful HTTP response (a lead capture answered 201, or 200 for the same lead again), next to a
same-run baseline: DynamoDB Local starting alone.

Run: .venv/bin/python -m tests.bench.devstack_startup [--runs N]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

from devstack.dynamodb_local import DynamoDBLocal
from devstack.stack import LocalStack

FORM = urllib.parse.urlencode(
    {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com"}
).encode()


def first_capture(url: str) -> None:
    request = urllib.request.Request(
        f"{url}/capture/form", data=FORM, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        assert response.status in (200, 201), response.status  # 200: the same lead again (warm run)


def time_stack(data: Path) -> float:
    started = time.perf_counter()
    stack = LocalStack(port=0, data_dir=data, log=lambda _line: None).start()
    try:
        first_capture(stack.url)
        return time.perf_counter() - started
    finally:
        stack.stop()


def time_dynamodb_local(data: Path) -> float:
    started = time.perf_counter()
    with DynamoDBLocal(data_dir=data):
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    runs = parser.parse_args().runs
    baseline, fresh, warm = [], [], []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as ddb_dir, tempfile.TemporaryDirectory() as stack_dir:
            baseline.append(time_dynamodb_local(Path(ddb_dir)))
            fresh.append(time_stack(Path(stack_dir)))
            warm.append(time_stack(Path(stack_dir)))
    base = statistics.median(baseline)
    print(f"runs: {runs} (medians)")
    print(f"baseline  DynamoDB Local alone       {base:6.2f}s  1.00x")
    for label, values in (("fresh", fresh), ("warm", warm)):
        median = statistics.median(values)
        print(f"{label:9} stack to first capture   {median:6.2f}s  {median / base:.2f}x baseline")


if __name__ == "__main__":
    main()
