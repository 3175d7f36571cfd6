"""Schedules, fired on the stack's (shiftable) clock.

- The template's `Type: Schedule` (EventBridge rules) and `Type: ScheduleV2` (EventBridge Scheduler) events.
- One-time schedules the functions create at runtime through the Scheduler API (in moto): `at(...)`, fired
  when due, then deleted (ActionAfterCompletion DELETE) or remembered as done (NONE). Recurring runtime
  schedules (rate/cron) fire too. Targets: a function ARN or an SQS queue ARN.

moto keeps schedules in memory only, so runtime schedules are mirrored into the data folder and put back
into moto at the next start; firing state lives there too.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from .clock import Clock
from .schedule_expressions import InvalidExpression, next_fire, one_time_due
from .template import LOCAL_ACCOUNT_ID, LOCAL_REGION, Schedule, Template
from .workers import Invocation

Invoke = Callable[[str, Any], Invocation]

_ASYNC_RETRIES = 2  # Lambda's default for asynchronous invocations (rules)
_MIRRORED_FIELDS = (
    "Name",
    "GroupName",
    "ScheduleExpression",
    "ScheduleExpressionTimezone",
    "FlexibleTimeWindow",
    "Target",
    "State",
    "ActionAfterCompletion",
    "Description",
)


def scheduled_event(source: str, resource_arn: str, when: datetime) -> dict[str, Any]:
    """The event Lambda gets from a schedule (detail-type "Scheduled Event")."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": source,
        "account": LOCAL_ACCOUNT_ID,
        "time": when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": LOCAL_REGION,
        "resources": [resource_arn],
        "detail": {},
    }


@dataclass
class FireResult:
    name: str
    target_arn: str
    ok: bool
    detail: str = ""
    # What the function answered (a function target only): e.g. the days a reconciliation checked.
    response: Any = None


