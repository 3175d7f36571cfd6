"""Analytics rules: counter deltas, first contact, histogram percentiles, date ranges. No AWS."""

import itertools
import random
import statistics
from collections import Counter
from datetime import UTC, date, datetime, timedelta

import pytest
from crm.analytics.counters import (
    Dimension,
    FunnelFigures,
    Histogram,
    Period,
    bucket_of,
    compare,
    contributions,
    counter_delta,
    first_contact,
    recount,
    split_range,
)
from crm.leads.model import LeadStatus

from tests.lead_data import lead, varied_leads

DAY = datetime(2031, 3, 1, 9, tzinfo=UTC)


def test_a_new_lead_counts_once_in_each_dimension_of_its_capture_day() -> None:
    subject = lead(DAY, source="ACME", team="sales")
    delta = counter_delta(None, subject)
    assert set(delta) == {
        (DAY.date(), Dimension.ALL, "all"),
        (DAY.date(), Dimension.SOURCE, "acme"),
        (DAY.date(), Dimension.OWNER, "unassigned"),
        (DAY.date(), Dimension.TEAM, "sales"),
    }
    assert all(fields == {"leads": 1, "s_new": 1} for fields in delta.values())


def test_a_status_change_moves_one_count_and_an_assignment_moves_the_owner() -> None:
    before = lead(DAY, team="sales")
    contacted = before.model_copy(update={"lead_status": LeadStatus.CONTACTED})
    assert counter_delta(before, contacted)[(DAY.date(), Dimension.ALL, "all")] == {
        "s_new": -1,
        "s_contacted": 1,
    }
    assigned = contacted.model_copy(update={"assigned_to": "rep-1"})
    delta = counter_delta(contacted, assigned)
    assert set(delta) == {(DAY.date(), Dimension.OWNER, "unassigned"), (DAY.date(), Dimension.OWNER, "rep-1")}
    assert delta[(DAY.date(), Dimension.OWNER, "rep-1")] == {"leads": 1, "s_contacted": 1}
    assert counter_delta(assigned, assigned) == {}


def test_the_sum_of_deltas_over_a_lead_history_is_its_current_contribution() -> None:
    history = [None, lead(DAY, team="sales")]
    assert history[1] is not None
    history.append(
        history[1].model_copy(update={"lead_status": LeadStatus.CONTACTED, "assigned_to": "rep-1"})
    )
    history.append(history[2].model_copy(update={"lead_status": LeadStatus.QUALIFIED, "qualified": True}))
    history.append(history[3].model_copy(update={"lead_status": LeadStatus.CONVERTED, "converted": True}))
    total: dict[tuple[object, ...], Counter[str]] = {}
    for old, new in itertools.pairwise(history):
        for key, fields in counter_delta(old, new).items():
            total.setdefault(key, Counter()).update(fields)
    current = contributions(history[-1])
    assert {key: +counts for key, counts in total.items() if +counts} == {
        key: +counts for key, counts in current.items()
    }


def test_first_contact_is_the_status_leaving_new_and_a_chat_is_contacted_at_once() -> None:
    fresh = lead(DAY, assigned_to="rep-1")
    later = fresh.model_copy(
        update={"lead_status": LeadStatus.CONTACTED, "updated_at": DAY + timedelta(minutes=42)}
    )
    contact = first_contact(fresh, later)
    assert contact is not None
    assert (contact.rep, contact.seconds, contact.day) == ("rep-1", 42 * 60, DAY.date())
    assert first_contact(later, later.model_copy(update={"lead_status": LeadStatus.QUALIFIED})) is None
    assert first_contact(None, fresh) is None
    chat = lead(DAY, status=LeadStatus.CONTACTED)
    assert first_contact(None, chat) == type(contact)(DAY.date(), "unassigned", 0.0)


def test_percentiles_from_the_histogram_are_within_five_percent_of_the_exact_figures() -> None:
    rng = random.Random(3)
    durations = [rng.lognormvariate(7, 1.5) for _ in range(5000)]
    histogram = Histogram()
    for seconds in durations:
        histogram.buckets[bucket_of(seconds)] += 1
    exact_median = statistics.median(durations)
    exact_p90 = sorted(durations)[int(0.9 * len(durations)) - 1]
    assert histogram.percentile(0.5) == pytest.approx(exact_median, rel=0.05)
    assert histogram.percentile(0.9) == pytest.approx(exact_p90, rel=0.05)
    assert Histogram().percentile(0.5) is None
    assert bucket_of(0) == bucket_of(0.9) == 0


def test_a_range_is_read_as_whole_months_and_the_days_around_them() -> None:
    assert split_range(date(2031, 1, 20), date(2031, 4, 3)) == [
        Period("2031-01", 20, 31),
        Period("2031-02"),
        Period("2031-03"),
        Period("2031-04", 1, 3),
    ]
    assert split_range(date(2031, 2, 1), date(2031, 2, 28)) == [Period("2031-02")]
    assert split_range(date(2031, 2, 1), date(2031, 2, 28), whole_months=False) == [Period("2031-02", 1, 28)]


def test_rates_and_the_recount_of_a_day() -> None:
    leads = varied_leads(60, DAY, days=1)
    counts = recount(leads)
    total = counts[("all", "all")]
    assert total["leads"] == 60
    figures = FunnelFigures("all", total)
    assert figures.rate("converted") == round(total["converted"] / 60, 4)
    assert sum(figures.by_status.values()) == 60
    assert compare(counts, counts) == []
    changed = {key: Counter(value) for key, value in counts.items()}
    changed[("all", "all")]["s_new"] += 2
    drift = compare(counts, changed)
    assert [(d.dimension, d.field, d.expected, d.stored) for d in drift] == [
        ("all", "s_new", total["s_new"], total["s_new"] + 2)
    ]
