"""Scoring services: rescore a lead (stream and fan-out), manage the rules, record behavioural activities,
and run rescore jobs page by page through the rescore queue."""

import random
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from crm.leads.model import Activity, Lead, LeadStatus
from crm.leads.permissions import changeable_lead, visible_lead
from crm.leads.repository import LeadRepository
from crm.platform import clock
from crm.platform.audit import audit_entry
from crm.platform.auth import Principal
from crm.platform.dynamo import stream_image
from crm.platform.errors import InvalidInput, NotFound, RetryableError, VersionConflict
from crm.platform.ids import new_id
from crm.platform.observability import logger, metrics
from crm.scoring.rescore_job_repository import RescoreJobRepository
from crm.scoring.rescore_queue import RescoreQueue
from crm.scoring.rescoring import (
    JobReason,
    JobState,
    RescoreJob,
    RescorePage,
    RuleBook,
    RuleSet,
    StoredRule,
    decay_job_id,
    decay_partitions,
    job_reason,
    lead_to_rescore,
    nurture_partitions,
    plan_rescore,
    queued_job,
    reconcile_job_id,
    reroute_job_id,
    retry_delay,
    rule_set_revision,
    rules_job_id,
    rules_job_revision,
    status_partitions,
)
from crm.scoring.rule_repository import RuleSetChanged, ScoringRuleRepository
from crm.scoring.rules import ScoreBreakdown, ScoringRuleInput
from crm.scoring.score_repository import ScoreRepository

# Bounded retries of a score write that lost an optimistic-locking race (read again, recompute, retry).
MAX_ATTEMPTS = 12
# The reconciler leaves alone a lead changed this recently: its stream records are still being worked.
RECONCILE_GRACE = timedelta(minutes=5)
RULES_AUDIT = "scoring_rules"
_STAMPS = {"created_at", "updated_at", "version"}  # not changes a person makes
# Behavioural events may carry the time they happened; a little clock skew is tolerated.
MAX_CLOCK_SKEW = timedelta(minutes=5)


def _back_off(sleep: Callable[[float], None], attempt: int) -> None:
    sleep(random.uniform(0, retry_delay(attempt)))  # noqa: S311 (jitter, not security)


class RescoreOutcome(StrEnum):
    CHANGED = "changed"  # the score changed
    UPDATED = "updated"  # the ledger (or only the grade's first write) changed, the score did not
    UNCHANGED = "unchanged"
    SKIPPED = "skipped"  # converted: its score is final
    MISSING = "missing"


