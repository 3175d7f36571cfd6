"""What a lead costs: capacity, invocations and requests per lead through its whole life on the local stack,
in dollars per 1,000 leads at list prices, beside the lower bound measured in the same run.

    PYTHONPATH=layers/crm:. python -m tests.bench.cost [--leads 1000]     (make bench-cost LEADS=200)

The real local stack (template.yaml, every function in its warm worker, the stream, queue and schedule pumps,
DynamoDB Local, moto) runs with a probe in front of every handler (tests/bench/cost_probe): botocore event
hooks ask DynamoDB for `ReturnConsumedCapacity=INDEXES` on every call and count every AWS request; the
handlers themselves are unchanged. N leads then live through a mix as clients, reps and time would drive it:

- captured through the website form (40%), live chat (20%), the system API (25%) and a partner webhook (15%);
  one in ten is submitted again through the form (a merge);
- half look like buyers (scored into sales: routed, assigned, the rep emailed, follow-ups created), half do
  not (marked nurture; 60% of those agreed to marketing email and are enrolled in the nurture sequence);
- half get two behaviour events (a page view, an email open) through the API, then are rescored;
- a fifth of the buyers are qualified (BANT) and converted;
- the clock moves 2 hours (nurture step 1), then a day (follow-up reminders), then 3 days (nurture step 2,
  escalations), each firing the schedules that became due.

Durations are measured here (a local estimate of Lambda's), priced at each function's configured memory on
arm64. SQS requests are the functions' own plus two per delivered SQS batch (Lambda's receive and delete).
The prices and their date are in tests/bench/prices.py.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

os.environ.update(
    AWS_ACCESS_KEY_ID="bench",
    AWS_SECRET_ACCESS_KEY="bench",
    AWS_DEFAULT_REGION="us-east-1",
    AWS_REGION="us-east-1",
)

from crm.capture.webhooks import sign

from devstack.stack import LocalStack
from devstack.template import Template

from . import prices

PROBE_DIR = Path(__file__).resolve().parent / "cost_probe"
PARTNER = "acme"
PARTNER_SECRET = "local-demo-secret"  # devstack/seed.json
HOUR = 3600
QUIET_SECONDS = 3.0
CLIENTS = 4

# How a Lambda invocation's billed duration is estimated from what the probe saw (DynamoDB Local and moto on
# a shared machine are far slower than AWS, so wall time here would mostly measure this machine): the
# function's own CPU time, stretched by the share of a vCPU its memory buys (a full vCPU at 1,769 MB), plus
# each AWS request at a typical in-region latency.
FULL_VCPU_MB = 1769
AWS_REQUEST_MS = {
    "dynamodb": 6.0,
    "dynamodb.TransactWriteItems": 12.0,
    "dynamodb.Query": 8.0,
    "dynamodb.BatchGetItem": 8.0,
    "sqs": 8.0,
    "sesv2": 40.0,
}
OTHER_REQUEST_MS = 15.0


def estimated_ms(line: dict[str, Any]) -> float:
    cpu = float(line.get("cpu_ms", 0.0)) * max(1.0, FULL_VCPU_MB / line["memory_mb"])
    waiting = 0.0
    for request, count in line["requests"].items():
        if request.endswith(".entries"):
            continue
        service = request.split(".", 1)[0]
        waiting += count * AWS_REQUEST_MS.get(request, AWS_REQUEST_MS.get(service, OTHER_REQUEST_MS))
    return cpu + waiting


class CostStack(LocalStack):
    """The local stack with the probe in front of every function's handler."""

    def __init__(self, probe_file: Path, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.probe_file = probe_file

    def _load_template(self) -> Template:
        template = super()._load_template()
        for logical_id, function in list(template.functions.items()):
            template.functions[logical_id] = dataclasses.replace(
                function,
                handler="leadflow_cost_probe.handler",
                layer_dirs=(*function.layer_dirs, PROBE_DIR),
                environment={
                    **function.environment,
                    "COST_PROBE_HANDLER": function.handler,
                    "COST_PROBE_FUNCTION": logical_id,
                    "COST_PROBE_FILE": str(self.probe_file),
                },
            )
        return template


class Http:
    def __init__(self, base: str) -> None:
        self.base = base

    def __call__(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.base + path,
            data=data,
            headers={"Content-Type": "application/json", **(headers or {})},
            method=method,
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode(errors="replace")


@dataclasses.dataclass
class Lead:
    number: int
    email: str
    channel: str
    buyer: bool
    consent: bool
    merge: bool
    behaviour: bool
    convert: bool
    id: str | None = None


def plan(count: int, seed: int = 18) -> list[Lead]:
    rng = random.Random(seed)
    run = uuid.uuid4().hex[:6]
    leads = []
    for number in range(count):
        channel = rng.choices(["form", "chat", "api", "partner"], weights=[40, 20, 25, 15])[0]
        buyer = rng.random() < 0.5
        leads.append(
            Lead(
                number=number,
                email=f"lead{number}-{run}@{'navy-research' if buyer else 'example'}.com",
                channel=channel,
                buyer=buyer,
                consent=not buyer and rng.random() < 0.6,
                merge=rng.random() < 0.1,
                behaviour=rng.random() < 0.5,
                convert=buyer and rng.random() < 0.2,
            )
        )
    return leads


def person(lead: Lead) -> dict[str, Any]:
    fields: dict[str, Any] = {"first_name": "Grace", "last_name": f"Hopper{lead.number}", "email": lead.email}
    if lead.buyer:
        # 60 points with the default rules before behaviour: C-level, >1,000 employees, >$10M, the industry.
        fields.update(
            title="CTO",
            company=f"Navy Research {lead.number}",
            employee_count=5000,
            industry="Technology",
            annual_revenue=50_000_000,
        )
    else:
        fields.update(company=f"Small Shop {lead.number}")
    return fields


class Driver:
    def __init__(self, stack: LocalStack) -> None:
        self.stack = stack
        self.http = Http(stack.url)
        self.failures: Counter[str] = Counter()
        self._token: tuple[float | None, str] = (None, "")

    def admin(self) -> dict[str, str]:
        offset = self.stack.clock.offset()
        if self._token[0] != offset:
            self._token = (offset, self.stack.token("admin"))
        return {"Authorization": f"Bearer {self._token[1]}"}

    def expect(self, what: str, answer: tuple[int, Any], *statuses: int) -> Any:
        status, body = answer
        if status not in statuses:
            self.failures[f"{what} {status}"] += 1
            return None
        return body

    def capture(self, lead: Lead) -> None:
        body = person(lead)
        consent = {"marketing_consent": "on"} if lead.consent else {}
        if lead.channel == "form":
            answer = self.http("POST", "/capture/form", {**body, **consent})
            lead.id = (self.expect("form", answer, 201) or {}).get("id")
        elif lead.channel == "chat":
            transcript = [{"author": "visitor", "text": "Hi, can I get a demo?"}]
            answer = self.http("POST", "/capture/chat", {**body, **consent, "transcript": transcript})
            lead.id = (self.expect("chat", answer, 201) or {}).get("id")
        elif lead.channel == "api":
            api_body = {**body, "lead_source": "trade_show"}
            if lead.consent:
                api_body["marketing_consent"] = True
            answer = self.http("POST", "/leads", api_body, self.admin())
            lead.id = (self.expect("api", answer, 201) or {}).get("id")
        else:
            raw = json.dumps({**body, **consent, "referral_id": f"{PARTNER}-{lead.number}"}).encode()
            now = int(self.stack.clock.time())
            signature = {"X-Signature": f"t={now},v1={sign(PARTNER_SECRET, now, raw)}"}
            answer = self.http("POST", f"/webhooks/{PARTNER}", raw, signature)
            lead.id = (self.expect("partner", answer, 201) or {}).get("id")

    def merge(self, lead: Lead) -> None:
        repeat = {**person(lead), "phone": "+1 555 0100", "utm_campaign": "webinar"}
        answer = self.http("POST", "/capture/form", repeat)
        self.expect("merge", answer, 201)

    def behave(self, lead: Lead) -> None:
        for kind in ("page_viewed", "email_opened"):
            answer = self.http(
                "POST",
                f"/leads/{lead.id}/activities",
                {"type": kind, "event_id": f"{kind}-{lead.id}"},
                self.admin(),
            )
            self.expect(kind, answer, 201)

    def convert(self, lead: Lead) -> None:
        bant = {"has_budget": True, "has_authority": True, "has_need": True, "has_timeline": True}
        if self.expect("qualify", self.http("POST", f"/leads/{lead.id}/qualify", bant, self.admin()), 200):
            answer = self.http("POST", f"/leads/{lead.id}/convert", {"amount": 25000}, self.admin())
            self.expect("convert", answer, 201)


class Probe:
    """The probe's lines: what every invocation spent."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def size(self) -> int:
        return self.path.stat().st_size if self.path.exists() else 0

    def lines(self, start: int) -> list[dict[str, Any]]:
        """One line per finished invocation (the probe also writes one when an invocation starts)."""
        return [line for line in self._read(start) if "function" in line]

    def running(self, timeout_s: float = 90.0) -> int:
        """Invocations started and not ended, but not those older than the longest function timeout (a
        worker killed at its timeout never reports)."""
        lines = self._read(0)
        ended = {line.get("id") for line in lines if "function" in line}
        now = time.time()
        return sum(
            1
            for line in lines
            if "started" in line and line.get("id") not in ended and now - line.get("at", 0) < timeout_s
        )

    def _read(self, start: int) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        with self.path.open("rb") as source:
            source.seek(start)
            return [json.loads(line) for line in source.read().splitlines() if line.strip()]


def settle(stack: LocalStack, probe: Probe, quiet: float = QUIET_SECONDS, limit: float = 3600) -> None:
    """Wait until no invocation is running, none started for `quiet` seconds (the stream pumps' batching
    windows are shorter) and every queue is empty."""
    assert stack.template is not None
    deadline = time.monotonic() + limit
    size, since = probe.size(), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now_size = probe.size()
        if now_size != size:
            size, since = now_size, time.monotonic()
            continue
        if time.monotonic() - since >= quiet and not probe.running() and not _queued(stack):
            return
    raise TimeoutError("the local stack did not settle")


def _queued(stack: LocalStack) -> int:
    assert stack.template is not None
    total = 0
    for queue in stack.template.queues:
        if queue.name.endswith(("DeadLetterQueue", "FailureQueue")) or "dead" in queue.name.lower():
            continue
        attributes = stack.clients.sqs.get_queue_attributes(
            QueueUrl=queue.url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        total += sum(int(v) for v in attributes.values())
    return total


def in_parallel(action: Callable[[Lead], None], leads: Iterable[Lead]) -> None:
    with ThreadPoolExecutor(CLIENTS) as pool:
        for _ in pool.map(action, leads):
            pass


def lower_bound_units(stack: LocalStack, lead_id: str) -> float:
    """One transactional write of a lead as stored (its size, no index keys), measured on DynamoDB Local."""
    assert stack.template is not None
    table = stack.template.tables[0].name
    client = stack.clients.dynamodb
    item = client.get_item(TableName=table, Key={"PK": {"S": f"LEAD#{lead_id}"}, "SK": {"S": "LEAD"}})["Item"]
    index_keys = {d["AttributeName"] for d in stack.template.tables[0].properties["AttributeDefinitions"]}
    copy = {k: v for k, v in item.items() if k not in index_keys - {"PK", "SK"}}
    copy["PK"] = {"S": f"LOWERBOUND#{uuid.uuid4().hex}"}
    response = client.transact_write_items(
        TransactItems=[{"Put": {"TableName": table, "Item": copy}}], ReturnConsumedCapacity="INDEXES"
    )
    return float(sum(entry.get("CapacityUnits", 0) for entry in response["ConsumedCapacity"]))


# ---------------------------------------------------------------------------------------------- the bill
@dataclasses.dataclass
class Bill:
    leads: int
    invocations: Counter[str]
    gb_seconds: dict[str, float]
    duration_ms: dict[str, float]
    measured_ms: dict[str, float]
    memory: dict[str, int]
    capacity: dict[tuple[str, str, str], float]  # (table, index, read/write) -> units
    patterns: dict[tuple[str, str], list[float]]  # (function, pattern) -> [read units, write units, calls, s]
    requests: Counter[str]
    sqs_batches: int
    http_requests: int
    scheduled: int

    @classmethod
    def of(cls, lines: list[dict[str, Any]], leads: int) -> Bill:
        invocations: Counter[str] = Counter()
        gb_seconds: dict[str, float] = defaultdict(float)
        duration: dict[str, float] = defaultdict(float)
        measured: dict[str, float] = defaultdict(float)
        memory: dict[str, int] = {}
        capacity: dict[tuple[str, str, str], float] = defaultdict(float)
        patterns: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0, 0.0])
        requests: Counter[str] = Counter()
        sqs_batches = http = scheduled = 0
        for line in lines:
            function = line["function"]
            invocations[function] += 1
            estimate = estimated_ms(line)
            billed_ms = float(int(estimate) + 1)  # Lambda bills by the millisecond, rounded up
            gb_seconds[function] += billed_ms / 1000 * line["memory_mb"] / 1024
            duration[function] += estimate
            measured[function] += line["duration_ms"]
            memory[function] = line["memory_mb"]
            sqs_batches += line["trigger"] == "aws:sqs"
            http += line["trigger"] == "http"
            scheduled += line["trigger"] in ("aws.events", "aws.scheduler")
            requests.update(line["requests"])
            for table, index, kind, operation, pattern, units in line["capacity"]:
                capacity[(table, index, kind)] += units
                entry = patterns[(function, f"{operation} {pattern}")]
                entry[0 if kind == "read" else 1] += units
            for key, calls in line.get("calls", {}).items():
                patterns[(function, key)][2] += calls
            for key, seconds in line.get("seconds", {}).items():
                patterns[(function, key)][3] += seconds
        return cls(
            leads,
            invocations,
            gb_seconds,
            duration,
            measured,
            memory,
            capacity,
            patterns,
            requests,
            sqs_batches,
            http,
            scheduled,
        )

    # Dollars of the whole run, per line of the bill.
    def dollars(self) -> dict[str, Decimal]:
        write_units = sum(u for (_, _, kind), u in self.capacity.items() if kind == "write")
        read_units = sum(u for (_, _, kind), u in self.capacity.items() if kind == "read")
        m = Decimal(1_000_000)

        def d(value: float) -> Decimal:
            return Decimal(str(value))

        return {
            "DynamoDB writes": d(write_units) * prices.DYNAMODB_PER_MILLION_WRITE_UNITS / m,
            "DynamoDB reads": d(read_units) * prices.DYNAMODB_PER_MILLION_READ_UNITS / m,
            "Lambda GB-seconds": d(sum(self.gb_seconds.values())) * prices.LAMBDA_ARM64_PER_GB_SECOND,
            "Lambda requests": d(sum(self.invocations.values())) * prices.LAMBDA_PER_MILLION_REQUESTS / m,
            "API Gateway HTTP requests": d(self.http_requests) * prices.HTTP_API_PER_MILLION_REQUESTS / m,
            "SQS requests": d(self.sqs_requests()) * prices.SQS_STANDARD_PER_MILLION_REQUESTS / m,
            "EventBridge events": d(self.requests["events.PutEvents.entries"])
            * prices.EVENTBRIDGE_PER_MILLION_EVENTS
            / m,
            "Scheduler invocations": d(self.scheduled) * prices.SCHEDULER_PER_MILLION_INVOCATIONS / m,
            "SES emails": d(self.requests["sesv2.SendEmail"]) * prices.SES_PER_THOUSAND_EMAILS / 1000,
            "Secrets Manager reads": d(self.requests["secretsmanager.GetSecretValue"])
            * prices.SECRETS_MANAGER_PER_10K_CALLS
            / 10_000,
        }

    def sqs_requests(self) -> int:
        own = sum(n for k, n in self.requests.items() if k.startswith("sqs.") and not k.endswith(".entries"))
        return own + 2 * self.sqs_batches

    def per_thousand(self) -> Decimal:
        return sum(self.dollars().values(), Decimal(0)) * 1000 / self.leads


def print_bill(bill: Bill, lower_bound: Decimal, title: str) -> None:
    n = bill.leads
    print(f"\n{title}: {n} leads (figures per lead unless marked; $ per 1,000 leads)")
    print(
        f"\n  {'Lambda function':28} {'invocations':>11} {'est. ms':>8} {'local ms':>9} {'MB':>5} {'GB-s':>9}"
        f" {'$/1k':>9}"
    )
    for function, count in bill.invocations.most_common():
        gbs = bill.gb_seconds[function]
        cost = Decimal(str(gbs)) * prices.LAMBDA_ARM64_PER_GB_SECOND + Decimal(
            count
        ) * prices.LAMBDA_PER_MILLION_REQUESTS / Decimal(1_000_000)
        print(
            f"  {function:28} {count / n:11.3f} {bill.duration_ms[function] / count:8.1f} "
            f"{bill.measured_ms[function] / count:9.1f} "
            f"{bill.memory[function]:5d} {gbs / n:9.5f} {cost * 1000 / n:9.5f}"
        )
    print(f"\n  {'DynamoDB table / index':40} {'read units':>11} {'write units':>12}")
    by_index: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0.0])
    for (table, index, kind), units in bill.capacity.items():
        by_index[(table, index)][0 if kind == "read" else 1] += units
    for (table, index), (reads, writes) in sorted(by_index.items(), key=lambda kv: -kv[1][1] * 5 - kv[1][0]):
        print(f"  {table[-16:] + ' ' + index:40} {reads / n:11.2f} {writes / n:12.2f}")
    print("\n  DynamoDB access patterns by cost, top 15 (ms: time waiting for DynamoDB Local)")
    print(f"    {'function':14} {'calls':>6} {'RRU':>6} {'WRU':>6} {'ms':>6}  code path")
    ranked = sorted(bill.patterns.items(), key=lambda kv: -(kv[1][1] * 5 + kv[1][0]))
    for (function, pattern), (reads, writes, calls, seconds) in ranked[:15]:
        name = function.removesuffix("Function")
        figures = f"{calls / n:6.2f} {reads / n:6.2f} {writes / n:6.2f} {seconds * 1000 / n:6.1f}"
        print(f"    {name:14} {figures}  {pattern}")
    print("\n  Other requests per lead")
    print(f"    API Gateway HTTP requests          {bill.http_requests / n:8.3f}")
    print(f"    SQS requests (sends + 2 per batch)  {bill.sqs_requests() / n:8.3f}")
    print(f"    SES emails sent                    {bill.requests['sesv2.SendEmail'] / n:8.3f}")
    print(f"    EventBridge events put             {bill.requests['events.PutEvents.entries'] / n:8.3f}")
    print(f"    scheduled invocations (whole run)  {bill.scheduled:8d}")
    print(f"    Secrets Manager reads (cache miss) {bill.requests['secretsmanager.GetSecretValue'] / n:8.3f}")
    ssm = sum(v for k, v in bill.requests.items() if k.startswith("ssm."))
    print(f"    SSM reads (cache miss)             {ssm / n:8.3f}")
    print(f"\n  {'line':28} {'$ per 1,000 leads':>18}")
    lines = bill.dollars()
    for name, amount in sorted(lines.items(), key=lambda kv: -kv[1]):
        print(f"  {name:28} {amount * 1000 / n:18.5f}")
    ses = lines["SES emails"] * 1000 / n
    total = bill.per_thousand()
    print(
        f"\n{title}: ${total - ses:.4f} per 1,000 leads, plus ${ses:.4f} of SES email "
        f"({bill.requests['sesv2.SendEmail'] / n:.2f} per lead), at {prices.REGION} list prices of "
        f"{prices.PRICES_AS_OF} (Lambda durations estimated: CPU time + requests); lower bound, one "
        f"transactional write of each lead and nothing else: ${lower_bound:.4f} per 1,000 leads "
        f"({(total - ses) / lower_bound:.0f}x)"
    )


def run(count: int, data_dir: Path) -> tuple[Bill, Decimal, float]:
    probe_file = data_dir / "probe.jsonl"
    probe = Probe(probe_file)
    errors: list[str] = []
    stack = CostStack(
        probe_file,
        port=0,
        data_dir=data_dir / "stack",
        log=lambda line: errors.append(line) if "[ERROR]" in line or "Task timed out" in line else None,
        tables_in_memory=True,
    )
    with stack:
        driver = Driver(stack)
        warm = plan(8, seed=1)
        in_parallel(driver.capture, warm)
        settle(stack, probe)
        start = probe.size()
        started = time.monotonic()

        leads = plan(count)
        in_parallel(driver.capture, leads)
        settle(stack, probe)
        in_parallel(driver.merge, [lead for lead in leads if lead.merge and lead.id])
        in_parallel(driver.behave, [lead for lead in leads if lead.behaviour and lead.id])
        settle(stack, probe)
        in_parallel(driver.convert, [lead for lead in leads if lead.convert and lead.id])
        settle(stack, probe)
        for hours in (2, 24, 72):
            stack.advance_clock(hours * HOUR + 60)
            settle(stack, probe)
        elapsed = time.monotonic() - started
        if driver.failures:
            print(f"  unexpected answers: {dict(driver.failures)}")
        if errors:
            print(f"  {len(errors)} function error(s) logged, the first: {errors[0][:300]}")
        bill = Bill.of(probe.lines(start), count)
        units = lower_bound_units(stack, next(lead.id for lead in leads if lead.id))
    lower = Decimal(str(units)) * prices.DYNAMODB_PER_MILLION_WRITE_UNITS / Decimal(1_000_000) * 1000
    return bill, lower, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--leads", type=int, default=1000)
    parser.add_argument("--json", type=Path, help="also write the bill's figures here")
    parser.add_argument("--probe-lines", type=Path, help="keep the probe's lines (one per invocation) here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-cost-") as folder:
        bill, lower, elapsed = run(args.leads, Path(folder))
        if args.probe_lines:
            args.probe_lines.write_bytes((Path(folder) / "probe.jsonl").read_bytes())
    print_bill(bill, lower, "What a lead costs")
    print(f"  (the run took {elapsed:.0f} s on the local stack)")
    if args.json:
        dollars = {k: float(v * 1000 / bill.leads) for k, v in bill.dollars().items()}
        dollars["lower bound"] = float(lower)
        args.json.write_text(json.dumps({"leads": bill.leads, "per_1000_leads": dollars}, indent=1))


if __name__ == "__main__":
    main()
