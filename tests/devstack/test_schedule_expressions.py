"""rate(), cron() and at() as EventBridge reads them."""

from datetime import UTC, datetime

import pytest

from devstack.clock import Clock, parse_duration
from devstack.schedule_expressions import InvalidExpression, next_fire, one_time_due

T0 = datetime(2025, 3, 3, 8, 30, tzinfo=UTC)  # a Monday


def test_rate_counts_from_the_given_time():
    assert next_fire("rate(5 minutes)", T0) == datetime(2025, 3, 3, 8, 35, tzinfo=UTC)
    assert next_fire("rate(1 day)", T0) == datetime(2025, 3, 4, 8, 30, tzinfo=UTC)


def test_cron_daily_weekly_monthly():
    assert next_fire("cron(0 9 * * ? *)", T0) == datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
    assert next_fire("cron(0 8 * * ? *)", T0) == datetime(2025, 3, 4, 8, 0, tzinfo=UTC)
    assert next_fire("cron(0 9 ? * MON *)", datetime(2025, 3, 3, 9, 0, tzinfo=UTC)) == datetime(
        2025, 3, 10, 9, 0, tzinfo=UTC
    )
    assert next_fire("cron(15 10 ? * FRI *)", T0) == datetime(2025, 3, 7, 10, 15, tzinfo=UTC)
    assert next_fire("cron(0 0 L * ? *)", T0) == datetime(2025, 3, 31, 0, 0, tzinfo=UTC)
    assert next_fire("cron(0/15 * * * ? *)", T0) == datetime(2025, 3, 3, 8, 45, tzinfo=UTC)
    assert next_fire("cron(0 12 ? * MON#2 *)", T0) == datetime(2025, 3, 10, 12, 0, tzinfo=UTC)


def test_cron_honours_the_timezone():
    assert next_fire("cron(0 9 * * ? *)", T0, "Europe/Paris") == datetime(2025, 3, 4, 8, 0, tzinfo=UTC)


def test_at_fires_once():
    assert one_time_due("at(2025-03-03T09:00:00)") == datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
    assert next_fire("at(2025-03-03T09:00:00)", T0) == datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
    assert next_fire("at(2025-03-03T08:00:00)", T0) is None
    assert one_time_due("rate(1 hour)") is None


def test_bad_expressions_are_refused():
    for bad in ("every day", "cron(0 9 * * *)", "cron(0 9 1 * MON *)", "rate(0 minutes)"):
        with pytest.raises(InvalidExpression):
            next_fire(bad, T0)


def test_durations_and_the_clock_file(tmp_path):
    assert parse_duration("1d") == 86400 and parse_duration("1d12h") == 129600 and parse_duration("90") == 90
    with pytest.raises(ValueError):
        parse_duration("soon")
    clock = Clock(tmp_path / "clock.json")
    assert clock.offset() == 0
    clock.advance(parse_duration("2h"))
    assert (tmp_path / "clock.json").read_text() == '{"offset_seconds": 7200}'
    assert abs(clock.time() - datetime.now(UTC).timestamp() - 7200) < 5
