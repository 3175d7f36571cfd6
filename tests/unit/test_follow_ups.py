"""Follow-up rules, working time, and the follow-up scheduler's checkpoint, as plain Python."""

from datetime import UTC, datetime, timedelta

import pytest
from crm.follow_ups.rules import SpeedToLeadSla, follow_up_tasks
from crm.leads.model import LeadStatus, awaits_first_contact, sla_stop_reason
from crm.leads.tasks import TaskKind, TaskPriority, task_closing_reason
from crm.platform.scheduler import DueWork, FollowUpScheduler
from crm.platform.settings import Settings
from crm.platform.working_hours import WorkingHours, parse_working_hours
from pydantic import ValidationError

from tests.assignment_support import lead_model

OFFICE = WorkingHours(days=["mon", "tue", "wed", "thu", "fri"], start="09:00", end="17:00", time_zone="UTC")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


# ---------------------------------------------------------------- working time


@pytest.mark.parametrize(
    ("captured", "deadline"),
    [
        ("2026-11-25T10:00:00Z", "2026-11-25T11:00:00Z"),  # Wednesday, inside hours
        ("2026-11-25T07:30:00Z", "2026-11-25T10:00:00Z"),  # before opening: the hour starts at 09:00
        ("2026-11-25T16:30:00Z", "2026-11-26T09:30:00Z"),  # half before closing, half the next morning
        ("2026-11-27T16:59:00Z", "2026-11-30T09:59:00Z"),  # Friday evening: Monday morning
        ("2026-11-28T12:00:00Z", "2026-11-30T10:00:00Z"),  # Saturday: Monday 10:00
    ],
)
def test_the_sla_counts_only_working_time(captured: str, deadline: str) -> None:
    sla = SpeedToLeadSla(allowance=timedelta(hours=1), hours=OFFICE)
    assert sla.deadline(at(captured)) == at(deadline)


def test_working_time_follows_the_wall_clock_across_a_dst_change() -> None:
    paris = WorkingHours(
        days=["mon", "tue", "wed", "thu", "fri"], start="09:00", end="17:00", time_zone="Europe/Paris"
    )
    # Friday 2026-10-23 16:30 Paris (CEST, UTC+2); clocks go back on Sunday; Monday 09:00 Paris is UTC+1.
    deadline = paris.add_working_time(at("2026-10-23T14:30:00Z"), timedelta(hours=1))
    assert deadline == at("2026-10-26T08:30:00Z")


def test_a_night_shift_belongs_to_the_day_it_starts_and_a_whole_day_adds_up() -> None:
    night = WorkingHours(days=["fri"], start="22:00", end="02:00", time_zone="UTC")
    assert night.add_working_time(at("2026-11-28T01:00:00Z"), timedelta(hours=2)) == at(
        "2026-12-04T23:00:00Z"
    )
    always = WorkingHours(
        days=["mon", "tue", "wed", "thu", "fri", "sat", "sun"], start="00:00", end="00:00", time_zone="UTC"
    )
    assert always.add_working_time(at("2026-11-25T07:30:00Z"), timedelta(hours=30)) == at(
        "2026-11-26T13:30:00Z"
    )


def test_without_working_hours_the_sla_runs_around_the_clock_and_zero_turns_it_off() -> None:
    assert SpeedToLeadSla(timedelta(hours=1)).deadline(at("2026-11-28T12:00:00Z")) == at(
        "2026-11-28T13:00:00Z"
    )
    assert not SpeedToLeadSla(timedelta(0)).enabled


@pytest.mark.parametrize(
    ("text", "days", "zone"),
    [
        ("mon-fri 09:00-17:00 UTC", ["mon", "tue", "wed", "thu", "fri"], "UTC"),
        ("Mon,Wed,Fri 8:30-12:00 Europe/London", ["mon", "wed", "fri"], "Europe/London"),
        ("fri-mon 22:00-06:00 America/New_York", ["mon", "fri", "sat", "sun"], "America/New_York"),
    ],
)
def test_working_hours_are_read_from_one_line(text: str, days: list[str], zone: str) -> None:
    hours = parse_working_hours(text)
    assert hours is not None and [d.value for d in hours.days] == days and hours.time_zone == zone
    assert parse_working_hours("  ") is None