class ScoringService:
    def __init__(
        self,
        scores: ScoreRepository,
        rules: ScoringRuleRepository,
        half_life_days: float | None = None,
        now: Callable[[], datetime] = clock.now,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.scores = scores
        self.rules = rules
        self.half_life_days = half_life_days
        self.now = now
        self.sleep = sleep

    def rule_book(self) -> RuleBook:
        return RuleBook.build(self.rules.rule_set(self.now), self.half_life_days)

    def rescore(
        self,
        lead_id: str,
        book: RuleBook,
        open_only: bool = False,
        behind_only: bool = False,
        skip_recent: bool = False,
    ) -> RescoreOutcome:
        """Bring one lead's score, grade and ledger up to date with `book`; safe to repeat.

        `behind_only` (the reconciler): leave a lead alone when its ledger was computed from its current
        version and rule set (a time-dependent score is the daily decay pass's business, not this).
        `skip_recent` (the reconciler): leave alone a lead changed within RECONCILE_GRACE (SKIPPED).

        The write is conditional on the version read: when someone else wrote the lead meanwhile, read
        it again and recompute, so no update is ever lost and the score always reflects what was read.
        """
        for attempt in range(MAX_ATTEMPTS):
            state = self.scores.read(lead_id, with_activities=book.reads_activities)
            if state is None:
                return RescoreOutcome.MISSING
            if open_only and state.lead.lead_status is LeadStatus.CONVERTED:
                if state.in_decay_index:
                    self.scores.leave_decay_index(lead_id)
                return RescoreOutcome.SKIPPED
            if skip_recent and state.lead.updated_at > self.now() - RECONCILE_GRACE:
                return RescoreOutcome.SKIPPED  # the stream is still at work on it: neither score nor route
            if (
                behind_only
                and state.scored_lead_version == state.lead.version
                and (state.scored_rules_revision or 0) >= book.revision
            ):
                return RescoreOutcome.UNCHANGED
            update = plan_rescore(
                state.lead,
                state.activities,
                state.stored,
                book,
                now=self.now(),
                half_life_days=self.half_life_days,
            )
            if update is None:
                return RescoreOutcome.UNCHANGED
            try:
                self.scores.write(update, state.lead.version, book.revision)
            except (VersionConflict, RetryableError):
                _back_off(self.sleep, attempt)
                continue
            if update.score_changed or update.qualified:
                logger.info(
                    "Lead rescored",
                    extra={
                        "lead_id": lead_id,
                        "old_score": update.previous_score,
                        "new_score": update.lead.score,
                        "auto_qualified": update.qualified,
                        "rules_revision": book.revision,
                    },
                )
            return RescoreOutcome.CHANGED if update.score_changed else RescoreOutcome.UPDATED
        raise RetryableError(f"Lead {lead_id} kept changing while it was being scored; try again")

    def lead_score(self, principal: Principal, lead_id: str) -> tuple[Lead, ScoreBreakdown | None]:
        """The lead's stored score and ledger (None before its first scoring), if the caller may see it."""
        lead, breakdown = self.scores.lead_and_score(lead_id)
        return visible_lead(principal, lead, lead_id), breakdown


class StreamBatch:
    """One invocation's worth of stream records: rules are read once, each lead rescored once."""

    def __init__(self, scoring: ScoringService, jobs: "RescoreService") -> None:
        self.scoring = scoring
        self.jobs = jobs
        self._book: RuleBook | None = None
        self._rescored: set[str] = set()

    def handle_record(self, record: Mapping[str, Any]) -> None:
        """One DynamoDB stream record, as Lambda delivers it."""
        stream = record.get("dynamodb") or {}
        self.handle(
            str(record.get("eventName") or ""),
            stream_image(stream.get("NewImage")),
            stream_image(stream.get("OldImage")),
        )

    def handle(self, event_name: str, new_image: Mapping[str, Any], old_image: Mapping[str, Any]) -> None:
        revision = rule_set_revision(event_name, new_image)
        if revision is not None:
            self.jobs.start_rules_job(revision)
            self._book = None  # later records of this batch see the new rules
            return
        lead_id = lead_to_rescore(event_name, new_image, old_image)
        # Every record of a batch was written before the batch was read: one consistent read of the lead
        # after the first of its records sees all of them.
        if lead_id is None or lead_id in self._rescored:
            return
        if self._book is None:
            self._book = self.scoring.rule_book()
        self.scoring.rescore(lead_id, self._book)
        self._rescored.add(lead_id)


class RescoreService:
    """Rescore jobs: every open lead (after a rule change) or every lead whose points decay (daily),
    one SQS message per page; each page enqueues the next, and counts itself into the job once."""

    def __init__(
        self,
        jobs: RescoreJobRepository,
        rules: ScoringRuleRepository,
        scoring: ScoringService,
        queue: RescoreQueue,
        *,
        shards: int,
        page_size: int = 50,
        concurrency: int = 8,
        reroute: Callable[[str], bool] | None = None,
        route: Callable[[str], str] | None = None,
        now: Callable[[], datetime] = clock.now,
    ) -> None:
        self.jobs = jobs
        self.rules = rules
        self.scoring = scoring
        self.queue = queue
        self.shards = shards
        self.page_size = page_size
        self.concurrency = concurrency
        # Routes one nurture lead again at the stored sales threshold (assignment's routing, given by
        # bootstrap); True when it was sent to sales.
        self.reroute = reroute
        # Routes one scored lead as it is now (assignment's RoutingService.consider): "routed", "nurture"
        # or "skipped". Used by the reconciler.
        self.route = route
        self.now = now

    # ------------------------------------------------------------ starting
    def start_rules_job(self, revision: int) -> RescoreJob:
        """Rescore every open lead for rule-set `revision`, unless a newer revision already exists
        (then its own job covers every lead and this one is recorded as superseded)."""
        job_id = rules_job_id(revision)
        current = self.rules.revision() or revision
        if current > revision:
            superseded = RescoreJob(
                job_id=job_id,
                reason=JobReason.RULES_CHANGED,
                state=JobState.SUPERSEDED,
                started_at=self.now(),
                started_by=f"rules revision {revision}",
                superseded_by=rules_job_id(current),
            )
            return self.jobs.create(superseded)[0]
        return self._start(
            job_id, JobReason.RULES_CHANGED, status_partitions(self.shards), f"rules revision {revision}"
        )

    def start_decay_job(self) -> RescoreJob | None:
        """The daily pass: leads whose behavioural points can still change with time. None when no score
        can change with time (no decay and no windowed behavioural rule)."""
        if not self.scoring.rule_book().time_dependent:
            logger.info("Daily decay pass skipped: no score changes with time alone")
            return None
        now = self.now()
        return self._start(decay_job_id(now), JobReason.DECAY, decay_partitions(self.shards, now), "schedule")

    def _start(self, job_id: str, reason: JobReason, partitions: list[Any], started_by: str) -> RescoreJob:
        job, _ = self.jobs.create(
            RescoreJob(
                job_id=job_id,
                reason=reason,
                state=JobState.STARTING,
                started_at=self.now(),
                started_by=started_by,
                partitions=len(partitions),
            )
        )
        if job.state is not JobState.STARTING:
            return job  # started before: a redelivered trigger changes nothing
        # Sent again if a previous attempt stopped here: a page delivered twice is counted once.
        self.queue.send([RescorePage(job_id=job_id, partition=partition) for partition in partitions])
        self.jobs.move(job_id, JobState.STARTING, JobState.RUNNING)
        self.jobs.finish_if_complete(job_id, self.now())
        logger.info("Rescore job started", extra={"job_id": job_id, "partitions": len(partitions)})
        return self.jobs.get(job_id) or job

    def start_reroute_job(self, settings_version: int, started_by: str) -> RescoreJob:
        """Route every nurture lead again, at the threshold of routing-settings `settings_version`."""
        return self._start(
            reroute_job_id(settings_version),
            JobReason.REROUTE_NURTURE,
            nurture_partitions(self.shards),
            started_by,
        )

    def start_reconcile_job(self, started_by: str = "schedule") -> RescoreJob:
        """The reconciler: every open lead (status partitions of GSI2, as a rules job lists them) is
        checked; one never scored, or scored against an older version of itself or of the rules, is
        scored again, and a scored, open, unassigned lead nobody routed is routed. Safe to repeat."""
        return self._start(
            reconcile_job_id(self.now()), JobReason.RECONCILE, status_partitions(self.shards), started_by
        )

    def job_status(self, job_id: str) -> RescoreJob:
        job = self.jobs.get(job_id)
        if job is not None:
            return job
        revision = rules_job_revision(job_id)
        if revision is not None and revision <= (self.rules.revision() or 0):
            return queued_job(job_id, self.now())  # committed; the stream starts it within seconds
        raise NotFound(f"No rescore job {job_id}")

    # ------------------------------------------------------------ one page
    def process_page(self, page: RescorePage) -> None:
        ids, next_key = self.jobs.list_page(page.partition, page.start_key, self.page_size)
        marker = self.jobs.claim_page(page, len(ids), last=next_key is None, now=self.now())
        if next_key is not None and not marker.next_sent:
            # Listing runs ahead of rescoring, so the job's total is known as early as possible.
            self.queue.send(
                [
                    RescorePage(
                        job_id=page.job_id, partition=page.partition, page=page.page + 1, start_key=next_key
                    )
                ]
            )
            self.jobs.mark_next_sent(page)
        if marker.state != "done":
            reason = job_reason(page.job_id)
            if reason is JobReason.REROUTE_NURTURE:
                changed = sum(1 for lead_id in ids if self._reroute(lead_id))
            elif reason is JobReason.RECONCILE:
                changed = self._reconcile_all(ids, self.scoring.rule_book()) if ids else 0
            else:
                outcomes = self._rescore_all(ids, self.scoring.rule_book()) if ids else []
                changed = sum(1 for outcome in outcomes if outcome is RescoreOutcome.CHANGED)
            self.jobs.finish_page(page, marker.count, changed)
        self.jobs.finish_if_complete(page.job_id, self.now())

    def _reroute(self, lead_id: str) -> bool:
        if self.reroute is None:
            raise RuntimeError("This function cannot route leads: no routing was given to RescoreService")
        return self.reroute(lead_id)

    def _reconcile(self, lead_id: str, book: RuleBook) -> bool:
        """One open lead: True when it was left behind (and is now scored or routed)."""
        if self.route is None:
            raise RuntimeError("This function cannot route leads: no routing was given to RescoreService")
        outcome = self.scoring.rescore(lead_id, book, open_only=True, behind_only=True, skip_recent=True)
        if outcome in (RescoreOutcome.SKIPPED, RescoreOutcome.MISSING):
            return False
        routed = self.route(lead_id)
        if routed != "skipped":
            # Routing wrote the lead (a nurture flag, an activity): score what it wrote, as the stream
            # would, so that the next run finds nothing.
            self.scoring.rescore(lead_id, book, open_only=True, behind_only=True)
        behind = outcome in (RescoreOutcome.CHANGED, RescoreOutcome.UPDATED) or routed != "skipped"
        if behind:
            logger.warning(
                "Reconciler found a lead left behind",
                extra={"lead_id": lead_id, "scoring": outcome.value, "routing": routed},
            )
        return behind

    def _reconcile_all(self, lead_ids: list[str], book: RuleBook) -> int:
        with ThreadPoolExecutor(max_workers=max(1, min(self.concurrency, len(lead_ids)))) as pool:
            found = sum(pool.map(lambda lead_id: self._reconcile(lead_id, book), lead_ids))
        # Normally 0: anything else means the stream pipeline lost work (alarm on it).
        metrics.add_metric(name="LeadsReconciled", unit="Count", value=found)
        return found

    def _rescore_all(self, lead_ids: list[str], book: RuleBook) -> list[RescoreOutcome]:
        if len(lead_ids) <= 1 or self.concurrency == 1:
            return [self.scoring.rescore(lead_id, book, open_only=True) for lead_id in lead_ids]
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(lead_ids))) as pool:
            return list(
                pool.map(lambda lead_id: self.scoring.rescore(lead_id, book, open_only=True), lead_ids)
            )


