"""The nightly reconciliation's catch-up from its checkpoint, and the speed-to-lead credit of a lead contacted
before anyone held it: plain Python, with an in-memory store. No AWS."""

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any

from crm.analytics.counters import ContactCredit, contact_credit
from crm.analytics.service import MAX_CATCH_UP_DAYS, AnalyticsService
from crm.leads.model import LeadStatus

from tests.lead_data import lead

NOW = datetime(2031, 3, 10, 1, 20, tzinfo=UTC)


class FakeStore:
    def __init__(self, checkpoint: date | None) -> None:
        self.checkpoint = checkpoint
        self.checked: list[date] = []

    def leads_created_on(self, day: date) -> list[Any]:
        return []

    def stored_day(self, day: date) -> dict[Any, Counter[str]]:
        return {}

    def store_reconciliation(self, day: date, checked_at: str, leads: int, drift: list[Any]) -> None:
        self.checked.append(day)

    def reconciled_through(self) -> date | None:
        return self.checkpoint

    def mark_reconciled(self, day: date) -> None:
        assert self.checkpoint is None or day > self.checkpoint
        self.checkpoint = day


def catch_up(checkpoint: date | None) -> FakeStore:
    store = FakeStore(checkpoint)
    AnalyticsService(store, now=lambda: NOW).reconcile_missed()  # type: ignore[arg-type]
    return store


def test_every_day_since_the_checkpoint_is_reconciled_oldest_first() -> None:
    store = catch_up(date(2031, 3, 5))
    assert store.checked == [date(2031, 3, d) for d in (6, 7, 8, 9)]
    assert store.checkpoint == date(2031, 3, 9)


def test_the_first_run_reconciles_yesterday_and_a_caught_up_run_nothing() -> None:
    assert catch_up(None).checked == [date(2031, 3, 9)]
    assert catch_up(date(2031, 3, 9)).checked == []


def test_the_catch_up_is_bounded_to_the_latest_days() -> None:
    store = catch_up(date(2030, 1, 1))
    assert len(store.checked) == MAX_CATCH_UP_DAYS
    assert store.checked[-1] == date(2031, 3, 9)
    assert store.checked[0] == date(2031, 3, 9) - timedelta(days=MAX_CATCH_UP_DAYS - 1)


def test_a_lead_contacted_unassigned_is_credited_to_its_first_rep_only() -> None:
    chat = lead(NOW, status=LeadStatus.CONTACTED)
    assigned = chat.model_copy(update={"assigned_to": "rep-1"})
    assert contact_credit(chat, assigned) == ContactCredit(day=NOW.date(), rep="rep-1")
    assert contact_credit(assigned, assigned.model_copy(update={"assigned_to": "rep-2"})) is None
    fresh = lead(NOW)  # still new: a contact later is counted under whoever holds it then
    assert contact_credit(fresh, fresh.model_copy(update={"assigned_to": "rep-1"})) is None
