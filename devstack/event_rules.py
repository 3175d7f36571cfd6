"""EventBridge rules with event patterns, delivered to the functions they target.

moto matches `put_events` against the rules' patterns (and applies InputTransformer) but can only deliver to
queues, not to our workers. So each function target gets a private "tap" queue as its moto target, and a
pump invokes the function with each event that lands there, asynchronously as EventBridge does (Lambda
retries a failed asynchronous invocation twice). Queue targets of the template are wired directly.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from .template import EventRule, RuleTarget, Template, local_name
from .workers import Invocation

_ASYNC_RETRIES = 2


@dataclass(frozen=True)
class Tap:
    rule: EventRule
    target: RuleTarget
    function_logical_id: str
    queue_url: str


def _tap_name(rule: EventRule, target: RuleTarget) -> str:
    # SQS names allow 80 characters of [A-Za-z0-9_-].
    raw = f"tap-{rule.logical_id}-{target.id}"
    return local_name("".join(c if c.isalnum() or c in "-_" else "-" for c in raw))[:80]


def create_event_rules(events: Any, sqs: Any, template: Template) -> list[Tap]:
    """Create the buses, rules and targets in moto; return the taps the pump must drain."""
    taps = []
    for rule in template.event_rules:
        if rule.bus_name != "default":
            try:
                events.create_event_bus(Name=rule.bus_name)
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "ResourceAlreadyExistsException":
                    raise
        events.put_rule(
            Name=rule.name,
            EventBusName=rule.bus_name,
            EventPattern=json.dumps(rule.pattern),
            State="ENABLED" if rule.enabled else "DISABLED",
        )
        targets = []
        for target in rule.targets:
            entry: dict[str, Any] = {"Id": target.id}
            if target.input_transformer:
                entry["InputTransformer"] = target.input_transformer
            if target.sqs_parameters:
                entry["SqsParameters"] = target.sqs_parameters
            if ":sqs:" in target.arn:
                entry["Arn"] = target.arn
                if target.input is not None:
                    entry["Input"] = target.input
            else:
                function = template.function(target.arn)
                url = sqs.create_queue(QueueName=_tap_name(rule, target))["QueueUrl"]
                arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
                    "QueueArn"
                ]
                entry["Arn"] = arn
                taps.append(Tap(rule, target, function.logical_id, url))
            targets.append(entry)
        if targets:
            events.put_targets(Rule=rule.name, EventBusName=rule.bus_name, Targets=targets)
    return taps


class RulePump:
    def __init__(
        self,
        taps: list[Tap],
        *,
        sqs: Any,
        invoke: Callable[[str, Any], Invocation],
        log: Callable[[str], None],
        stop: threading.Event,
    ) -> None:
        self.taps = taps
        self.sqs = sqs
        self.invoke_function = invoke
        self.log = log
        self.stop = stop
        self.thread = threading.Thread(target=self._run, name="event rules", daemon=True)

    def start(self) -> None:
        if self.taps:
            self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            idle = True
            for tap in self.taps:
                try:
                    idle = not self._drain(tap) and idle
                except Exception as exc:  # keep delivering through a bad poll
                    if not self.stop.is_set():
                        self.log(f"[rules] {tap.rule.logical_id}: {exc!r}")
            if idle:
                self.stop.wait(0.25)

    def _drain(self, tap: Tap) -> bool:
        messages = self.sqs.receive_message(QueueUrl=tap.queue_url, MaxNumberOfMessages=10).get(
            "Messages", []
        )
        for message in messages:
            event = json.loads(message["Body"])
            payload = json.loads(tap.target.input) if tap.target.input is not None else event
            for attempt in range(_ASYNC_RETRIES + 1):
                if self.invoke_function(tap.function_logical_id, payload).ok:
                    break
                if attempt < _ASYNC_RETRIES and self.stop.wait(1.0 * (attempt + 1)):
                    return True
            else:
                self.log(
                    f"[rules] {tap.rule.name} -> {tap.function_logical_id} failed after retries; dropped"
                )
            self.sqs.delete_message(QueueUrl=tap.queue_url, ReceiptHandle=message["ReceiptHandle"])
        return bool(messages)
