"""LocalStack: the whole system on one machine, driven by template.yaml.

Starts DynamoDB Local and moto, creates the template's resources, serves the HTTP API in front of warm
function workers, and runs the event source mappings and schedules; `stop()` ends everything it started.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping
from pathlib import Path
from types import SimpleNamespace, TracebackType
from typing import Any

import boto3
from botocore.config import Config

from . import captcha, outbox, s3
from .apigw_events import HttpRequest, HttpResponse, json_response
from .auth import LOCAL_ISSUER, Authorization, authorize, issue_token, jwks, load_or_create_key
from .clock import Clock, parse_duration
from .dynamodb_local import DynamoDBLocal
from .event_log import EventLog
from .event_rules import RulePump, Tap, create_event_rules
from .faults import FaultProxy, FaultSwitch, parse_request
from .gateway import ApiGateway, GatewayServer
from .lockfile import StackLock
from .moto_server import MotoServer
from .oauth import LocalAuthorizationServer
from .paths import DataDir, data_dir
from .provision import finish_app_seeding, provision, start_app_seeding
from .pumps import CheckpointStore, QueuePump, StreamPump
from .schedules import ScheduleRunner
from .seed import Seed, load_seed
from .template import LOCAL_REGION, JwtAuthorizer, Template, load_template
from .workers import FunctionPool, Invocation, lambda_environment

_print_lock = threading.Lock()


def print_line(line: str) -> None:
    with _print_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def local_client_id(template: Template) -> str:
    """The audience of the template's JWT authorizer, resolved locally (the UserPoolClient's local id)."""
    for api in template.http_apis:
        for authorizer in api.authorizers.values():
            if authorizer.audience:
                return authorizer.audience[0]
    return "leadflow-local-client"


class LocalStack:
    def __init__(
        self,
        port: int = 0,
        data_dir: str | Path | None = None,
        *,
        template_path: str | Path = "template.yaml",
        parameter_overrides: Mapping[str, str] | None = None,
        workers_per_function: int = 3,
        prewarm: bool = True,
        log: Callable[[str], None] = print_line,
        seed: Seed | None = None,
        failed_batch_visibility_s: int | None = None,
        tables_in_memory: bool = False,
    ) -> None:
        self.requested_port = port
        # True: DynamoDB Local keeps the tables in memory, not under data_dir (about twice its write rate:
        # no SQLite file to sync), gone when the stack stops; for tests and benchmarks that do not restart it.
        self.tables_in_memory = tables_in_memory
        # None: as on AWS (a queue batch whose invocation failed returns after the visibility timeout); tests
        # that kill workers shorten that wait.
        self.failed_batch_visibility_s = failed_batch_visibility_s
        self.faults = FaultSwitch()
        self.fault_proxy: FaultProxy | None = None
        self.data = _data(data_dir)
        self.template_path = template_path
        self.parameter_overrides = dict(parameter_overrides or {})
        self._sent_at: dict[str, str] = {}  # SES message id -> when it was sent, by the stack's clock
        self.workers_per_function = workers_per_function
        self.prewarm = prewarm
        self._prewarming: list[threading.Thread] = []
        self.log = log
        self.seed = seed or load_seed()
        self.clock = Clock(self.data.clock_file)
        self.dynamodb_local: DynamoDBLocal | None = None
        self.moto: MotoServer | None = None
        self.server: GatewayServer | None = None
        self.template: Template | None = None
        self.pools: dict[str, FunctionPool] = {}
        self.pumps: list[StreamPump | QueuePump] = []
        self.schedules: ScheduleRunner | None = None
        self.rules: RulePump | None = None
        self.event_log: EventLog | None = None
        self.s3: s3.S3Front | None = None
        self._stop = threading.Event()
        self._lock = StackLock(self.data.lock_file)
        self._key: Any = None
        self.oauth: LocalAuthorizationServer | None = None
        self.clients: Any = None
        self.startup_seconds: float | None = None

    # ------------------------------------------------------------------ lifecycle
    @property
    def url(self) -> str:
        if self.server is None:
            raise RuntimeError("the local stack is not started")
        return self.server.url

    def start(self) -> LocalStack:
        started = time.perf_counter()
        self.data.ensure()
        self._lock.acquire()
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.perf_counter() - started
        return self

    def _start(self) -> None:
        self.server = GatewayServer(port=self.requested_port)
        self._lock.write({"pid": os.getpid(), "url": self.server.url, "data_dir": str(self.data.root)})
        self.dynamodb_local = DynamoDBLocal(data_dir=None if self.tables_in_memory else self.data.dynamodb)
        self.moto = MotoServer()
        # The JVM and moto boot while the template is translated here; both are started from this thread
        # because they are tied to its life (see processes.die_with_parent).
        self.dynamodb_local.launch()
        self.moto.launch()
        self._key = load_or_create_key(self.data.jwt_key)
        self.moto.wait_ready()
        template = self._load_template()
        self.dynamodb_local.wait_ready()
        self.template = template
        self.clients = self._clients()
        # The functions reach SQS and SES through the fault switch's proxy (POST /_local/faults).
        self.fault_proxy = FaultProxy(self.moto.endpoint_url, self.faults, self._observe_aws).start()
        provision(self.clients, template, self.seed)
        # Demo users and default assignment rules, by the application's seeding entry point
        # (crm.tools.seeding).
        seeding = start_app_seeding(
            template, self.seed, self.dynamodb_local.endpoint_url, self.data.root / "seed-users.json"
        )
        overrides = self._worker_overrides()
        for function in template.functions.values():
            self.pools[function.logical_id] = FunctionPool(
                function, lambda_environment(function, overrides), self.log, self.workers_per_function
            )
        self._start_pumps(template, create_event_rules(self.clients.events, self.clients.sqs, template))
        # S3 on this stack's port (presigned URLs), and the template's bucket notifications.
        self.s3 = s3.S3Front(
            template,
            self.fault_proxy.forward,
            invoke=self.invoke,
            sqs=self.clients.sqs,
            events=self.clients.events,
            log=self.log,
            stop=self._stop,
        ).start()
        self.event_log = EventLog(self.clients.events, self.clients.sqs, template)
        seeded = finish_app_seeding(seeding)
        if seeded:
            self.log(f"[seed] {seeded}")
        self.oauth = LocalAuthorizationServer(
            key=self._key,
            seed=self.seed,
            client_id=local_client_id(template),
            base_url=self.server.url,
            now=self.clock.time,
        )
        self.server.serve(ApiGateway(template, self, self.log))
        if self.prewarm:
            self._prewarm_in_background()

    def _prewarm_in_background(self) -> None:
        # A few at a time: two dozen inits at once on a small machine held a first request's own cold start
        # (and the test waiting on it) for half a minute; this way the CPU goes to one init after another.
        waiting = iter(list(self.pools.values()))
        lock = threading.Lock()

        def warm_next() -> None:
            while True:
                with lock:
                    pool = next(waiting, None)
                if pool is None:
                    return
                pool.prewarm()

        self._prewarming = [
            threading.Thread(target=warm_next, name=f"prewarm {lane}", daemon=True)
            for lane in range(max(1, min(2, os.cpu_count() or 1)))
        ]
        for thread in self._prewarming:
            thread.start()

    def wait_warm(self, timeout: float = 180.0) -> None:
        """Wait until every function has a warm worker (tests that time the pipeline start from there)."""
        deadline = time.monotonic() + timeout
        for thread in self._prewarming:
            thread.join(max(0.0, deadline - time.monotonic()))

    def _load_template(self) -> Template:
        assert self.moto is not None and self.server is not None
        return load_template(
            self.template_path,
            parameter_overrides=self.parameter_overrides,
            sqs_endpoint=self.moto.endpoint_url,
            # Links the functions build (emails, redirects) must point at this stack, whatever its port.
            optional_parameters={
                "PublicBaseUrl": self.server.url,
                "PublicConsoleUrl": self.server.url + "/app/",
                "ConsoleAuthBaseUrl": self.server.url,  # the local issuer's /oauth2/... (devstack/oauth.py)
                "CaptchaVerifyUrl": self.server.url + captcha.PATH,  # off unless CaptchaSecret is set
            },
        )

    def _clients(self) -> Any:
        assert self.dynamodb_local is not None and self.moto is not None
        session = boto3.Session(
            region_name=LOCAL_REGION, aws_access_key_id="local", aws_secret_access_key="local"
        )
        config = Config(retries={"max_attempts": 2, "mode": "standard"}, max_pool_connections=32)
        ddb, moto = self.dynamodb_local.endpoint_url, self.moto.endpoint_url
        return SimpleNamespace(
            dynamodb=session.client("dynamodb", endpoint_url=ddb, config=config),
            streams=session.client("dynamodbstreams", endpoint_url=ddb, config=config),
            sqs=session.client("sqs", endpoint_url=moto, config=config),
            ssm=session.client("ssm", endpoint_url=moto, config=config),
            secretsmanager=session.client("secretsmanager", endpoint_url=moto, config=config),
            events=session.client("events", endpoint_url=moto, config=config),
            sesv2=session.client("sesv2", endpoint_url=moto, config=config),
            ses=session.client("ses", endpoint_url=moto, config=config),
            scheduler=session.client("scheduler", endpoint_url=moto, config=config),
            s3=session.client("s3", endpoint_url=moto, config=config),
        )

    def _worker_overrides(self) -> dict[str, str]:
        """Only endpoints and credentials differ from AWS; the code paths stay the same."""
        assert self.dynamodb_local is not None and self.moto is not None and self.fault_proxy is not None
        assert self.server is not None
        ddb, moto = self.dynamodb_local.endpoint_url, self.moto.endpoint_url
        faulty = self.fault_proxy.url
        self.data.aws_config.touch()
        return {
            "AWS_ENDPOINT_URL_DYNAMODB": ddb,
            "AWS_ENDPOINT_URL_DYNAMODB_STREAMS": ddb,
            "AWS_ENDPOINT_URL_SQS": faulty,
            "AWS_ENDPOINT_URL_SES": faulty,
            "AWS_ENDPOINT_URL_SESV2": faulty,
            "AWS_ENDPOINT_URL_EVENTBRIDGE": moto,
            "AWS_ENDPOINT_URL_SCHEDULER": moto,
            "AWS_ENDPOINT_URL_SSM": moto,
            "AWS_ENDPOINT_URL_SECRETS_MANAGER": moto,
            # Through this stack's port, so the presigned URLs the functions make work from a browser here.
            "AWS_ENDPOINT_URL_S3": s3.endpoint_url(self.server.url),
            "AWS_REGION": LOCAL_REGION,
            "AWS_DEFAULT_REGION": LOCAL_REGION,
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_SESSION_TOKEN": "local",
            "AWS_CONFIG_FILE": str(self.data.aws_config),
            "AWS_SHARED_CREDENTIALS_FILE": str(self.data.aws_config),
            "POWERTOOLS_TRACE_DISABLED": "true",
            "LEADFLOW_CLOCK_FILE": str(self.data.clock_file),
            # Outbound webhooks may go to a test receiver on this machine (only here: AWS allows https only).
            "WEBHOOK_ALLOW_LOOPBACK": "true",
        }

    def _start_pumps(self, template: Template, taps: list[Tap]) -> None:
        checkpoints = CheckpointStore(self.data.checkpoints)
        for mapping in template.event_source_mappings:
            if not mapping.enabled:
                continue
            if mapping.kind == "dynamodb":
                self.pumps.append(
                    StreamPump(
                        mapping,
                        template,
                        dynamodb=self.clients.dynamodb,
                        streams=self.clients.streams,
                        sqs=self.clients.sqs,
                        checkpoints=checkpoints,
                        invoke=self.invoke,
                        log=self.log,
                        stop=self._stop,
                    )
                )
            else:
                self.pumps.append(
                    QueuePump(
                        mapping,
                        template,
                        sqs=self.clients.sqs,
                        invoke=self.invoke,
                        log=self.log,
                        stop=self._stop,
                        failed_batch_visibility_s=self.failed_batch_visibility_s,
                    )
                )
        self.schedules = ScheduleRunner(
            template,
            clock=self.clock,
            state_file=self.data.schedules,
            invoke=self.invoke,
            sqs=self.clients.sqs,
            scheduler=self.clients.scheduler,
            log=self.log,
            stop=self._stop,
        )
        self.schedules.restore_runtime_schedules()
        self.rules = RulePump(taps, sqs=self.clients.sqs, invoke=self.invoke, log=self.log, stop=self._stop)
        for pump in self.pumps:
            pump.start()
        self.rules.start()
        self.schedules.start()

    def stop(self) -> None:
        self._stop.set()
        if self.server is not None:
            self.server.stop()
        for pump in self.pumps:
            pump.thread.join(timeout=5)
        for runner in (self.schedules, self.rules, self.s3):
            if runner is not None and runner.thread.is_alive():
                runner.thread.join(timeout=5)
        for pool in self.pools.values():
            pool.close()
        if self.fault_proxy is not None:
            self.fault_proxy.stop()
        if self.moto is not None:
            self.moto.stop()
        if self.dynamodb_local is not None:
            self.dynamodb_local.stop()
        self._lock.release()

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------ what tests and the CLI use
    def token(
        self, role: str | None = "rep", *, user: str | None = None, groups: tuple[str, ...] | None = None
    ) -> str:
        """A bearer token for a demo user, by role (admin, manager, rep) or by username (rep2); `groups`
        overrides the user's groups (`()`: a signed-in user nobody has given a role)."""
        assert self.template is not None
        demo = self.seed.user(username=user, role=None if user else role)
        if groups is not None:
            demo = dataclasses.replace(demo, groups=groups)
        return issue_token(self._key, demo, local_client_id(self.template), self.clock.time())

    def advance_clock(self, seconds: float) -> float:
        """Move the stack's clock forward and fire whatever became due; returns the new offset."""
        offset = self.clock.advance(seconds)
        if self.schedules is not None:
            self.schedules.tick()
        return offset

    def run_schedule(self, name: str, event: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Fire a schedule now; `event` (a JSON object) replaces the scheduled event its target gets."""
        assert self.schedules is not None
        return [vars(result) for result in self.schedules.run_now(name, event)]

    def outbox(self) -> list[dict[str, Any]]:
        """Every email sent, newest first across all kinds, each with `sent_at` (the stack's clock)."""
        assert self.moto is not None
        return outbox.sent_messages(self.moto.model_data(), self._sent_at)

    def _observe_aws(self, service: str, status: int, payload: bytes) -> None:
        """Stamp each email SES accepted with the stack's clock, by its message id."""
        if service == "ses" and status == 200:
            for message_id in outbox.message_ids(payload):
                self._sent_at.setdefault(message_id, self.clock.now().isoformat())

    def redrive(self, queue: str | None = None) -> dict[str, int]:
        """Move dead-lettered messages back to their source queues; returns {source queue: count}."""
        assert self.template is not None
        moved: dict[str, int] = {}
        for source in self.template.queues:
            dlq_arn = source.dead_letter_arn
            if dlq_arn is None:
                continue
            dlq = self.template.queue(dlq_arn)
            if queue is not None and queue not in (source.logical_id, source.name, dlq.logical_id, dlq.name):
                continue
            moved[source.name] = _move_messages(self.clients.sqs, dlq.url, source.url)
        for pump in self.pumps:
            # Stream batches a function gave up on: their on-failure records name a shard's sequence range,
            # which is read again and delivered to the function (while the stream holds it).
            if not isinstance(pump, StreamPump) or pump.mapping.on_failure_arn is None:
                continue
            failures = self.template.queue(pump.mapping.on_failure_arn)
            names = (failures.logical_id, failures.name, pump.mapping.function_logical_id)
            if queue is not None and queue not in names:
                continue
            moved[failures.name] = moved.get(failures.name, 0) + _replay_stream_failures(
                self.clients.sqs,
                failures.url,
                pump,
                self.template.functions[pump.mapping.function_logical_id].arn,
                self.log,
            )
        return moved

    def status(self) -> dict[str, Any]:
        """Each event source mapping's lag (records behind per stream consumer, messages waiting per queue
        consumer), batch sizes and failures; each function's workers; the fault switch."""
        consumers: dict[str, Any] = {}
        for pump in self.pumps:
            entry: dict[str, Any] = {
                "kind": pump.mapping.kind,
                "function": pump.mapping.function_logical_id,
                "batch_size": pump.mapping.batch_size,
                **pump.stats.as_dict(),
            }
            try:
                entry.update(pump.lag())
            except Exception as exc:  # DynamoDB Local or moto down: say so, the rest still answers
                entry["lag_error"] = repr(exc)
            consumers[pump.mapping.logical_id] = entry
        functions = {
            name: {"workers": len(pool.pids()), "invocations": pool.invocations, "failures": pool.failures}
            for name, pool in self.pools.items()
        }
        return {"consumers": consumers, "functions": functions, "faults": self.faults.as_dict()}

    # ------------------------------------------------------------------ gateway backend
    def invoke(self, function_logical_id: str, event: Any, timeout_s: float | None = None) -> Invocation:
        return self.pools[function_logical_id].invoke(event, timeout_s)

    def authorize(
        self, authorizer: JwtAuthorizer, token: str | None, scopes: tuple[str, ...]
    ) -> Authorization:
        # The template's issuer points at Cognito; locally this stack is the issuer.
        return authorize(
            token,
            key=self._key,
            issuer=LOCAL_ISSUER,
            audience=authorizer.audience,
            now=self.clock.time(),
            required_scopes=scopes,
        )

    def handle_oauth(self, request: HttpRequest) -> HttpResponse:
        if self.oauth is None:
            return json_response(503, {"message": "Service Unavailable"})
        return self.oauth.handle(request)

    def handle_s3(self, request: HttpRequest) -> HttpResponse:
        if self.s3 is None:
            return json_response(503, {"message": "Service Unavailable"})
        return self.s3.handle(request)

    def handle_local(self, request: HttpRequest) -> HttpResponse:
        path = request.raw_path.rstrip("/")
        method = request.method.upper()
        try:
            if path == "/_local/jwks.json":
                return json_response(200, jwks(self._key))
            if path == "/_local/outbox.json":
                return json_response(200, self.outbox())
            if path == "/_local/events":
                # The last N events published to the custom buses (N from ?last=, default 100).
                assert self.event_log is not None
                return json_response(200, self.event_log.last(int(request.query_map().get("last", "100"))))
            if path == "/_local/outbox":
                page = outbox.render_html(self.outbox()).encode()
                return HttpResponse(200, [("content-type", "text/html; charset=utf-8")], page)
            if path == "/_local/clock":
                if method == "POST":
                    body = json.loads(request.body or b"{}")
                    seconds = body.get("advance_seconds")
                    if seconds is None and "advance" in body:
                        seconds = parse_duration(str(body["advance"]))
                    self.advance_clock(float(seconds or 0))
                return json_response(
                    200, {"offset_seconds": self.clock.offset(), "now": self.clock.now().isoformat()}
                )
            if path.startswith("/_local/schedules/") and method == "POST":
                name = urllib.parse.unquote(path[len("/_local/schedules/") :])
                # A JSON object in the body is the event the function gets; none (or {}): the schedule's.
                try:
                    event = json.loads(request.body or b"{}")
                except ValueError:
                    event = None
                if not isinstance(event, dict):
                    return json_response(400, {"message": "the body must be a JSON object (the event)"})
                return json_response(200, self.run_schedule(name, event or None))
            if path == captcha.PATH and method == "POST":
                return json_response(200, captcha.siteverify(request.body or b""))
            if path == "/_local/redrive" and method == "POST":
                body = json.loads(request.body or b"{}")
                return json_response(200, self.redrive(body.get("queue")))
            if path == "/_local/status" and method == "GET":
                return json_response(200, self.status())
            if path == "/_local/faults":
                if method == "POST":
                    services, seconds = parse_request(request.body or b"")
                    self.faults.throttle(services, seconds)
                return json_response(200, self.faults.as_dict())
            if path == "/_local/token" and method == "GET":
                query = request.query_map()
                return json_response(
                    200, {"token": self.token(query.get("role", "rep"), user=query.get("user"))}
                )
        except KeyError as exc:
            return json_response(404, {"message": str(exc.args[0]) if exc.args else "Not Found"})
        except ValueError as exc:
            return json_response(400, {"message": str(exc)})
        return json_response(404, {"message": "Not Found"})


def _replay_stream_failures(
    sqs: Any, url: str, pump: StreamPump, function_arn: str, log: Callable[[str], None]
) -> int:
    """Replays each on-failure record of `pump`'s function in the queue; returns how many were delivered.
    A record whose range the stream no longer holds stays in the queue (the reconciler repairs its leads)."""
    replayed = 0
    held: list[str] = []  # messages left in the queue: invisible during this pass, visible again after it
    while True:
        messages = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0, VisibilityTimeout=300
        ).get("Messages", [])
        if not messages:
            for receipt in held:
                sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=receipt, VisibilityTimeout=0)
            return replayed
        for message in messages:
            body = json.loads(message["Body"])
            info = body.get("DDBStreamBatchInfo")
            if not info or body.get("requestContext", {}).get("functionArn") != function_arn:
                held.append(message["ReceiptHandle"])  # another function's record
                continue
            outcome = pump.replay(info)
            if outcome is None:
                log(
                    f"[redrive] {info['shardId']} {info['startSequenceNumber']}..{info['endSequenceNumber']}"
                    ": no longer in the stream; left in the queue (the reconciler repairs its leads)"
                )
                held.append(message["ReceiptHandle"])
                continue
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            replayed += 1 if outcome else 0


def _move_messages(sqs: Any, from_url: str, to_url: str) -> int:
    moved = 0
    while True:
        response = sqs.receive_message(
            QueueUrl=from_url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=0,
            VisibilityTimeout=30,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages = response.get("Messages", [])
        if not messages:
            return moved
        for message in messages:
            kwargs: dict[str, Any] = {"QueueUrl": to_url, "MessageBody": message["Body"]}
            if message.get("MessageAttributes"):
                kwargs["MessageAttributes"] = message["MessageAttributes"]
            group = (message.get("Attributes") or {}).get("MessageGroupId")
            if group:
                kwargs["MessageGroupId"] = group
                kwargs["MessageDeduplicationId"] = message["MessageId"]
            sqs.send_message(**kwargs)
            sqs.delete_message(QueueUrl=from_url, ReceiptHandle=message["ReceiptHandle"])
            moved += 1


def _data(path: str | Path | None) -> DataDir:
    return data_dir(path)
