"""EventBridge schedule expressions: rate(...), cron(...) (six fields, AWS flavour) and at(...)."""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

_RATE = re.compile(r"^rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)$")
_AT = re.compile(r"^at\(\s*(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\s*\)$")
_CRON = re.compile(r"^cron\((.*)\)$")
_MONTHS = {name: i for i, name in enumerate(calendar.month_abbr) if name}
_DAYS = {"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


class InvalidExpression(ValueError):
    pass


@dataclass(frozen=True)
class _Cron:
    minutes: frozenset[int]
    hours: frozenset[int]
    days_of_month: frozenset[int] | None  # None: "?" or "*"
    last_day_of_month: bool
    months: frozenset[int]
    days_of_week: frozenset[int] | None  # AWS numbering: 1 = Sunday
    nth_weekday: tuple[int, int] | None  # (weekday, n) for "MON#2"
    years: frozenset[int] | None

    def day_matches(self, day: datetime) -> bool:
        if day.month not in self.months or (self.years is not None and day.year not in self.years):
            return False
        aws_weekday = (day.isoweekday() % 7) + 1  # Sunday -> 1
        if self.nth_weekday is not None:
            weekday, nth = self.nth_weekday
            return aws_weekday == weekday and (day.day - 1) // 7 + 1 == nth
        if self.last_day_of_month:
            return day.day == calendar.monthrange(day.year, day.month)[1]
        if self.days_of_month is not None and day.day not in self.days_of_month:
            return False
        return self.days_of_week is None or aws_weekday in self.days_of_week


def _field(text: str, low: int, high: int, names: dict[str, int] | None = None) -> frozenset[int]:
    values: set[int] = set()
    for item in text.split(","):
        part, _, step_text = item.partition("/")
        step = int(step_text) if step_text else 1
        if part in ("*", "?"):
            start, end = low, high
        elif "-" in part:
            a, b = part.split("-", 1)
            start, end = _value(a, names), _value(b, names)
        else:
            start = _value(part, names)
            end = high if step != 1 else start
        if not (low <= start <= high and low <= end <= high):
            raise InvalidExpression(f"{part!r} is outside {low}-{high}")
        values.update(range(start, end + 1, step))
    return frozenset(values)


def _value(text: str, names: dict[str, int] | None) -> int:
    upper = text.upper()
    if names and upper in names:
        return names[upper]
    return int(text)


def _parse_cron(body: str) -> _Cron:
    fields = body.split()
    if len(fields) != 6:
        raise InvalidExpression("cron() needs six fields: minutes hours day-of-month month day-of-week year")
    minute, hour, dom, month, dow, year = fields
    if "?" not in (dom, dow):
        raise InvalidExpression("one of day-of-month or day-of-week must be '?'")
    nth = None
    if "#" in dow:
        weekday, n = dow.split("#", 1)
        nth = (_value(weekday, _DAYS), int(n))
    if "W" in dom.upper() and dom != "?":
        raise InvalidExpression("the W wildcard is not supported locally")
    return _Cron(
        minutes=_field(minute, 0, 59),
        hours=_field(hour, 0, 23),
        days_of_month=None if dom in ("?", "*", "L") else _field(dom, 1, 31),
        last_day_of_month=dom.upper() == "L",
        months=_field(month.upper(), 1, 12, _MONTHS | {k.upper(): v for k, v in _MONTHS.items()}),
        days_of_week=None if dow in ("?", "*") or nth else _field(dow.upper(), 1, 7, _DAYS),
        nth_weekday=nth,
        years=None if year in ("*", "?") else _field(year, 1970, 2199),
    )


def next_fire(expression: str, after: datetime, timezone: str = "UTC") -> datetime | None:
    """The first time strictly after `after` (aware) at which the expression fires; None if never again.
    rate() counts from `after` (EventBridge counts from the rule's creation)."""
    expression = expression.strip()
    zone = ZoneInfo(timezone) if timezone and timezone != "UTC" else UTC
    if match := _RATE.match(expression):
        amount, unit = int(match[1]), match[2].rstrip("s")
        if amount <= 0:
            raise InvalidExpression("rate() needs a positive amount")
        return after + timedelta(seconds=amount * _UNIT_SECONDS[unit])
    if match := _AT.match(expression):
        at = datetime.fromisoformat(match[1]).replace(tzinfo=zone).astimezone(UTC)
        return at if at > after else None
    if match := _CRON.match(expression):
        cron = _parse_cron(match[1])
        local = after.astimezone(zone).replace(second=0, microsecond=0) + timedelta(minutes=1)
        day = local.replace(hour=0, minute=0)
        for _ in range(366 * 8):
            if cron.day_matches(day):
                for hour in sorted(cron.hours):
                    for minute in sorted(cron.minutes):
                        candidate = day.replace(hour=hour, minute=minute)
                        if candidate >= local:
                            return candidate.astimezone(UTC)
            day = (day + timedelta(days=1)).replace(hour=0, minute=0)
        return None
    raise InvalidExpression(f"not a schedule expression: {expression!r}")


def one_time_due(expression: str, timezone: str = "UTC") -> datetime | None:
    """The instant an at(...) expression names, or None for recurring expressions."""
    match = _AT.match(expression.strip())
    if not match:
        return None
    zone = ZoneInfo(timezone) if timezone and timezone != "UTC" else UTC
    return datetime.fromisoformat(match[1]).replace(tzinfo=zone).astimezone(UTC)
