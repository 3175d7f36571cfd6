"""The one source of "now" for the domain.

In AWS it is the system clock. The local stack can move time forward for demos and tests
(a follow-up "in one day" without waiting a day) by writing an offset to the file named by
LEADFLOW_CLOCK_FILE; the same code path runs either way.
"""

import json
import os
from datetime import UTC, datetime, timedelta

_CLOCK_FILE = os.environ.get("LEADFLOW_CLOCK_FILE")
_cached = {"mtime": -1.0, "offset": 0.0}


def _offset_seconds() -> float:
    if not _CLOCK_FILE:
        return 0.0
    try:
        mtime = os.stat(_CLOCK_FILE).st_mtime
    except OSError:
        return 0.0
    if mtime != _cached["mtime"]:
        try:
            with open(_CLOCK_FILE, encoding="utf-8") as handle:
                offset = float(json.load(handle).get("offset_seconds", 0))
        except (OSError, ValueError, AttributeError):
            offset = 0.0
        _cached.update(mtime=mtime, offset=offset)
    return _cached["offset"]


def now() -> datetime:
    return datetime.now(UTC) + timedelta(seconds=_offset_seconds())


def isoformat(moment: datetime) -> str:
    """Fixed-width ISO-8601 UTC, so stored timestamps sort as strings."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
