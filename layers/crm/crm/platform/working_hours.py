"""Working hours: on which weekdays, from when to when, in which time zone (plain Python, no AWS).

A rep's hours decide when they take leads; the speed-to-lead SLA counts only working time.
"""

import re
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)


class Weekday(StrEnum):
    MON = "mon"
    TUE = "tue"
    WED = "wed"
    THU = "thu"
    FRI = "fri"
    SAT = "sat"
    SUN = "sun"


_WEEKDAYS = list(Weekday)


class WorkingHours(BaseModel):
    """When a rep takes leads: on `days`, from `start` to `end`, in `time_zone` (IANA, e.g. Europe/Paris)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    days: list[Weekday] = Field(min_length=1, max_length=7)
    start: time
    end: time
    time_zone: str = Field(min_length=1, max_length=64)

    @field_validator("days")
    @classmethod
    def distinct_days(cls, days: list[Weekday]) -> list[Weekday]:
        return sorted(set(days), key=_WEEKDAYS.index)

    @field_validator("start", "end")
    @classmethod
    def whole_minutes(cls, value: time) -> time:
        if value.tzinfo is not None:
            raise ValueError("give a local time such as 09:00; the time zone goes in time_zone")
        return value.replace(second=0, microsecond=0)

    @field_validator("time_zone")
    @classmethod
    def known_zone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("not an IANA time zone (e.g. Europe/Paris, America/New_York, UTC)") from None
        return name

    def contains(self, moment: datetime) -> bool:
        local = moment.astimezone(ZoneInfo(self.time_zone))
        clock_time = local.time().replace(tzinfo=None)
        today = _WEEKDAYS[local.weekday()]
        if self.start == self.end:
            return today in self.days
        if self.start < self.end:
            return today in self.days and self.start <= clock_time < self.end
        # The shift crosses midnight: the evening part is today's shift, the early hours yesterday's.
        if clock_time >= self.start:
            return today in self.days
        yesterday = _WEEKDAYS[(local - timedelta(days=1)).weekday()]
        return clock_time < self.end and yesterday in self.days

    def shifts_from(self, moment: datetime) -> Iterator[tuple[datetime, datetime]]:
        """The working periods (UTC start, UTC end) that end after `moment`, in order, forever."""
        zone = ZoneInfo(self.time_zone)
        day = moment.astimezone(zone).date() - timedelta(days=1)  # yesterday's shift may run past midnight
        while True:
            if _WEEKDAYS[day.weekday()] in self.days:
                start = datetime.combine(day, self.start, tzinfo=zone)
                end_day = day if self.start < self.end else day + timedelta(days=1)
                end = datetime.combine(end_day, self.end, tzinfo=zone)
                start_utc, end_utc = start.astimezone(UTC), end.astimezone(UTC)
                if end_utc > moment:
                    yield max(start_utc, moment.astimezone(UTC)), end_utc
            day += timedelta(days=1)

    def add_working_time(self, moment: datetime, duration: timedelta) -> datetime:
        """The moment at which `duration` of working time has passed since `moment` (DST-aware: the shifts
        are wall-clock times in `time_zone`). Adjacent shifts (a whole-day schedule) simply add up."""
        remaining = duration
        for start, end in self.shifts_from(moment):
            if remaining <= end - start:
                return start + remaining
            remaining -= end - start
        raise AssertionError("shifts_from never ends")  # pragma: no cover


_HOURS = re.compile(
    r"^\s*(?P<days>[A-Za-z,\-]+)\s+(?P<start>\d{1,2}:\d{2})\s*-\s*(?P<end>\d{1,2}:\d{2})\s+(?P<zone>\S+)\s*$"
)


def parse_working_hours(text: str) -> WorkingHours | None:
    """`mon-fri 09:00-17:00 Europe/London` (days as a range or a list: `mon,wed,fri`), or empty for
    around the clock. ValueError, saying what is expected, for anything else."""
    if not text.strip():
        return None
    match = _HOURS.match(text)
    if not match:
        raise ValueError("expected e.g. `mon-fri 09:00-17:00 Europe/London`, or empty for around the clock")
    days: list[Weekday] = []
    for part in match["days"].lower().split(","):
        first, _, last = part.partition("-")
        try:
            start, end = _WEEKDAYS.index(Weekday(first)), _WEEKDAYS.index(Weekday(last or first))
        except ValueError:
            raise ValueError(f"unknown day in `{part}`: use mon, tue, wed, thu, fri, sat, sun") from None
        days += [_WEEKDAYS[(start + offset) % 7] for offset in range((end - start) % 7 + 1)]
    try:
        return WorkingHours(
            days=days,
            start=time.fromisoformat(match["start"].zfill(5)),
            end=time.fromisoformat(match["end"].zfill(5)),
            time_zone="UTC" if match["zone"].upper() == "UTC" else match["zone"],
        )
    except ValidationError as exc:
        raise ValueError("; ".join(str(error["msg"]) for error in exc.errors())) from None
