"""One local stack per data folder: an flock'ed file holding the running stack's pid and URL.

The kernel drops the lock when its process dies, so the file left by a killed run is simply taken over.
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from typing import Any


class AlreadyRunning(RuntimeError):
    def __init__(self, info: dict[str, Any]) -> None:
        self.info = info
        where = f" on {info['url']}" if info.get("url") else ""
        super().__init__(f"the local stack already runs (pid {info.get('pid', '?')}){where}")


def read_lock(path: Path) -> dict[str, Any] | None:
    """The running stack's details, or None when no live process holds the lock."""
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read(path)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None  # stale: nobody holds it
    finally:
        os.close(fd)


def _read(path: Path) -> dict[str, Any]:
    try:
        info: dict[str, Any] = json.loads(path.read_text() or "{}")
    except ValueError:
        info = {}
    return info


class StackLock:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise AlreadyRunning(_read(self.path)) from None
        self.fd = fd
        self.write({"pid": os.getpid()})

    def write(self, info: dict[str, Any]) -> None:
        assert self.fd is not None
        data = json.dumps(info).encode()
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, data, 0)

    def release(self) -> None:
        if self.fd is None:
            return
        try:
            self.path.unlink(
                missing_ok=True
            )  # while still holding the lock, so no one takes over a dying file
            fcntl.flock(self.fd, fcntl.LOCK_UN)
        finally:
            os.close(self.fd)
            self.fd = None
