"""The local stack's clock: real time plus an offset kept in <data dir>/clock.json.

The domain layer reads the same file (env LEADFLOW_CLOCK_FILE), so moving the clock moves what the functions
see as "now" and makes the schedulers fire what has become due.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PART = re.compile(r"(-?\d+(?:\.\d+)?)([smhdw]?)")


def parse_duration(text: str) -> float:
    """'90', '90s', '15m', '2h', '1d', '1w' or a sum like '1d12h' -> seconds."""
    compact = text.strip().lower().replace(" ", "")
    parts = _PART.findall(compact)
    if not compact or "".join(number + unit for number, unit in parts) != compact:
        raise ValueError(f"not a duration: {text!r} (use e.g. 90s, 15m, 2h, 1d, 1w)")
    return sum(float(number) * _UNITS[unit or "s"] for number, unit in parts)


class Clock:
    def __init__(self, path: Path) -> None:
        self.path = path

    def offset(self) -> float:
        try:
            return float(json.loads(self.path.read_text()).get("offset_seconds", 0))
        except (FileNotFoundError, ValueError):
            return 0.0

    def set_offset(self, seconds: float) -> float:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        value: float | int = int(seconds) if float(seconds).is_integer() else seconds
        # Written to a temporary file then renamed, so a reader never sees half a file.
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".clock-")
        with os.fdopen(fd, "w") as handle:
            json.dump({"offset_seconds": value}, handle)
        Path(tmp).replace(self.path)
        return float(value)

    def advance(self, seconds: float) -> float:
        return self.set_offset(self.offset() + seconds)

    def time(self) -> float:
        """Epoch seconds, shifted."""
        return time.time() + self.offset()

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.time(), tz=UTC)
