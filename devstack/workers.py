"""Warm worker processes per function, the way Lambda keeps execution environments.

Each function gets a small pool (one process per concurrent invocation, up to `max_workers`); a worker that
crashes or times out is killed and replaced by a fresh one on the next invocation (a new cold start).
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .processes import forward_lines, stop_process
from .template import Function

RUNTIME_SCRIPT = Path(__file__).resolve().parent / "lambda_runtime.py"
# Lambda gives init 10 s of its own; an init that overruns it is run again inside the first invocation, under
# the function's timeout. So a cold start fails only after both (a loaded test machine can need the second).
INIT_PHASE_S = 10.0


@dataclass(frozen=True)
class Invocation:
    """What one invocation produced: a payload, or an error (raised, init failure, crash) or a timeout."""

    request_id: str
    payload: Any = None
    error: dict[str, Any] | None = None
    timed_out: bool = False
    duration_ms: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None and not self.timed_out


class WorkerDied(Exception):
    pass


class PoolClosed(RuntimeError):
    """The stack is stopping: the function takes no more invocations."""


class Worker:
    def __init__(self, function: Function, env: Mapping[str, str], log: Callable[[str], None]) -> None:
        self.function = function
        request_read, self._request_write = os.pipe()
        self._response_read, response_write = os.pipe()
        search_path = [str(function.code_dir), *(str(d) for d in function.layer_dirs)]
        self.started = time.perf_counter()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-I",
                "-u",
                str(RUNTIME_SCRIPT),
                str(request_read),
                str(response_write),
                json.dumps(search_path),
            ],
            # Each execution environment has its own log stream, as on Lambda.
            env={**env, "AWS_LAMBDA_LOG_STREAM_NAME": _log_stream_name()},
            cwd=function.code_dir if function.code_dir.is_dir() else None,
            pass_fds=(request_read, response_write),
            stdin=subprocess.DEVNULL,
            # Not in the terminal's process group: Ctrl-C is the stack's to handle. A worker whose stack dies
            # sees its request pipe close and exits.
            start_new_session=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        os.close(request_read)
        os.close(response_write)
        prefix = f"[{function.logical_id}]"
        assert self.process.stdout is not None and self.process.stderr is not None
        forward_lines(self.process.stdout, prefix, log)
        forward_lines(self.process.stderr, prefix, log)
        self._buffer = b""
        self._stop_lock = threading.Lock()
        self.init_error: dict[str, Any] | None = None
        self.init_ms: float | None = None
        self.code_stamp: float = 0.0

    def wait_ready(self, timeout: float) -> None:
        """Lambda's init phase: import the handler module (bounded as on AWS, see INIT_PHASE_S)."""
        message = self._read(time.monotonic() + timeout)
        if "init_error" in message:
            self.init_error = message["init_error"]
        self.init_ms = message.get("init_ms")

    def invoke(self, request: dict[str, Any], timeout: float) -> dict[str, Any]:
        try:
            os.write(self._request_write, (json.dumps(request) + "\n").encode())
        except OSError as exc:  # EPIPE: the worker is gone; EBADF: it was stopped meanwhile
            raise WorkerDied(f"request not delivered ({exc!r})") from exc
        return self._read(time.monotonic() + timeout)

    def _read(self, deadline: float) -> dict[str, Any]:
        """The next message of the worker. Whatever goes wrong on the pipe (the process killed, its pipe
        closed, a torn line) is WorkerDied: the invocation failed, never the caller's thread."""
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            try:
                ready, _, _ = select.select([self._response_read], [], [], remaining)
                chunk = os.read(self._response_read, 1 << 20) if ready else None
            except (OSError, ValueError) as exc:
                raise WorkerDied(f"response pipe failed ({exc!r})") from exc
            if chunk is None:
                # Outside the try: TimeoutError is an OSError, and a timeout is not a dead worker
                raise TimeoutError
            if not chunk:
                raise WorkerDied(f"exit code {self.process.wait()}")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        try:
            message: dict[str, Any] = json.loads(line)
        except ValueError as exc:
            raise WorkerDied(f"unreadable response ({exc})") from exc
        return message

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        """Idempotent and thread-safe: each pipe end is closed once. (Closing an fd number twice could close
        whatever another thread opened under that number since: another worker's pipe or a socket.)"""
        with self._stop_lock:
            fds, self._request_write, self._response_read = (self._request_write, self._response_read), -1, -1
        for fd in fds:
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            stop_process(self.process, grace=2.0)


