"""Sustained load: website-form captures over HTTP at a fixed rate while scoring, assignment and
notifications run on the local stack; figures beside the same run at a tenth of that rate.

    PYTHONPATH=layers/crm:. python -m tests.bench.load [--rate 10] [--seconds 120]     (make bench-load)

Each phase sends buyer-like form captures (scored into sales, so each is routed and assigned and its rep
emailed) on a fixed schedule, whatever the answers' latency (an open loop: a slow stack does not slow the
sender down). After the phase the benchmark waits until the pipeline is idle again (no records behind any
stream consumer, no message waiting in any queue), then reads every lead and its score ledger from the table:

- throughput: captures answered 201 per second of the phase;
- capture latency p50/p99, measured at the client;
- lag from capture to scored (the lead's first `score_changed` activity - its `created_at`) and to
  assigned (`assigned_at` - `created_at`), p50/p99;
- drain: seconds from the end of the phase until the pipeline was idle again.

The low-rate phase runs first and is the baseline; the high-rate figures are printed as ratios to it. The run
fails (exit 1) when a lead is left unscored or unassigned, or the pipeline does not drain in --drain-limit.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from devstack.stack import LocalStack

from .cost import Http, Lead, person

SENDERS = 32  # enough threads that a slow answer never delays the next scheduled send


@dataclass
class Phase:
    name: str
    rate: float
    seconds: float
    latencies_ms: list[float] = field(default_factory=list)
    lead_ids: list[str] = field(default_factory=list)
    failures: dict[str, int] = field(default_factory=dict)
    sent: int = 0
    send_seconds: float = 0.0
    drain_seconds: float = 0.0
    scored_lag_s: list[float] = field(default_factory=list)
    assigned_lag_s: list[float] = field(default_factory=list)
    unscored: int = 0
    unassigned: int = 0

    @property
    def throughput(self) -> float:
        return len(self.lead_ids) / self.send_seconds if self.send_seconds else 0.0


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def send(stack: LocalStack, phase: Phase, run: str) -> None:
    """Post `rate` captures a second for `seconds`, each at its scheduled instant."""
    http = Http(stack.url)
    lock = threading.Lock()
    count = max(1, round(phase.rate * phase.seconds))

    def capture(number: int) -> None:
        email = f"load-{run}-{phase.name}-{number}@navy-research.com"
        lead = Lead(number, email, "form", True, consent=False, merge=False, behaviour=False, convert=False)
        started = time.perf_counter()
        status, body = http("POST", "/capture/form", person(lead))
        elapsed_ms = (time.perf_counter() - started) * 1000
        with lock:
            phase.latencies_ms.append(elapsed_ms)
            if status == 201 and isinstance(body, dict):
                phase.lead_ids.append(body["id"])
            else:
                phase.failures[str(status)] = phase.failures.get(str(status), 0) + 1

    started = time.monotonic()
    with ThreadPoolExecutor(SENDERS) as pool:
        for number in range(count):
            delay = started + number / phase.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            pool.submit(capture, number)
        phase.sent = count
    phase.send_seconds = max(phase.seconds, time.monotonic() - started)


def records_behind(stack: LocalStack) -> int:
    status = stack.status()
    behind = 0
    for consumer in status["consumers"].values():
        behind += int(consumer.get("selected_behind", 0) or 0)
        behind += int(consumer.get("messages_waiting", 0)) + int(consumer.get("messages_in_flight", 0))
    return behind


def assigned(stack: LocalStack, phase: Phase) -> int:
    leads = read_back(stack, phase.lead_ids)
    return sum(1 for lead in leads.values() if lead.get("assigned_at"))


def wait_for_idle(stack: LocalStack, phase: Phase, limit_s: float) -> None:
    """Until every lead is assigned (so scored) and no record or message waits for any consumer. The lag is
    read only once the leads are done: reading it scans the stream, which would slow the stack it measures."""
    started = last_said = time.monotonic()
    while time.monotonic() - started < limit_s:
        done = assigned(stack, phase)
        if done == len(phase.lead_ids) and records_behind(stack) == 0:
            break
        if time.monotonic() - last_said >= 30:
            print(
                f"    {done} of {len(phase.lead_ids)} assigned after {time.monotonic() - started:.0f} s",
                flush=True,
            )
            last_said = time.monotonic()
        time.sleep(2.0)
    phase.drain_seconds = time.monotonic() - started


def read_back(stack: LocalStack, lead_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Each lead item by lead id (BatchGetItem straight from DynamoDB Local)."""
    assert stack.template is not None
    table = stack.template.tables[0].name
    leads: dict[str, dict[str, Any]] = {}
    for start in range(0, len(lead_ids), 100):
        keys = [{"PK": {"S": f"LEAD#{i}"}, "SK": {"S": "LEAD"}} for i in lead_ids[start : start + 100]]
        pending: dict[str, Any] = {table: {"Keys": keys}}
        while pending:
            answer = stack.clients.dynamodb.batch_get_item(RequestItems=pending)
            for item in answer["Responses"].get(table, []):
                plain = {name: next(iter(value.values())) for name, value in item.items()}
                leads[item["PK"]["S"].removeprefix("LEAD#")] = plain
            pending = answer.get("UnprocessedKeys") or {}
    return leads


