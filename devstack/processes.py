"""Helpers shared by the launchers: free ports, waiting for a port, stopping a child and its output."""

from __future__ import annotations

import contextlib
import ctypes
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import IO


def die_with_parent() -> None:
    """preexec_fn: the child gets SIGTERM if the thread that started it dies (Linux), so a killed stack leaves
    no DynamoDB Local or moto behind. Children run in their own session, so Ctrl-C reaches only the stack,
    which then stops them in order."""
    if sys.platform.startswith("linux"):
        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(
    port: int, timeout: float, alive: Callable[[], bool] = lambda: True, what: str = "service"
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive():
            raise RuntimeError(f"{what} exited before it listened on port {port}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"{what} did not listen on port {port} within {timeout:.0f}s")


def stop_process(process: subprocess.Popen[bytes] | None, grace: float = 5.0) -> None:
    """Terminate one child we started, by its handle; kill it if it lingers."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=grace)


def forward_lines(
    stream: IO[bytes], prefix: str, sink: Callable[[str], None] | None = None, keep: list[str] | None = None
) -> threading.Thread:
    """Copy a child's output line by line with a prefix, so several processes share one terminal readably."""

    def pump() -> None:
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            if keep is not None:
                keep.append(line)
                del keep[:-50]
            (sink or _print)(f"{prefix} {line}" if prefix else line)
        stream.close()

    thread = threading.Thread(target=pump, name=f"output {prefix}", daemon=True)
    thread.start()
    return thread


def _print(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()
