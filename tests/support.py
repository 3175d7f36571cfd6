"""Helpers shared by the integration, end-to-end and benchmark suites."""

import base64
import importlib.util
import json
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from devstack.template import Function, Template

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events"
PARTNER_SECRET = "test-partner-secret"


@dataclass
class FakeLambdaContext:
    function_name: str
    memory_limit_in_mb: int = 512
    timeout_s: int = 15
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:000000000000:function:test"
    function_version: str = "$LATEST"
    log_group_name: str = "/aws/lambda/test"
    log_stream_name: str = "test"
    _started: float = field(default_factory=time.monotonic)

    def get_remaining_time_in_millis(self) -> int:
        return int((self.timeout_s - (time.monotonic() - self._started)) * 1000)


def load_handler(function: Function, copy: int = 0) -> Any:
    """Import a function's app.py under its own module name, as Lambda would keep each apart.

    Each `copy` is a separate module, like a separate execution environment: Lambda never runs two
    invocations at once in one environment, so concurrency tests give each thread its own copy.
    """
    module_name = f"lambda_{function.logical_id}_{copy}"
    spec = importlib.util.spec_from_file_location(module_name, function.code_dir / "app.py")
    assert spec and spec.loader
    module: ModuleType = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module.lambda_handler


def function_environment(template: Template, logical_id: str) -> dict[str, str]:
    return dict(template.function(logical_id).environment)


def event(name: str, **changes: Any) -> dict[str, Any]:
    """A sample event from events/, with its body replaced (str/bytes/dict) and headers merged."""
    data: dict[str, Any] = json.loads((EVENTS / name).read_text())
    if "body" in changes:
        body = changes.pop("body")
        if isinstance(body, dict):
            body = json.dumps(body)
        if isinstance(body, bytes):
            data["body"], data["isBase64Encoded"] = base64.b64encode(body).decode(), True
        else:
            data["body"], data["isBase64Encoded"] = body, False
    if "headers" in changes:
        data["headers"] = {**data["headers"], **{k.lower(): v for k, v in changes.pop("headers").items()}}
    data.update(changes)
    return data


def body_bytes(event_data: dict[str, Any]) -> bytes:
    body = event_data.get("body") or ""
    return base64.b64decode(body) if event_data.get("isBase64Encoded") else body.encode()


def response_json(response: dict[str, Any]) -> Any:
    return json.loads(response["body"]) if response.get("body") else None