class RuleService:
    """CRUD of scoring rules. Each change is one transaction that also bumps the rule set's revision;
    the stream sees that revision and starts the rescore job named after it."""

    def __init__(
        self,
        rules: ScoringRuleRepository,
        now: Callable[[], datetime] = clock.now,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rules = rules
        self.now = now
        self.sleep = sleep

    def rule_set(self) -> RuleSet:
        return self.rules.rule_set(self.now)

    def get(self, rule_id: str) -> StoredRule:
        rule = self.rule_set().find(rule_id)
        if rule is None:
            raise NotFound(f"No scoring rule with id {rule_id}")
        return rule

    def create(self, definition: ScoringRuleInput, *, actor: str | None = None) -> tuple[StoredRule, int]:
        return self._save(None, definition, None, actor)

    def replace(
        self, rule_id: str, definition: ScoringRuleInput, expected_version: int, *, actor: str | None = None
    ) -> tuple[StoredRule, int]:
        return self._save(rule_id, definition, expected_version, actor)

    def delete(
        self, rule_id: str, expected_version: int | None, *, actor: str | None = None
    ) -> tuple[StoredRule, int]:
        for attempt in range(MAX_ATTEMPTS):
            rule_set = self.rule_set()
            current = rule_set.find(rule_id)
            if current is None:
                raise NotFound(f"No scoring rule with id {rule_id}")
            self._check_version(current, expected_version)
            now = self.now()
            audit = audit_entry(RULES_AUDIT, rule_id, "deleted", actor=actor, at=now) if actor else None
            try:
                return current, self.rules.delete(rule_id, expected_version, rule_set, now, audit=audit)
            except RuleSetChanged:
                _back_off(self.sleep, attempt)
        raise RetryableError("The scoring rules are being changed by many people at once; try again")

    def _save(
        self,
        rule_id: str | None,
        definition: ScoringRuleInput,
        expected_version: int | None,
        actor: str | None,
    ) -> tuple[StoredRule, int]:
        for attempt in range(MAX_ATTEMPTS):
            rule_set = self.rule_set()
            now = self.now()
            if rule_id is None:
                current = None
                rule = StoredRule(
                    id=new_id(),
                    created_at=now,
                    updated_at=now,
                    updated_by=actor,
                    version=1,
                    **definition.model_dump(),
                )
            else:
                current = rule_set.find(rule_id)
                if current is None:
                    raise NotFound(f"No scoring rule with id {rule_id}")
                self._check_version(current, expected_version)
                rule = StoredRule(
                    id=rule_id,
                    created_at=current.created_at,
                    updated_at=now,
                    updated_by=actor,
                    version=current.version + 1,
                    **definition.model_dump(),
                )
            audit = None
            if actor:
                audit = audit_entry(
                    RULES_AUDIT,
                    rule.id,
                    "created" if current is None else "updated",
                    actor=actor,
                    at=now,
                    old=None if current is None else current.model_dump(mode="json", exclude=_STAMPS),
                    new=rule.model_dump(mode="json", exclude=_STAMPS),
                )
            try:
                return rule, self.rules.save(rule, expected_version, rule_set, now, audit=audit)
            except RuleSetChanged:
                _back_off(self.sleep, attempt)
        raise RetryableError("The scoring rules are being changed by many people at once; try again")

    @staticmethod
    def _check_version(current: StoredRule, expected_version: int | None) -> None:
        if expected_version is not None and current.version != expected_version:
            raise VersionConflict(
                "The scoring rule was changed by someone else", current_version=current.version
            )


class ActivityService:
    """Behavioural events (email opened, page viewed, demo requested, ...) recorded on a lead."""

    def __init__(
        self, leads: LeadRepository, scores: ScoreRepository, now: Callable[[], datetime] = clock.now
    ) -> None:
        self.leads = leads
        self.scores = scores
        self.now = now

    def record(
        self,
        principal: Principal,
        lead_id: str,
        *,
        activity_type: str,
        description: str | None,
        occurred_at: datetime | None,
        event_id: str | None,
        data: dict[str, Any],
    ) -> tuple[Activity, bool]:
        """Store the event as an activity (the scoring function rescores from the stream); with an
        event id, a replay returns the first activity and writes nothing (False)."""
        changeable_lead(principal, self.leads.get(lead_id), lead_id)
        now = self.now()
        moment = occurred_at or now
        if moment > now + MAX_CLOCK_SKEW:
            raise InvalidInput.single("occurred_at", "must not be in the future")
        activity = Activity(
            id=new_id(),
            lead_id=lead_id,
            type=activity_type,
            description=description or activity_type.replace("_", " ").capitalize(),
            created_by=principal.actor,
            created_at=moment,
            data={**data, **({"event_id": event_id} if event_id else {})},
        )
        return self.scores.record_activity(activity, event_id)
