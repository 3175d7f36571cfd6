"""moto in server mode, in its own process: SQS, SES (v1 and v2), EventBridge, EventBridge Scheduler, SSM,
Secrets Manager."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any

from .processes import die_with_parent, forward_lines, free_port, stop_process, wait_for_port
from .template import LOCAL_ACCOUNT_ID

LAUNCHER = Path(__file__).with_name("moto_launcher.py")  # moto.server without S3 in its model view


class MotoServer:
    def __init__(self, port: int = 0, *, quiet: bool = True) -> None:
        self.port = port or free_port()
        self.quiet = quiet
        self.process: subprocess.Popen[bytes] | None = None
        self._output: list[str] = []

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> MotoServer:
        return self.launch().wait_ready(timeout)

    def launch(self) -> MotoServer:
        """Start the process without waiting (the caller's thread must outlive it: see die_with_parent)."""
        self.process = subprocess.Popen(
            [sys.executable, str(LAUNCHER), "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=die_with_parent,  # noqa: PLW1509 - only calls prctl
            # moto would otherwise use 123456789012; the template's ARNs (DLQs...) name 000000000000.
            env={**os.environ, "MOTO_ACCOUNT_ID": LOCAL_ACCOUNT_ID},
        )
        assert self.process.stdout is not None
        forward_lines(
            self.process.stdout, "[moto]", (lambda _line: None) if self.quiet else None, self._output
        )
        return self

    def wait_ready(self, timeout: float = 60.0) -> MotoServer:
        try:
            wait_for_port(
                self.port, timeout, lambda: self.process is not None and self.process.poll() is None, "moto"
            )
        except (RuntimeError, TimeoutError) as exc:
            self.stop()
            raise RuntimeError(f"{exc}; its output:\n" + "\n".join(self._output)) from exc
        return self

    def model_data(self) -> dict[str, Any]:
        """moto's internal view of every backend's objects (how sent mail can be read back)."""
        url = f"{self.endpoint_url}/moto-api/data.json"
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - moto's local http URL
            data: dict[str, Any] = json.loads(response.read())
        return data

    def stop(self) -> None:
        stop_process(self.process)
        self.process = None

    def __enter__(self) -> MotoServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
