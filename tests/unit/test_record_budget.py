"""A record's time budget (crm.platform.budget): how much a record may spend, and the check between steps."""

import time

import pytest
from crm.platform.budget import BudgetExceeded, check, record_budget, time_budget


def test_a_record_gets_the_budget_or_what_the_invocation_has_left_after_its_reserve() -> None:
    assert record_budget(60_000) == 10.0
    assert record_budget(8_000) == pytest.approx(3.0)
    assert record_budget(4_000) == 0.0  # inside the reserve: the record fails at its first step


def test_the_check_passes_within_the_budget_and_raises_once_it_is_spent() -> None:
    check()  # no budget set: nothing to spend
    with time_budget(5.0):
        check()
    with time_budget(0.01):
        time.sleep(0.02)
        with pytest.raises(BudgetExceeded):
            check()
    check()  # the budget ends with its block