class FunctionPool:
    """Warm workers of one function; `invoke` is thread-safe and blocks while all workers are busy."""

    def __init__(
        self,
        function: Function,
        env: Mapping[str, str],
        log: Callable[[str], None],
        max_workers: int = 3,
    ) -> None:
        self.function = function
        self.env = dict(env)
        self.log = log
        self.max_workers = max_workers
        self._idle: list[Worker] = []
        self._count = 0
        self._started: list[Worker] = []  # every worker started, for pids(); pruned as they exit
        self.invocations = 0
        self.failures = 0  # invocations that crashed, timed out or raised
        self._lock = threading.Condition()
        self._closed = False
        self._code_stamp = _code_stamp(function)
        self._stamp_checked = time.monotonic()

    def _recycle_if_code_changed(self) -> None:
        """Edited code reaches the next invocation: idle workers of older code are retired (at most one look
        per second at the files' modification times)."""
        now = time.monotonic()
        if now - self._stamp_checked < 1.0:
            return
        self._stamp_checked = now
        stamp = _code_stamp(self.function)
        if stamp == self._code_stamp:
            return
        self._code_stamp = stamp
        self.log(f"[{self.function.logical_id}] code changed; fresh workers will load it")
        stale, self._idle = self._idle, []
        self._count -= len(stale)
        for worker in stale:
            threading.Thread(target=worker.stop, daemon=True).start()

    def _checkout(self) -> Worker | None:
        with self._lock:
            self._recycle_if_code_changed()
            while True:
                if self._closed:
                    raise PoolClosed("the local stack is stopping")
                while self._idle:
                    worker = self._idle.pop()
                    if worker.alive:
                        return worker
                    self._count -= 1
                if self._count < self.max_workers:
                    self._count += 1
                    return None  # caller starts a new worker outside the lock
                self._lock.wait()

    def _checkin(self, worker: Worker | None) -> None:
        with self._lock:
            current = worker is not None and worker.code_stamp == self._code_stamp
            if worker is not None and worker.alive and current and not self._closed:
                self._idle.append(worker)
            else:
                self._count -= 1
                if worker is not None:
                    threading.Thread(target=worker.stop, daemon=True).start()
            self._lock.notify()

    def prewarm(self) -> None:
        """Start one worker ahead of the first request (runs the function's init)."""
        try:
            worker = self._checkout()
        except PoolClosed:
            return  # the stack stopped before this function's turn came
        try:
            if worker is None:
                worker = self._start_worker()
        except (TimeoutError, WorkerDied):
            worker = None
        self._checkin(worker)

    def pids(self) -> list[int]:
        """Process ids of the function's live workers, busy or idle (fault-injection tests kill them)."""
        with self._lock:
            self._started = [w for w in self._started if w.alive]
            return [w.process.pid for w in self._started]

    def _start_worker(self) -> Worker:
        worker = Worker(self.function, self.env, self.log)
        with self._lock:
            self._started.append(worker)
        worker.code_stamp = self._code_stamp
        try:
            worker.wait_ready(INIT_PHASE_S + self.function.timeout_s)
        except (TimeoutError, WorkerDied):
            worker.stop()
            raise
        return worker

    def invoke(self, event: Any, timeout_s: float | None = None) -> Invocation:
        invocation = self._invoke(event, timeout_s)
        with self._lock:
            self.invocations += 1
            self.failures += 0 if invocation.ok else 1
        return invocation

    def _invoke(self, event: Any, timeout_s: float | None) -> Invocation:
        timeout = min(timeout_s or self.function.timeout_s, self.function.timeout_s)
        request_id = str(uuid.uuid4())
        started = time.perf_counter()
        worker = self._checkout()
        cold = worker is None
        try:
            if worker is None:
                worker = self._start_worker()
            if worker.init_error is not None:
                # Lambda retries init on the next invoke; a fresh worker per attempt does the same.
                error = worker.init_error
                worker.stop()
                return Invocation(request_id, error=error)
            request = {
                "id": request_id,
                "event": event,
                "aws_request_id": request_id,
                "invoked_function_arn": self.function.arn,
                "deadline_ms": int(time.time() * 1000 + timeout * 1000),
                "trace_id": _trace_id(),
            }
            # As on Lambda, a cold start's init phase is not counted against the function's timeout: the
            # invocation gets its whole timeout once the worker is up (a loaded machine can be slow to init).
            message = worker.invoke(request, timeout)
        except TimeoutError:
            self.log(
                f"[{self.function.logical_id}] {_timestamp()} {request_id} "
                f"Task timed out after {timeout:.2f} seconds"
            )
            if worker is not None:
                worker.stop()
            return Invocation(request_id, timed_out=True, duration_ms=_ms_since(started))
        except Exception as exc:  # whatever the plumbing raised, the invocation failed
            # A worker that vanished (kill -9, out of memory), a broken pipe, a worker that could not start:
            # a function error, as Lambda reports Runtime.ExitError, so the event source retries the batch.
            error = {
                "errorType": "Runtime.ExitError",
                "errorMessage": f"RequestId: {request_id} Error: {exc}",
            }
            self.log(
                f"[{self.function.logical_id}] worker exited unexpectedly ({exc}); a fresh one will start"
            )
            if worker is not None:
                worker.stop()
            return Invocation(request_id, error=error, duration_ms=_ms_since(started))
        finally:
            self._checkin(worker)
        duration = _ms_since(started)
        init = f" Init Duration: {worker.init_ms:.2f} ms" if cold and worker.init_ms is not None else ""
        self.log(
            f"[{self.function.logical_id}] REPORT RequestId: {request_id} Duration: {duration:.2f} ms{init}"
        )
        if "error" in message:
            return Invocation(request_id, error=message["error"], duration_ms=duration)
        return Invocation(request_id, payload=json.loads(message["result"]), duration_ms=duration)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
            self._lock.notify_all()
        for worker in idle:
            worker.stop()


def _code_stamp(function: Function) -> float:
    """The newest modification time of the function's and its layers' Python files."""
    newest = 0.0
    for folder in (function.code_dir, *function.layer_dirs):
        for path in folder.rglob("*.py"):
            with contextlib.suppress(OSError):
                newest = max(newest, path.stat().st_mtime)
    return newest


def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000


def _trace_id() -> str:
    return f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};Parent={uuid.uuid4().hex[:16]};Sampled=0"


def _log_stream_name() -> str:
    return f"{datetime.now(UTC):%Y/%m/%d}/[$LATEST]{uuid.uuid4().hex}"


def _timestamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z"


def lambda_environment(function: Function, overrides: Mapping[str, str]) -> dict[str, str]:
    """What a worker's process sees: the reserved Lambda variables, the template's (Globals + function)
    variables, then the local overrides (endpoints, credentials, clock file) on top."""
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "LAMBDA_TASK_ROOT": str(function.code_dir),
        "_HANDLER": function.handler,
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{function.runtime or 'python'}",
        "AWS_LAMBDA_FUNCTION_NAME": function.name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory_mb),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{function.name}",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
    }
    env.update(function.environment)
    env.update(overrides)
    return env