def first_scored_at(stack: LocalStack, lead_id: str) -> str | None:
    """When the lead was first scored: its earliest `score_changed` activity (the ledger holds the last)."""
    assert stack.template is not None
    answer = stack.clients.dynamodb.query(
        TableName=stack.template.tables[0].name,
        KeyConditionExpression="PK = :pk AND begins_with(SK, :activity)",
        FilterExpression="#type = :scored",
        ExpressionAttributeNames={"#type": "type"},
        ExpressionAttributeValues={
            ":pk": {"S": f"LEAD#{lead_id}"},
            ":activity": {"S": "ACTIVITY#"},
            ":scored": {"S": "score_changed"},
        },
    )
    times = sorted(item["created_at"]["S"] for item in answer["Items"])
    return times[0] if times else None


def _at(value: Any) -> datetime | None:
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")) if value else None


def measure_lags(stack: LocalStack, phase: Phase) -> None:
    leads = read_back(stack, phase.lead_ids)
    for lead_id in phase.lead_ids:
        lead = leads.get(lead_id, {})
        created = _at(lead.get("created_at"))
        scored = _at(first_scored_at(stack, lead_id))
        assigned = _at(lead.get("assigned_at"))
        if created is None or scored is None:
            phase.unscored += 1
        else:
            phase.scored_lag_s.append((scored - created).total_seconds())
        if created is None or assigned is None:
            phase.unassigned += 1
        else:
            phase.assigned_lag_s.append((assigned - created).total_seconds())


def run_phase(stack: LocalStack, phase: Phase, run: str, drain_limit: float) -> None:
    print(f"  {phase.name}: {phase.rate:g} captures/s for {phase.seconds:g} s ...", flush=True)
    send(stack, phase, run)
    wait_for_idle(stack, phase, drain_limit)
    measure_lags(stack, phase)


def figures(phase: Phase) -> dict[str, float]:
    return {
        "throughput /s": phase.throughput,
        "capture p50 ms": percentile(phase.latencies_ms, 0.50),
        "capture p99 ms": percentile(phase.latencies_ms, 0.99),
        "to scored p50 s": percentile(phase.scored_lag_s, 0.50),
        "to scored p99 s": percentile(phase.scored_lag_s, 0.99),
        "to assigned p50 s": percentile(phase.assigned_lag_s, 0.50),
        "to assigned p99 s": percentile(phase.assigned_lag_s, 0.99),
        "drain after load s": phase.drain_seconds,
    }


def report(low: Phase, high: Phase) -> None:
    low_figures, high_figures = figures(low), figures(high)
    print()
    print(f"Sustained load on the local stack: {high.rate:g}/s vs {low.rate:g}/s (baseline), same run")
    print(f"  {'':22} {'baseline':>10} {'load':>10} {'x base':>8}")
    for name, base in low_figures.items():
        value = high_figures[name]
        ratio = value / base if base and base == base and value == value else float("nan")
        print(f"  {name:22} {base:10.2f} {value:10.2f} {ratio:8.2f}")
    for phase in (low, high):
        print(
            f"  {phase.name}: {phase.sent} sent, {len(phase.lead_ids)} created,"
            f" failures {phase.failures or 'none'}, unscored {phase.unscored}, unassigned {phase.unassigned}"
        )
    if high.scored_lag_s:
        print(f"  mean lag to scored at load: {statistics.fmean(high.scored_lag_s):.2f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=10.0, help="captures per second under load")
    parser.add_argument("--seconds", type=float, default=120.0, help="how long each phase sends")
    parser.add_argument("--drain-limit", type=float, default=600.0, help="seconds allowed to drain")
    args = parser.parse_args()
    run = uuid.uuid4().hex[:6]
    low = Phase("baseline", args.rate / 10, args.seconds)
    high = Phase("load", args.rate, args.seconds)
    with (
        tempfile.TemporaryDirectory(prefix="bench-load-") as folder,
        LocalStack(
            port=0, data_dir=Path(folder) / "stack", log=lambda line: None, tables_in_memory=True
        ) as stack,
    ):
        run_phase(stack, Phase("warm-up", 2, 3), run, args.drain_limit)
        run_phase(stack, low, run, args.drain_limit)
        run_phase(stack, high, run, args.drain_limit)
    report(low, high)
    stuck = high.unscored + high.unassigned + low.unscored + low.unassigned
    drained = high.drain_seconds < args.drain_limit and low.drain_seconds < args.drain_limit
    if stuck or not drained or high.failures or low.failures:
        print("FAILED: a lead left unscored or unassigned, a capture refused, or the pipeline did not drain")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
