"""Analytics: keeping the counters from lead changes, answering the dashboards, and the nightly check."""

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from aws_lambda_powertools.metrics import MetricUnit, single_metric

from crm.analytics.counters import (
    Dimension,
    Drift,
    FunnelFigures,
    GroupBy,
    Histogram,
    compare,
    contact_credit,
    counter_delta,
    first_contact,
    recount,
    split_range,
)
from crm.analytics.repository import AnalyticsRepository
from crm.leads.model import Lead
from crm.leads.permissions import require_role
from crm.platform import clock
from crm.platform.auth import Principal, Role
from crm.platform.observability import logger, metrics

_DIMENSION_OF = {
    GroupBy.SOURCE: Dimension.SOURCE,
    GroupBy.OWNER: Dimension.OWNER,
    GroupBy.TEAM: Dimension.TEAM,
}


@dataclass(frozen=True)
class FunnelReport:
    start: date
    end: date
    group_by: GroupBy | None
    groups: list[FunnelFigures]
    total: FunnelFigures


@dataclass(frozen=True)
class SpeedFigures:
    key: str
    histogram: Histogram

    @property
    def contacted(self) -> int:
        return self.histogram.count

    @property
    def median_seconds(self) -> float | None:
        return self.histogram.percentile(0.5)

    @property
    def p90_seconds(self) -> float | None:
        return self.histogram.percentile(0.9)

    @property
    def mean_seconds(self) -> float | None:
        count = self.histogram.count
        return round(self.histogram.total_seconds / count, 1) if count else None


@dataclass(frozen=True)
class SpeedReport:
    start: date
    end: date
    overall: SpeedFigures
    reps: list[SpeedFigures]


@dataclass(frozen=True)
class Reconciliation:
    day: date
    checked_at: str
    leads: int
    drift: list[Drift]


MAX_CATCH_UP_DAYS = 31  # a nightly run reconciles at most this many missed days


