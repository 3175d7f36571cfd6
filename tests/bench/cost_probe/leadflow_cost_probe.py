"""The cost benchmark's probe, loaded inside each local Lambda worker in place of the function's handler.

`tests/bench/cost.py` starts the local stack with every function's handler set to
`leadflow_cost_probe.handler` and this folder on the worker's path; the real handler (`COST_PROBE_HANDLER`)
runs unchanged. The probe only installs botocore event hooks on every client the function creates (no
production code changes):

- `provide-client-params.dynamodb.*` asks for `ReturnConsumedCapacity=INDEXES` on every call that takes it;
- `after-call.dynamodb.*` adds up the consumed capacity per table and index, read or write, and per access
  pattern: the innermost domain-layer frame that made the call and the service frame above it;
- `before-call.*` counts every AWS request by service and operation (SQS sends, SES sends, SSM and Secrets
  Manager reads: each one that reaches the wire missed its cache).

Each invocation appends one JSON line to `COST_PROBE_FILE`: the function, its measured duration and CPU time,
the counts.
"""

from __future__ import annotations

import fcntl
import importlib
import json
import os
import sys
import time
from collections import Counter, defaultdict
from typing import Any

_FUNCTION = os.environ.get("COST_PROBE_FUNCTION", "?")
_FILE = os.environ.get("COST_PROBE_FILE", "")
_LAYER_MARK = os.sep + "crm" + os.sep
_READS = {"GetItem", "Query", "Scan", "BatchGetItem", "TransactGetItems"}
_TRANSACTIONS = {"TransactWriteItems", "TransactGetItems"}

# One invocation's counts; the worker serves one invocation at a time.
_capacity: dict[str, float] = defaultdict(float)  # json [table, index, kind, op, pattern]
_requests: Counter[str] = Counter()
_unreported: Counter[str] = Counter()
_calls: Counter[str] = Counter()  # DynamoDB calls per "operation pattern"
_seconds: dict[str, float] = defaultdict(float)  # time spent waiting for DynamoDB per "operation pattern"


def _access_pattern() -> str:
    """The code path that made the call: the innermost domain-layer frame (the data access) and the first
    frame above it that is outside its module (who asked for it)."""
    frame = sys._getframe(2)
    inner = None
    while frame is not None:
        path = frame.f_code.co_filename
        if _LAYER_MARK in path and not path.endswith(os.sep + "aws.py"):
            module = path[path.rindex(_LAYER_MARK) + len(_LAYER_MARK) : -3].replace(os.sep, ".")
            name = f"{module}.{frame.f_code.co_qualname}"
            if inner is None:
                inner = (path, name)
            elif path != inner[0]:
                return f"{inner[1]} <- {name}"
        elif "aws_lambda_powertools" in path and inner is None:
            inner = (path, "powertools." + path.rsplit("aws_lambda_powertools" + os.sep, 1)[-1][:-3])
        frame = frame.f_back  # type: ignore[assignment]
    return inner[1] if inner else "?"


def _add_return_consumed_capacity(params: dict[str, Any], model: Any, **_: Any) -> None:
    if "ReturnConsumedCapacity" in model.input_shape.members:
        params["ReturnConsumedCapacity"] = "INDEXES"


