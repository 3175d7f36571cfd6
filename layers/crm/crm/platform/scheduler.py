"""The follow-up scheduler: one EventBridge rate rule, many kinds of due work, none forgotten.

Why a rate rule reading a due-time index rather than one EventBridge Scheduler schedule per reminder:
the due time lives on the item itself (a task, an SLA timer, a nurture enrollment) as sparse GSI2 keys,
written in the same transaction as the change that makes it due, and cancelling is removing those keys in
the same write that contacts or converts the lead. One schedule per reminder would be a second system of
record, written outside the table's transactions (a reminder could exist for a task that was never
written, or survive its cancellation), one API call per create, move and cancel.

Each run, per source:
- reads the work due in [checkpoint - overlap, now] (an index Query per due day and shard);
- fires each piece in due order; firing is idempotent (a conditional write, and a notification job whose
  delivery is deduplicated per event), so overlapping runs and retries send nothing twice;
- moves the source's checkpoint to `now`, or to the earliest piece that failed, so a failure is retried
  by the next run and a run missed while the system was down is caught up by the next one (late, not
  never). A source with more due work than `batch_limit` stops at the limit and continues next run.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from crm.platform import clock
from crm.platform.observability import logger


@dataclass(frozen=True)
class DueWork:
    """One piece of due work: when it was due, a name for logs, and how to fire it (idempotently)."""

    due_at: datetime
    key: str
    fire: Callable[[], bool]  # True if it did something now; False if there was nothing left to do


class DueSource(Protocol):
    name: str

    def due(self, since: datetime, until: datetime, limit: int) -> list[DueWork]:
        """Work due in [since, until], soonest first, at most `limit` pieces."""
        ...


class CheckpointStore(Protocol):
    def get(self, source: str) -> datetime | None: ...

    def put(self, source: str, until: datetime) -> None: ...


@dataclass
class SourceReport:
    due: int = 0
    fired: int = 0
    failed: int = 0
    checkpoint: str = ""


@dataclass
class RunReport:
    sources: dict[str, SourceReport] = field(default_factory=dict)

    @property
    def fired(self) -> int:
        return sum(report.fired for report in self.sources.values())

    @property
    def failed(self) -> int:
        return sum(report.failed for report in self.sources.values())


class FollowUpScheduler:
    def __init__(
        self,
        checkpoints: CheckpointStore,
        sources: Sequence[DueSource],
        *,
        now: Callable[[], datetime] = clock.now,
        first_lookback: timedelta = timedelta(days=7),
        overlap: timedelta = timedelta(minutes=10),
        batch_limit: int = 500,
    ) -> None:
        self.checkpoints = checkpoints
        self.sources = list(sources)
        self.now = now
        self.first_lookback = first_lookback
        self.overlap = overlap
        self.batch_limit = batch_limit

    def run(self) -> RunReport:
        report = RunReport()
        for source in self.sources:
            report.sources[source.name] = self._run_source(source)
        return report

    def _run_source(self, source: DueSource) -> SourceReport:
        now = self.now()
        checkpoint = self.checkpoints.get(source.name)
        # The overlap covers index keys that became visible late (GSIs are eventually consistent).
        since = (checkpoint - self.overlap) if checkpoint else now - self.first_lookback
        work = source.due(since, now, self.batch_limit + 1)
        complete = len(work) <= self.batch_limit
        work = work[: self.batch_limit]
        report = SourceReport(due=len(work))
        earliest_failure: datetime | None = None
        for piece in work:
            try:
                if piece.fire():
                    report.fired += 1
            except Exception:
                report.failed += 1
                earliest_failure = earliest_failure or piece.due_at
                logger.exception("Due work failed; the next run retries it", extra={"key": piece.key})
        if earliest_failure is not None:
            until = earliest_failure
        elif complete:
            until = now
        else:
            until = work[-1].due_at  # the rest is read from here on the next run
        # Never move back before the overlap window already re-read, never past now.
        until = max(until, checkpoint) if checkpoint else until
        self.checkpoints.put(source.name, until)
        report.checkpoint = clock.isoformat(until)
        logger.info(
            "Follow-up source run",
            extra={"source": source.name, "due": report.due, "fired": report.fired, "failed": report.failed},
        )
        return report
