"""The inside of one warm Lambda worker process, like the Python runtime interface client.

Run as a script with `python -I` (no PYTHONPATH, no script folder on sys.path) so that the function sees only
[its CodeUri folder, its layers] + the interpreter's site-packages. It imports nothing from devstack: two
functions' `app.py` can never collide, and the stack's code is not importable from a function.

Protocol: invocations arrive as one JSON line each on the request pipe; results go back as one JSON line each
on the response pipe. stdout/stderr stay the function's own (the parent forwards them with a prefix).
"""

from __future__ import annotations

import decimal
import importlib
import json
import os
import sys
import time
import traceback
from typing import Any


class LambdaContext:
    """The attributes and method of the Lambda Python runtime's context object."""

    def __init__(self, request: dict[str, Any]) -> None:
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.invoked_function_arn = request["invoked_function_arn"]
        # A string, as the real runtime reads it from the environment.
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.aws_request_id = request["aws_request_id"]
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME")
        self.identity = None
        self.client_context = None
        self.tenant_id = None
        self._deadline_ms = int(request["deadline_ms"])

    def get_remaining_time_in_millis(self) -> int:
        return max(self._deadline_ms - int(time.time() * 1000), 0)

    def __repr__(self) -> str:
        return f"LambdaContext([aws_request_id={self.aws_request_id},function_name={self.function_name}])"


def _decimal_serializer(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return float(value)
    raise TypeError(f"{value!r} is not JSON serializable")


def _error(exc: BaseException, error_type: str | None = None) -> dict[str, Any]:
    return {
        "errorMessage": str(exc),
        "errorType": error_type or type(exc).__name__,
        "stackTrace": traceback.format_list(traceback.extract_tb(exc.__traceback__)[1:]),
    }


def _log_error(error: dict[str, Any]) -> None:
    # The shape the managed runtime writes to CloudWatch for an unhandled error.
    lines = [f"[ERROR] {error['errorType']}: {error['errorMessage']}", "Traceback (most recent call last):"]
    lines += [frame.rstrip("\n") for frame in error["stackTrace"]]
    sys.stderr.write("\n".join(lines) + "\n")
    sys.stderr.flush()


def _load_handler(handler: str) -> Any:
    module_name, _, function_name = handler.rpartition(".")
    if not module_name:
        raise ValueError(f"Bad handler '{handler}': not enough values to unpack (expected 2, got 1)")
    module = importlib.import_module(module_name.replace("/", "."))
    return getattr(module, function_name)


def main() -> None:
    request_fd, response_fd = int(sys.argv[1]), int(sys.argv[2])
    search_path = json.loads(sys.argv[3])
    sys.path[:0] = search_path
    os.chdir(search_path[0])
    requests = os.fdopen(request_fd, "r", encoding="utf-8")
    responses = os.fdopen(response_fd, "w", encoding="utf-8")

    def reply(message: dict[str, Any]) -> None:
        responses.write(json.dumps(message) + "\n")
        responses.flush()

    started = time.perf_counter()
    try:
        handler = _load_handler(os.environ["_HANDLER"])
    except Exception as exc:  # an init error is reported on every invocation, as Lambda does
        kind = "Runtime.ImportModuleError" if isinstance(exc, ImportError) else "Runtime.HandlerNotFound"
        kind = kind if isinstance(exc, ImportError | AttributeError) else f"Runtime.{type(exc).__name__}"
        init_error = _error(exc, kind)
        _log_error(init_error)
        reply({"init_error": init_error})
        return
    reply({"ready": True, "init_ms": round((time.perf_counter() - started) * 1000, 2)})

    for line in requests:
        request = json.loads(line)
        os.environ["_X_AMZN_TRACE_ID"] = request.get("trace_id", "")
        context = LambdaContext(request)
        try:
            result = handler(request["event"], context)
            try:
                payload = json.dumps(result, default=_decimal_serializer)
            except (TypeError, ValueError) as exc:
                error = _error(exc, "Runtime.MarshalError")
                _log_error(error)
                reply({"id": request["id"], "error": error})
                continue
            reply({"id": request["id"], "result": payload})
        except Exception as exc:
            error = _error(exc)
            _log_error(error)
            reply({"id": request["id"], "error": error})
        sys.stdout.flush()
        sys.stderr.flush()


if __name__ == "__main__":
    main()