@pytest.mark.parametrize(
    "text", ["weekdays 9-5", "mon-fri 09:00-17:00", "mon-fry 09:00-17:00 UTC", "mon 09:00-17:00 Mars/Base"]
)
def test_unreadable_working_hours_stop_the_cold_start_naming_the_setting(text: str) -> None:
    with pytest.raises(ValidationError) as raised:
        Settings(table_name="t", sla_working_hours=text)
    assert raised.value.errors()[0]["loc"] == ("sla_working_hours",)


# ---------------------------------------------------------------- follow-ups


def test_an_assignment_plans_a_one_day_and_a_one_week_follow_up_for_the_rep() -> None:
    lead = lead_model()
    assigned_at = at("2026-11-25T10:00:00Z")
    day, week = follow_up_tasks(lead, "rep-1", assigned_at)
    assert (day.due_at, week.due_at) == (assigned_at + timedelta(days=1), assigned_at + timedelta(days=7))
    assert {day.owner, week.owner} == {"rep-1"} and {day.kind, week.kind} == {TaskKind.FOLLOW_UP.value}
    assert (day.priority, week.priority) == (TaskPriority.HIGH, TaskPriority.NORMAL)
    # Planned again (a redelivered stream record): the same ids, so the conditional create keeps one each.
    assert [t.id for t in follow_up_tasks(lead, "rep-1", assigned_at)] == [day.id, week.id]
    # A later assignment is a different pair.
    assert {t.id for t in follow_up_tasks(lead, "rep-2", assigned_at + timedelta(hours=1))}.isdisjoint(
        {day.id, week.id}
    )


def test_rule_made_tasks_close_when_their_purpose_has_passed_tasks_people_made_stay() -> None:
    lead = lead_model()
    follow_up, _ = follow_up_tasks(lead, "rep-1", at("2026-11-25T10:00:00Z"))
    discovery = follow_up.model_copy(update={"kind": TaskKind.DISCOVERY_CALL.value})
    manual = follow_up.model_copy(update={"kind": TaskKind.TASK.value})
    contacted = lead.model_copy(update={"lead_status": LeadStatus.CONTACTED})
    converted = contacted.model_copy(update={"lead_status": LeadStatus.CONVERTED, "converted": True})

    assert task_closing_reason(follow_up, lead) is None
    assert task_closing_reason(follow_up, contacted) == "lead contacted"
    assert task_closing_reason(follow_up, converted) == "lead converted"
    assert task_closing_reason(discovery, contacted) is None
    assert task_closing_reason(discovery, converted) == "lead converted"
    assert task_closing_reason(manual, converted) is None  # a person made it: a person closes it
    assert task_closing_reason(follow_up, None) == "lead deleted"


def test_the_sla_clock_stops_at_contact_conversion_or_nurture() -> None:
    lead = lead_model()
    assert awaits_first_contact(lead) and sla_stop_reason(lead) is None
    assert sla_stop_reason(lead.model_copy(update={"lead_status": LeadStatus.UNQUALIFIED})) == "contacted"
    assert sla_stop_reason(lead.model_copy(update={"converted": True})) == "converted"
    assert sla_stop_reason(lead.model_copy(update={"nurture": True})) == "nurture"
    # A nurture lead whose score later reached the threshold and got a rep is for sales again.
    sales_again = lead.model_copy(update={"nurture": True, "assigned_to": "rep-1"})
    assert sla_stop_reason(sales_again) is None and awaits_first_contact(sales_again)


# ---------------------------------------------------------------- the scheduler