class AnalyticsService:
    def __init__(self, store: AnalyticsRepository, now: Callable[[], datetime] = clock.now) -> None:
        self.store = store
        self.now = now

    # ------------------------------------------------------------------ the stream
    def record_change(self, lead_id: str, record_id: str, old: Lead | None, new: Lead | None) -> bool:
        """Move the counters for one lead change, once per stream record; False for a repeat."""
        delta = counter_delta(old, new)
        contact = first_contact(old, new)
        credit = contact_credit(old, new)
        applied, contact_counted = self.store.apply(lead_id, record_id, delta, contact, credit)
        if not applied:
            return False
        self._metrics(old, new, contact.seconds if contact_counted and contact else None)
        return True

    @staticmethod
    def _metrics(old: Lead | None, new: Lead | None, contact_seconds: float | None) -> None:
        """Once per change (never for a redelivery). Conversions are counted where they happen
        (`LeadsConverted`, crm.api.conversion); captures per channel in crm.api.capture."""
        if new is None:
            return
        if old is None:
            with single_metric(
                name="LeadsCapturedBySource", unit=MetricUnit.Count, value=1, namespace=metrics.namespace
            ) as metric:
                metric.add_dimension(name="source", value=new.lead_source.lower()[:250])
        if new.assigned_to and (old is None or not old.assigned_to):
            assigned_at = new.assigned_at or new.updated_at
            latency = max(0.0, (assigned_at - new.created_at).total_seconds())
            metrics.add_metric(name="AssignmentLatency", unit=MetricUnit.Seconds, value=latency)
        if contact_seconds is not None:
            metrics.add_metric(name="SpeedToLead", unit=MetricUnit.Seconds, value=contact_seconds)

    # ------------------------------------------------------------------ the dashboards
    def funnel(self, principal: Principal, start: date, end: date, group_by: GroupBy | None) -> FunnelReport:
        require_role(principal, Role.MANAGER, Role.ADMIN)
        if group_by is GroupBy.DAY:
            days = self.store.daily_counters(split_range(start, end, whole_months=False))
            groups = [FunnelFigures(day, counts) for day, counts in sorted(days.items())]
            total = FunnelFigures("all", sum((Counter(g.counts) for g in groups), Counter()))
            return FunnelReport(start, end, group_by, groups, total)
        periods = split_range(start, end)
        overall = self.store.counters(Dimension.ALL, periods).get("all", Counter())
        groups = []
        if group_by is not None:
            by_value = self.store.counters(_DIMENSION_OF[group_by], periods)
            groups = [
                FunnelFigures(value, counts)
                for value, counts in sorted(by_value.items(), key=lambda kv: (-kv[1]["leads"], kv[0]))
                if counts["leads"]
            ]
        return FunnelReport(start, end, group_by, groups, FunnelFigures("all", overall))

    def sources(self, principal: Principal, start: date, end: date) -> list[FunnelFigures]:
        require_role(principal, Role.MANAGER, Role.ADMIN)
        by_source = self.store.counters(Dimension.SOURCE, split_range(start, end))
        return [
            FunnelFigures(source, counts)
            for source, counts in sorted(by_source.items(), key=lambda kv: (-kv[1]["leads"], kv[0]))
            if counts["leads"]
        ]

    def speed(self, principal: Principal, start: date, end: date) -> SpeedReport:
        require_role(principal, Role.MANAGER, Role.ADMIN)
        periods = split_range(start, end)
        overall = self.store.histograms(Dimension.ALL, periods).get("all", Histogram())
        reps = self.store.histograms(Dimension.OWNER, periods)
        return SpeedReport(
            start,
            end,
            SpeedFigures("all", overall),
            [SpeedFigures(rep, histogram) for rep, histogram in sorted(reps.items()) if histogram.count],
        )

    # ------------------------------------------------------------------ the nightly reconciliation
    def reconcile_missed(self) -> list[Reconciliation]:
        """The nightly run: reconcile every day since the last one reconciled (its checkpoint) up to
        yesterday, oldest first, moving the checkpoint after each, so a run missed (or a clock moved by days)
        is caught up and a failure resumes where it stopped. At most MAX_CATCH_UP_DAYS days: older missed
        days are left (logged); reconcile one of them by naming it. Before the first run: yesterday only."""
        yesterday = (self.now() - timedelta(days=1)).date()
        last = self.store.reconciled_through()
        first = yesterday if last is None else last + timedelta(days=1)
        oldest = yesterday - timedelta(days=MAX_CATCH_UP_DAYS - 1)
        if first < oldest:
            logger.warning(
                "Analytics reconciliation: missed days older than the catch-up bound are not reconciled",
                extra={"from": first.isoformat(), "to": (oldest - timedelta(days=1)).isoformat()},
            )
            first = oldest
        results = []
        day = first
        while day <= yesterday:
            results.append(self.reconcile(day))
            self.store.mark_reconciled(day)
            day += timedelta(days=1)
        return results

    def reconcile(self, day: date | None = None) -> Reconciliation:
        """Recount a cohort day (default: yesterday) from its leads and report any drift: log, metric and
        a stored result. The counters are not rewritten: a drift is a bug to look into, not to paper over."""
        target = day or (self.now() - timedelta(days=1)).date()
        leads = self.store.leads_created_on(target)
        expected = recount(leads)
        stored = self.store.stored_day(target)
        drift = compare(expected, stored)
        checked_at = clock.isoformat(self.now())
        self.store.store_reconciliation(target, checked_at, len(leads), drift)
        metrics.add_metric(name="AnalyticsDrift", unit=MetricUnit.Count, value=len(drift))
        metrics.add_metric(name="AnalyticsReconciledLeads", unit=MetricUnit.Count, value=len(leads))
        summary = {"day": target.isoformat(), "leads": len(leads), "drift_count": len(drift)}
        if drift:
            logger.warning(
                "Analytics drift: stored counters differ from a recount of the leads",
                extra={**summary, "drift": [vars(entry) for entry in drift[:20]]},
            )
        else:
            logger.info("Analytics reconciled: no drift", extra=summary)
        return Reconciliation(target, checked_at, len(leads), drift)