class ScheduleRunner:
    def __init__(
        self,
        template: Template,
        *,
        clock: Clock,
        state_file: Path,
        invoke: Invoke,
        sqs: Any,
        scheduler: Any,
        log: Callable[[str], None],
        stop: threading.Event,
        interval: float = 0.5,
    ) -> None:
        self.template = template
        self.clock = clock
        self.state_file = state_file
        self.invoke_function = invoke
        self.sqs = sqs
        self.scheduler = scheduler
        self.log = log
        self.stop = stop
        self.interval = interval
        self._lock = threading.RLock()
        self._details: dict[tuple[str, str], tuple[Any, dict[str, Any]]] = {}
        self._state = self._load_state()
        now = self.clock.now()
        self._next: dict[str, datetime | None] = {}
        for schedule in template.schedules:
            if schedule.enabled:
                self._next[schedule.logical_id + "/" + schedule.target_arn] = self._safe_next(
                    schedule.expression, now, schedule.timezone
                )
        self.thread = threading.Thread(target=self._run, name="schedules", daemon=True)

    # ------------------------------------------------------------------ state
    def _load_state(self) -> dict[str, Any]:
        try:
            state: dict[str, Any] = json.loads(self.state_file.read_text())
        except (FileNotFoundError, ValueError):
            state = {}
        state.setdefault("runtime", {})
        state.setdefault("done", [])
        state.setdefault("last_fired", {})
        return state

    def _save_state(self) -> None:
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(self._state, indent=1, sort_keys=True, default=str))
        tmp.replace(self.state_file)

    def restore_runtime_schedules(self) -> int:
        """Put the mirrored runtime schedules back into a fresh moto."""
        restored = 0
        for key, spec in list(self._state["runtime"].items()):
            if key in self._state["done"]:
                continue
            group = spec.get("GroupName") or "default"
            try:
                if group != "default":
                    try:
                        self.scheduler.create_schedule_group(Name=group)
                    except ClientError as exc:
                        if exc.response["Error"]["Code"] != "ConflictException":
                            raise
                kwargs = {k: v for k, v in spec.items() if v is not None and k != "GroupName"}
                self.scheduler.create_schedule(GroupName=group, **kwargs)
                restored += 1
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "ConflictException":
                    self.log(f"[schedules] could not restore {key}: {exc}")
        return restored

    # ------------------------------------------------------------------ loop
    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.wait(self.interval):
            try:
                self.tick()
            except Exception as exc:  # keep the clock running through a bad tick
                if not self.stop.is_set():
                    self.log(f"[schedules] {exc!r}")

    def tick(self) -> list[FireResult]:
        """Fire everything due by the stack's clock; callable from any thread (e.g. after a clock move)."""
        with self._lock:
            now = self.clock.now()
            results = []
            for schedule in self.template.schedules:
                key = schedule.logical_id + "/" + schedule.target_arn
                due = self._next.get(key)
                if due is not None and due <= now:
                    results.append(self._fire_template(schedule, now))
                    self._next[key] = self._safe_next(schedule.expression, now, schedule.timezone)
            results.extend(self._tick_runtime(now))
            return results

    @staticmethod
    def _safe_next(expression: str, after: datetime, timezone: str) -> datetime | None:
        try:
            return next_fire(expression, after, timezone)
        except (InvalidExpression, ValueError):
            return None

    # ------------------------------------------------------------------ template schedules
    def _fire_template(self, schedule: Schedule, now: datetime, event: Any = None) -> FireResult:
        if event is not None:
            payload: Any = event  # given by hand (`schedules run --event`), instead of the schedule's
        elif schedule.input is not None:
            payload = json.loads(schedule.input)
        elif schedule.kind == "rule":
            payload = scheduled_event(
                "aws.events", f"arn:aws:events:{LOCAL_REGION}:{LOCAL_ACCOUNT_ID}:rule/{schedule.name}", now
            )
        else:
            arn = f"arn:aws:scheduler:{LOCAL_REGION}:{LOCAL_ACCOUNT_ID}:schedule/default/{schedule.name}"
            payload = scheduled_event("aws.scheduler", arn, now)
        return self._deliver(schedule.name, schedule.target_arn, payload, retries=_ASYNC_RETRIES)

    def run_now(self, name: str, event: Any = None) -> list[FireResult]:
        """Fire a schedule immediately: by function logical id, rule/schedule name or logical id, or the name
        of a runtime schedule. `event`, if given, is delivered instead of the scheduled event (a template
        schedule's target gets exactly that JSON)."""
        with self._lock:
            now = self.clock.now()
            matched = [
                s for s in self.template.schedules if name in (s.logical_id, s.name, s.function_logical_id)
            ]
            if matched:
                return [self._fire_template(s, now, event) for s in matched]
            for group, schedule_name, summary in self._list_runtime():
                if name in (schedule_name, f"{group}/{schedule_name}"):
                    return [self._fire_runtime(group, schedule_name, summary, now)]
        known = sorted(
            {s.name for s in self.template.schedules}
            | {s.function_logical_id or "" for s in self.template.schedules}
        )
        raise KeyError(f"no schedule {name!r}; known: {', '.join(k for k in known if k) or 'none'}")

    # ------------------------------------------------------------------ runtime schedules
    def _list_runtime(self) -> list[tuple[str, str, dict[str, Any]]]:
        found = []
        kwargs: dict[str, Any] = {}
        while True:
            page = self.scheduler.list_schedules(**kwargs)
            for item in page.get("Schedules", []):
                found.append((item.get("GroupName") or "default", item["Name"], item))
            if not page.get("NextToken"):
                return found
            kwargs["NextToken"] = page["NextToken"]

    def _detail(self, group: str, name: str, summary: dict[str, Any]) -> dict[str, Any]:
        # get_schedule only when the schedule changed: the list call carries LastModificationDate.
        stamp = summary.get("LastModificationDate")
        cached = self._details.get((group, name))
        if cached is None or cached[0] != stamp:
            detail = self.scheduler.get_schedule(GroupName=group, Name=name)
            detail.pop("ResponseMetadata", None)
            self._details[(group, name)] = (stamp, detail)
            spec = {k: detail.get(k) for k in _MIRRORED_FIELDS}
            if self._state["runtime"].get(f"{group}/{name}") != spec:
                self._state["runtime"][f"{group}/{name}"] = spec
                self._save_state()
        return self._details[(group, name)][1]

    def _tick_runtime(self, now: datetime) -> list[FireResult]:
        results = []
        listed = self._list_runtime()
        live = {f"{g}/{n}" for g, n, _ in listed}
        template_names = {s.name for s in self.template.schedules if s.kind == "scheduler"}
        for key in [k for k in self._state["runtime"] if k not in live]:
            # Deleted through the API: forget it.
            del self._state["runtime"][key]
            self._save_state()
        for group, name, summary in listed:
            if name in template_names and group == "default":
                continue
            detail = self._detail(group, name, summary)
            if detail.get("State", "ENABLED") != "ENABLED" or f"{group}/{name}" in self._state["done"]:
                continue
            expression = detail["ScheduleExpression"]
            timezone = detail.get("ScheduleExpressionTimezone") or "UTC"
            at = one_time_due(expression, timezone)
            if at is not None:
                if at <= now:
                    results.append(self._fire_runtime(group, name, detail, now))
                    self._complete(group, name, detail)
                continue
            last = self._state["last_fired"].get(f"{group}/{name}")
            since = datetime.fromisoformat(last) if last else _created(detail, now)
            due = self._safe_next(expression, since, timezone)
            if due is not None and due <= now:
                results.append(self._fire_runtime(group, name, detail, now))
                self._state["last_fired"][f"{group}/{name}"] = now.isoformat()
                self._save_state()
        return results

    def _fire_runtime(self, group: str, name: str, detail: dict[str, Any], now: datetime) -> FireResult:
        if "Target" not in detail:
            detail = self.scheduler.get_schedule(GroupName=group, Name=name)
        target = detail["Target"]
        raw_input = target.get("Input")
        payload: Any
        if raw_input is None:
            payload = scheduled_event("aws.scheduler", detail.get("Arn", name), now)
        else:
            try:
                payload = json.loads(raw_input)
            except ValueError:
                payload = raw_input
        retries = int((target.get("RetryPolicy") or {}).get("MaximumRetryAttempts", 0))
        result = self._deliver(
            f"{group}/{name}", target["Arn"], payload, retries=min(retries, 2), raw=raw_input
        )
        dead_letter = (target.get("DeadLetterConfig") or {}).get("Arn")
        if not result.ok and dead_letter:
            self._send_to_queue(
                dead_letter, raw_input if raw_input is not None else json.dumps(payload), target
            )
        return result

    def _complete(self, group: str, name: str, detail: dict[str, Any]) -> None:
        key = f"{group}/{name}"
        if (detail.get("ActionAfterCompletion") or "NONE") == "DELETE":
            try:
                self.scheduler.delete_schedule(GroupName=group, Name=name)
            except ClientError as exc:
                self.log(f"[schedules] could not delete {key}: {exc}")
            self._state["runtime"].pop(key, None)
            self._details.pop((group, name), None)
        else:
            self._state["done"].append(key)
        self._save_state()

    # ------------------------------------------------------------------ delivery
    def _deliver(
        self, name: str, target_arn: str, payload: Any, retries: int, raw: str | None = None
    ) -> FireResult:
        if ":sqs:" in target_arn:
            body = raw if raw is not None else json.dumps(payload)
            self._send_to_queue(target_arn, body, {})
            self.log(f"[schedules] {name} -> queue {target_arn.rsplit(':', 1)[-1]}")
            return FireResult(name, target_arn, True)
        try:
            function = self.template.function(target_arn)
        except KeyError:
            self.log(f"[schedules] {name}: target {target_arn} is not a function or queue of this stack")
            return FireResult(name, target_arn, False, "unknown target")
        for attempt in range(retries + 1):
            invocation = self.invoke_function(function.logical_id, payload)
            if invocation.ok:
                self.log(f"[schedules] {name} -> {function.logical_id}")
                return FireResult(name, target_arn, True, response=invocation.payload)
            if attempt < retries and self.stop.wait(1.0 * (attempt + 1)):
                break
        self.log(f"[schedules] {name} -> {function.logical_id} failed")
        return FireResult(name, target_arn, False, "invocation failed")

    def _send_to_queue(self, queue_arn: str, body: str, target: dict[str, Any]) -> None:
        queue = self.template.queue(queue_arn) if _has_queue(self.template, queue_arn) else None
        url = (
            queue.url if queue else self.sqs.get_queue_url(QueueName=queue_arn.rsplit(":", 1)[-1])["QueueUrl"]
        )
        kwargs: dict[str, Any] = {"QueueUrl": url, "MessageBody": body}
        group_id = (target.get("SqsParameters") or {}).get("MessageGroupId")
        if group_id:
            kwargs["MessageGroupId"] = group_id
            kwargs["MessageDeduplicationId"] = str(uuid.uuid4())
        self.sqs.send_message(**kwargs)


def _has_queue(template: Template, arn: str) -> bool:
    try:
        template.queue(arn)
    except KeyError:
        return False
    return True


def _created(detail: dict[str, Any], now: datetime) -> datetime:
    created = detail.get("CreationDate")
    if isinstance(created, datetime):
        return created.astimezone(UTC)
    return now
