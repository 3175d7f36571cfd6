"""Choosing a rep: availability, fewest open leads, round-robin ties, the after-hours policy. No AWS."""

from datetime import UTC, datetime, time, timedelta

import pytest
from crm.assignment.choice import Method, choose_rep, describe_choice
from crm.platform.auth import Role
from crm.platform.working_hours import Weekday, WorkingHours
from crm.users.model import OutOfOffice, Unavailable, User
from pydantic import ValidationError

# Wednesday 25 November 2026, 10:00 UTC (11:00 in Paris, 05:00 in New York).
NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
OFFICE_PARIS = WorkingHours(
    days=[Weekday.MON, Weekday.TUE, Weekday.WED, Weekday.THU, Weekday.FRI],
    start=time(9),
    end=time(17, 30),
    time_zone="Europe/Paris",
)
OFFICE_NEW_YORK = OFFICE_PARIS.model_copy(update={"time_zone": "America/New_York"})


def rep(sub: str, **fields: object) -> User:
    return User(
        sub=sub,
        name=sub.title(),
        email=f"{sub}@demo.leadflow.local",
        role=fields.pop("role", Role.REP),  # type: ignore[arg-type]
        teams=["sales"],
        created_at=NOW,
        updated_at=NOW,
        **fields,  # type: ignore[arg-type]
    )


def test_the_rep_with_fewest_open_leads_gets_the_lead() -> None:
    team = [rep("a"), rep("b"), rep("c")]

    choice = choose_rep(team, {"a": 3, "b": 1, "c": 2}, NOW, ticket=0, after_hours_policy="assign")

    assert choice.chosen is not None and choice.chosen.sub == "b"
    assert choice.method is Method.BALANCED
    assert [(c.sub, c.open_leads) for c in choice.candidates] == [("a", 3), ("b", 1), ("c", 2)]


def test_ties_go_round_robin_as_the_ticket_advances() -> None:
    team = [rep("a"), rep("b"), rep("c")]
    loads = {"a": 0, "b": 0, "c": 0}
    picked = []

    for ticket in range(1, 10):
        choice = choose_rep(team, loads, NOW, ticket, "assign")
        assert choice.chosen is not None
        picked.append(choice.chosen.sub)
        loads[choice.chosen.sub] += 1

    assert picked == ["b", "c", "a", "b", "c", "a", "b", "c", "a"]
    assert loads == {"a": 3, "b": 3, "c": 3}


def test_a_rep_at_capacity_out_of_office_or_inactive_is_skipped_and_managers_are_not_candidates() -> None:
    absent = OutOfOffice(start=NOW - timedelta(days=1), end=NOW + timedelta(days=1))
    team = [
        rep("full", capacity=2),
        rep("away", out_of_office=absent),
        rep("gone", active=False),
        rep("boss", role=Role.MANAGER),
        rep("free", capacity=10),
    ]
    loads = {"full": 2, "away": 0, "gone": 0, "boss": 0, "free": 7}

    choice = choose_rep(team, loads, NOW, ticket=0, after_hours_policy="assign")

    assert choice.chosen is not None and choice.chosen.sub == "free"
    reasons = {c.sub: c.unavailable for c in choice.candidates}
    assert reasons == {
        "full": Unavailable.AT_CAPACITY,
        "away": Unavailable.OUT_OF_OFFICE,
        "gone": Unavailable.INACTIVE,
        "free": None,
    }


def test_nobody_available_means_no_choice() -> None:
    team = [rep("a", capacity=1), rep("b", active=False)]

    choice = choose_rep(team, {"a": 1}, NOW, ticket=0, after_hours_policy="assign")

    assert choice.chosen is None


def test_working_hours_are_read_in_each_reps_time_zone() -> None:
    team = [rep("paris", working_hours=OFFICE_PARIS), rep("newyork", working_hours=OFFICE_NEW_YORK)]

    choice = choose_rep(team, {"paris": 5, "newyork": 0}, NOW, ticket=0, after_hours_policy="wait")

    # New York is asleep at 05:00 even though it has fewer leads.
    assert choice.chosen is not None and choice.chosen.sub == "paris"


def test_after_hours_the_policy_decides_between_assigning_anyway_and_waiting() -> None:
    night = datetime(2026, 11, 25, 23, 0, tzinfo=UTC)
    team = [rep("paris", working_hours=OFFICE_PARIS), rep("away", capacity=0)]

    assign = choose_rep(team, {}, night, ticket=0, after_hours_policy="assign")
    wait = choose_rep(team, {}, night, ticket=0, after_hours_policy="wait")

    assert assign.chosen is not None and assign.chosen.sub == "paris"
    assert assign.method is Method.AFTER_HOURS
    assert wait.chosen is None


@pytest.mark.parametrize(
    ("local", "expected"),
    [
        ("2026-11-25T21:59:00", True),  # Wednesday evening shift
        ("2026-11-26T05:59:00", True),  # its early hours, on Thursday
        ("2026-11-26T06:00:00", False),
        ("2026-11-28T23:00:00", False),  # Saturday evening: no shift starts on Saturday
        ("2026-11-29T03:00:00", False),  # Sunday early hours belong to Saturday's (absent) shift
        ("2026-11-25T12:00:00", False),
    ],
)
def test_a_night_shift_crosses_midnight_and_belongs_to_the_day_it_starts(local: str, expected: bool) -> None:
    night_shift = WorkingHours(
        days=[Weekday.MON, Weekday.TUE, Weekday.WED, Weekday.THU, Weekday.FRI],
        start=time(21),
        end=time(6),
        time_zone="UTC",
    )

    assert night_shift.contains(datetime.fromisoformat(local).replace(tzinfo=UTC)) is expected


def test_start_equal_to_end_is_the_whole_day() -> None:
    always = WorkingHours(days=[Weekday.WED], start=time(0), end=time(0), time_zone="Asia/Tokyo")

    assert always.contains(datetime(2026, 11, 25, 3, 0, tzinfo=UTC))  # 12:00 Wednesday in Tokyo
    assert not always.contains(datetime(2026, 11, 25, 16, 0, tzinfo=UTC))  # 01:00 Thursday in Tokyo


def test_bad_working_hours_and_absences_are_refused_naming_the_field() -> None:
    with pytest.raises(ValidationError) as zone:
        WorkingHours(days=[Weekday.MON], start=time(9), end=time(17), time_zone="Mars/Olympus_Mons")
    with pytest.raises(ValidationError) as days:
        WorkingHours(days=[], start=time(9), end=time(17), time_zone="UTC")
    with pytest.raises(ValidationError) as absence:
        OutOfOffice(start=NOW, end=NOW - timedelta(hours=1))

    assert zone.value.errors()[0]["loc"] == ("time_zone",)
    assert days.value.errors()[0]["loc"] == ("days",)
    assert absence.value.errors()[0]["loc"] == ("end",)


def test_the_description_names_every_candidates_load() -> None:
    team = [rep("a", capacity=4), rep("b")]

    choice = choose_rep(team, {"a": 4, "b": 2}, NOW, ticket=0, after_hours_policy="assign")

    assert describe_choice(choice, "sales") == (
        "Assigned to B in team sales (fewest open leads; open leads: A 4/4 (at capacity), B 2)"
    )