class MemoryCheckpoints:
    def __init__(self) -> None:
        self.values: dict[str, datetime] = {}

    def get(self, source: str) -> datetime | None:
        return self.values.get(source)

    def put(self, source: str, until: datetime) -> None:
        self.values[source] = max(until, self.values.get(source, until))


class ListSource:
    """Due work kept in a list; fired work leaves it (as firing removes the due keys)."""

    name = "list"

    def __init__(self, due_times: list[datetime]) -> None:
        self.pending = sorted(due_times)
        self.fired: list[datetime] = []
        self.failing: set[datetime] = set()
        self.queries: list[tuple[datetime, datetime]] = []

    def due(self, since: datetime, until: datetime, limit: int) -> list[DueWork]:
        self.queries.append((since, until))
        return [DueWork(d, str(d), lambda d=d: self.fire(d)) for d in self.pending if since <= d <= until][
            :limit
        ]

    def fire(self, due_at: datetime) -> bool:
        if due_at in self.failing:
            raise RuntimeError("SQS is down")
        self.pending.remove(due_at)
        self.fired.append(due_at)
        return True


class Clock:
    def __init__(self, now: datetime) -> None:
        self.value = now

    def __call__(self) -> datetime:
        return self.value


START = at("2026-11-25T10:00:00Z")


def scheduler(
    source: ListSource, checkpoints: MemoryCheckpoints, clock: Clock, **options: object
) -> FollowUpScheduler:
    return FollowUpScheduler(checkpoints, [source], now=clock, **options)  # type: ignore[arg-type]


def test_work_missed_while_the_system_was_down_is_fired_late_not_never() -> None:
    clock, checkpoints = Clock(START), MemoryCheckpoints()
    source = ListSource([START + timedelta(minutes=m) for m in (5, 30, 60 * 24 * 2)])
    scheduler(source, checkpoints, clock).run()
    assert source.fired == [] and checkpoints.values["list"] == START
    clock.value = START + timedelta(days=3)  # nothing ran for three days
    report = scheduler(source, checkpoints, clock).run()
    assert report.fired == 3 and source.pending == []
    assert source.queries[-1][0] == START - timedelta(minutes=10)  # from the checkpoint, with the overlap


def test_a_failure_holds_the_checkpoint_so_the_next_run_retries_it_and_later_work_still_fires() -> None:
    clock, checkpoints = Clock(START), MemoryCheckpoints()
    first, second = START - timedelta(minutes=3), START - timedelta(minutes=2)
    source = ListSource([first, second])
    checkpoints.values["list"] = START - timedelta(minutes=5)
    source.failing = {first}
    report = scheduler(source, checkpoints, clock).run()
    assert (report.fired, report.failed) == (1, 1) and source.fired == [second]
    assert checkpoints.values["list"] == first  # held at the failure, not moved past it
    source.failing = set()
    clock.value = START + timedelta(hours=2)
    assert scheduler(source, checkpoints, clock).run().fired == 1 and source.pending == []
    assert checkpoints.values["list"] == clock.value


def test_more_due_work_than_one_run_takes_continues_from_where_the_run_stopped() -> None:
    clock, checkpoints = Clock(START), MemoryCheckpoints()
    checkpoints.values["list"] = START - timedelta(hours=1)
    source = ListSource([START - timedelta(minutes=50 - m) for m in range(7)])
    report = scheduler(source, checkpoints, clock, batch_limit=3).run()
    assert report.fired == 3 and checkpoints.values["list"] == source.fired[-1]
    scheduler(source, checkpoints, clock, batch_limit=3).run()
    scheduler(source, checkpoints, clock, batch_limit=3).run()
    assert source.pending == [] and checkpoints.values["list"] == START


def test_the_first_run_looks_back_a_week() -> None:
    clock, checkpoints = Clock(START), MemoryCheckpoints()
    source = ListSource([START - timedelta(days=6), START - timedelta(days=8)])
    scheduler(source, checkpoints, clock).run()
    assert source.fired == [START - timedelta(days=6)]
