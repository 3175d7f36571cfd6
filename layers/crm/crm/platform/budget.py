"""A time budget for one unit of work (a stream record), checked cooperatively between its steps.

A record whose work runs past its budget fails alone, well inside the function's timeout, instead of
timing out the whole batch (and with it every innocent record beside it). Python cannot interrupt a step,
so the budget is checked between steps: each rule of the scoring engine is one (its regular expressions
are RE2, linear in the input, so no single step can run away).
"""

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from crm.platform.errors import RetryableError

_deadline: ContextVar[float | None] = ContextVar("budget_deadline", default=None)


class BudgetExceeded(RetryableError):
    """The unit of work ran out of its time budget (the record fails alone and is retried)."""


@contextmanager
def time_budget(seconds: float) -> Iterator[None]:
    """Run the block with `seconds` to spend; `check()` inside it raises once they are spent."""
    token = _deadline.set(time.monotonic() + seconds)
    try:
        yield
    finally:
        _deadline.reset(token)


def check() -> None:
    """Raise BudgetExceeded when the current budget (if any) is spent."""
    deadline = _deadline.get()
    if deadline is not None and time.monotonic() > deadline:
        raise BudgetExceeded("This record ran out of its time budget; it will be retried alone")


# A record's budget, and what is kept back for the batch's own bookkeeping and the records after it.
RECORD_BUDGET_SECONDS = 10.0
RESERVE_SECONDS = 5.0


def record_budget(remaining_ms: int) -> float:
    """Seconds one record may spend, given the invocation's remaining time (the Lambda context's)."""
    return max(0.0, min(RECORD_BUDGET_SECONDS, remaining_ms / 1000 - RESERVE_SECONDS))