def _count_transaction_items(params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
    """A transaction's items per table, from the API parameters (a ConditionCheck counted as one: it is an
    item of the transaction too); `before-call` sees the serialized request only."""
    if model.name in _TRANSACTIONS:
        context["cost_probe_items"] = Counter(
            str(action["TableName"])
            for item in params.get("TransactItems") or []
            for action in item.values()
            if isinstance(action, dict) and "TableName" in action
        )


def _units(entry: dict[str, Any], kind: str) -> float:
    key = "ReadCapacityUnits" if kind == "read" else "WriteCapacityUnits"
    return float(entry.get(key) or entry.get("CapacityUnits") or 0.0)


def _record_capacity(
    http_response: Any, parsed: dict[str, Any], model: Any, context: dict[str, Any], **_: Any
) -> None:
    kind = "read" if model.name in _READS else "write"
    pattern = _access_pattern()
    _calls[f"{model.name} {pattern}"] += 1
    _seconds[f"{model.name} {pattern}"] += time.perf_counter() - context.get("cost_probe_started", 0.0)
    consumed = parsed.get("ConsumedCapacity")
    if consumed is None:
        if "Error" not in parsed:
            _unreported[model.name] += 1
        return
    for entry in consumed if isinstance(consumed, list) else [consumed]:
        table = entry.get("TableName", "?")
        parts = [("table", entry.get("Table") or {})]
        parts += [(f"gsi:{n}", v) for n, v in (entry.get("GlobalSecondaryIndexes") or {}).items()]
        parts += [(f"lsi:{n}", v) for n, v in (entry.get("LocalSecondaryIndexes") or {}).items()]
        if not entry.get("Table"):
            parts[0] = ("table", {"CapacityUnits": entry.get("CapacityUnits", 0)})
        for where, units in parts:
            amount = _units(units, kind)
            if where == "table" and model.name in _TRANSACTIONS:
                # DynamoDB Local adds a transaction's item sizes up before rounding (four small puts: 2
                # units); AWS rounds each item and doubles it (four small puts: 8). At least that, then.
                amount = max(amount, 2.0 * context.get("cost_probe_items", Counter())[table])
            if amount:
                _capacity[json.dumps([table, where, kind, model.name, pattern])] += amount


def _count_request(model: Any, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    context["cost_probe_started"] = time.perf_counter()
    service = model.service_model.service_name
    _requests[f"{service}.{model.name}"] += 1
    if model.name == "SendMessageBatch":
        _requests[f"{service}.SendMessageBatch.entries"] += len(params.get("Entries") or [])
    if model.name == "PutEvents":
        _requests[f"{service}.PutEvents.entries"] += len(params.get("Entries") or [])


def _hook(client: Any) -> None:
    events = client.meta.events
    events.register("before-call", _count_request)
    if client.meta.service_model.service_name == "dynamodb":
        events.register("provide-client-params.dynamodb", _add_return_consumed_capacity)
        events.register("before-parameter-build.dynamodb", _count_transaction_items)
        events.register("after-call.dynamodb", _record_capacity)


def _install() -> None:
    import botocore.client

    original = botocore.client.ClientCreator.create_client

    def create_client(self: Any, *args: Any, **kwargs: Any) -> Any:
        client = original(self, *args, **kwargs)
        _hook(client)
        return client

    botocore.client.ClientCreator.create_client = create_client  # type: ignore[method-assign]


_install()
_module_name, _, _attribute = os.environ["COST_PROBE_HANDLER"].rpartition(".")
_real_handler = getattr(importlib.import_module(_module_name), _attribute)


def _trigger(event: Any) -> str:
    if isinstance(event, dict):
        records = event.get("Records")
        if isinstance(records, list) and records:
            return str(records[0].get("eventSource") or records[0].get("EventSource") or "records")
        if "requestContext" in event:
            return "http"
        if "source" in event:
            return str(event["source"])
    return "direct"


def _write(line: dict[str, Any]) -> None:
    if not _FILE:
        return
    with open(_FILE, "a", encoding="utf-8") as sink:
        fcntl.flock(sink, fcntl.LOCK_EX)
        sink.write(json.dumps(line) + "\n")
        fcntl.flock(sink, fcntl.LOCK_UN)


def handler(event: Any, context: Any) -> Any:
    _capacity.clear()
    _requests.clear()
    _unreported.clear()
    _calls.clear()
    _seconds.clear()
    # The benchmark waits for every started invocation to end (or to pass its function's timeout).
    _write({"started": _FUNCTION, "id": context.aws_request_id, "at": time.time()})
    started, cpu_started = time.perf_counter(), time.process_time()
    records = event.get("Records") if isinstance(event, dict) else None
    try:
        return _real_handler(event, context)
    finally:
        _write(
            {
                "function": _FUNCTION,
                "id": context.aws_request_id,
                "memory_mb": int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")),
                "duration_ms": (time.perf_counter() - started) * 1000,
                "cpu_ms": (time.process_time() - cpu_started) * 1000,
                "trigger": _trigger(event),
                "records": len(records) if isinstance(records, list) else 0,
                "capacity": [[*json.loads(key), units] for key, units in _capacity.items()],
                "requests": dict(_requests),
                "unreported": dict(_unreported),
                "calls": dict(_calls),
                "seconds": {key: round(value, 6) for key, value in _seconds.items()},
            }
        )
