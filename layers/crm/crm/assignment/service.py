"""Assignment: a lead to a rep, by rule or balancing, exactly once; manual reassignment; open-lead counters.

Rules first (`crm.assignment.rules`): the first matching rule names a user or a team; no match, the
default team. A named user who is available gets the lead; otherwise it is balanced within their team.
Balancing (`crm.assignment.choice.choose_rep`): the available rep with the fewest open leads, ties
round-robin.
Nobody available: the lead waits in its team's queue (routing marker "waiting", swept every few minutes
and when users change) and the team's managers get one alert per wait.

Every write is one conditional transaction (`crm.assignment.repository`); a lost race re-reads and
chooses again, so concurrent workers neither skip nor overload a rep, nor assign a lead twice.
"""

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from crm.assignment.choice import Choice, Method, Trigger, choose_rep, describe_choice
from crm.assignment.repository import (
    OPEN_STATUSES,
    AssignmentPlan,
    AssignmentRepository,
    LeadNotAssignable,
    LoadChanged,
    RoutingState,
)
from crm.assignment.rules import AssignmentRule, CompiledAssignmentRules
from crm.leads.model import Activity, Lead, new_activity
from crm.leads.permissions import visible_lead
from crm.leads.repository import LeadRepository
from crm.notifications.messages import NotificationKind, NotificationRequest
from crm.platform import clock
from crm.platform.auth import Principal, Role
from crm.platform.errors import Conflict, Forbidden, InvalidInput, NotFound, RetryableError, VersionConflict
from crm.platform.observability import logger
from crm.platform.queues import MessagePublisher
from crm.users.model import User
from crm.users.repository import UserRepository

MAX_ATTEMPTS = 25
ASSIGNER = "system:assignment"


class Outcome(StrEnum):
    ASSIGNED = "assigned"
    ALREADY_ASSIGNED = "already_assigned"
    WAITING = "waiting"
    NOT_ASSIGNABLE = "not_assignable"  # closed (converted, unqualified) or gone


@dataclass(frozen=True)
class AssignmentResult:
    outcome: Outcome
    lead_id: str
    assigned_to: str | None = None
    team: str | None = None
    method: Method | None = None


def is_open(lead: Lead) -> bool:
    return lead.lead_status in OPEN_STATUSES and not lead.converted


@dataclass(frozen=True)
class _Target:
    team: str
    rule: AssignmentRule | None
    user: User | None  # a rule's named user, when there is one and they exist


class AssignmentService:
    def __init__(
        self,
        leads: LeadRepository,
        assignments: AssignmentRepository,
        users: UserRepository,
        publisher: MessagePublisher,
        *,
        default_team: str,
        after_hours_policy: str,
        notification_queue_url: str,
        now: Callable[[], datetime] = clock.now,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.leads = leads
        self.assignments = assignments
        self.users = users
        self.publisher = publisher
        self.default_team = default_team
        self.after_hours_policy = after_hours_policy
        self.notification_queue_url = notification_queue_url
        self.now = now
        self.sleep = sleep

    # ------------------------------------------------------------------ automatic assignment
    def assign(self, lead_id: str, trigger: Trigger) -> AssignmentResult:
        for attempt in range(MAX_ATTEMPTS):
            lead = self.leads.get(lead_id)
            if lead is None:
                self._leave_queue(lead_id, None, "gone")
                return AssignmentResult(Outcome.NOT_ASSIGNABLE, lead_id)
            if lead.assigned_to is not None:
                self._leave_queue(lead_id, lead.team, "reconciled")
                return AssignmentResult(Outcome.ALREADY_ASSIGNED, lead_id, lead.assigned_to, lead.team)
            if not is_open(lead):
                self._leave_queue(lead_id, lead.team, "closed")
                return AssignmentResult(Outcome.NOT_ASSIGNABLE, lead_id)
            try:
                return self._assign_once(lead, trigger)
            except LeadNotAssignable:
                continue  # assigned or closed meanwhile: the next read says which
            except LoadChanged as changed:
                if changed.stale_claim:
                    self.keep_load(lead_id)
            except RetryableError:
                pass
            self._back_off(attempt)
        raise RetryableError("Too many concurrent assignments; the lead will be retried")

    def _assign_once(self, lead: Lead, trigger: Trigger) -> AssignmentResult:
        now = self.now()
        target = self._target(lead)
        if target.user is not None:
            load = self.assignments.loads([target.user.sub])[target.user.sub]
            if target.user.unavailable_reason(load, now) is None:
                assert target.rule is not None
                activity = new_activity(
                    lead.id,
                    "lead_assigned",
                    f"Assigned to {target.user.name} by rule '{target.rule.name}'",
                    ASSIGNER,
                    now,
                    assigned_to=target.user.sub,
                    team=target.team,
                    method=Method.RULE_USER.value,
                    rule_id=target.rule.id,
                    rule_name=target.rule.name,
                    trigger=trigger.value,
                    open_leads=load,
                    capacity=target.user.capacity,
                )
                self._commit(
                    lead,
                    target.user.sub,
                    target.team,
                    seen_load=load,
                    capacity=target.user.capacity,
                    activity=activity,
                    trigger=trigger,
                )
                return AssignmentResult(
                    Outcome.ASSIGNED, lead.id, target.user.sub, target.team, Method.RULE_USER
                )
        members = self.users.team_members(target.team)
        loads = self.assignments.loads(member.sub for member in members)
        ticket = self.assignments.next_ticket(target.team)
        choice = choose_rep(members, loads, now, ticket, self.after_hours_policy)
        if choice.chosen is None:
            self._wait(lead, target, choice, trigger, now, team_exists=bool(members))
            return AssignmentResult(Outcome.WAITING, lead.id, team=target.team)
        chosen_user = next(member for member in members if member.sub == choice.chosen.sub)
        activity = new_activity(
            lead.id,
            "lead_assigned",
            describe_choice(choice, target.team) + _rule_note(target),
            ASSIGNER,
            now,
            assigned_to=choice.chosen.sub,
            team=target.team,
            method=choice.method.value,
            rule_id=target.rule.id if target.rule else None,
            rule_name=target.rule.name if target.rule else None,
            trigger=trigger.value,
            ticket=ticket,
            candidates=[candidate.as_data() for candidate in choice.candidates],
        )
        self._commit(
            lead,
            chosen_user.sub,
            target.team,
            seen_load=choice.seen_load,
            capacity=chosen_user.capacity,
            activity=activity,
            trigger=trigger,
        )
        return AssignmentResult(Outcome.ASSIGNED, lead.id, chosen_user.sub, target.team, choice.method)

    def _target(self, lead: Lead) -> _Target:
        rule = CompiledAssignmentRules(self.assignments.list_rules()).first_match(lead)
        if rule is None:
            return _Target(self.default_team, None, None)
        if rule.target_team is not None:
            return _Target(rule.target_team, rule, None)
        assert rule.target_user is not None
        user = self.users.get(rule.target_user)
        if user is None:
            logger.warning("An assignment rule names an unknown user", extra={"rule_id": rule.id})
            return _Target(self.default_team, rule, None)
        return _Target(user.primary_team or self.default_team, rule, user)

    def _commit(
        self,
        lead: Lead,
        rep: str,
        team: str,
        *,
        seen_load: int,
        capacity: int | None,
        activity: Activity,
        trigger: Trigger,
    ) -> None:
        self.assignments.commit_assignment(
            AssignmentPlan(
                lead=lead,
                rep=rep,
                team=team,
                seen_load=seen_load,
                capacity=capacity,
                activity=activity,
                now=activity.created_at,
                trigger=trigger.value,
            )
        )
        logger.info("Lead assigned", extra={"lead_id": lead.id, "team": team, "trigger": trigger.value})

    def _wait(
        self,
        lead: Lead,
        target: _Target,
        choice: Choice,
        trigger: Trigger,
        now: datetime,
        *,
        team_exists: bool,
    ) -> None:
        """Nobody can take the lead: it waits (the sweep and user changes send it again).

        It joins its team (so the team's managers see it and get one alert per wait), unless the team has
        no members at all (a rule or the default team naming an empty team): then it keeps no team, so
        every manager sees it in the unassigned queue, and nobody is alerted.
        """
        marker = self.assignments.get_marker(lead.id)
        already_waiting = marker is not None and marker.state is RoutingState.WAITING
        since = (
            clock.parse(marker.waiting_since) if already_waiting and marker and marker.waiting_since else now
        )
        alerted = not team_exists or bool(already_waiting and marker and marker.manager_alerted)
        activity = None
        if not already_waiting:
            why = (
                f"No rep of team {target.team} can take the lead now"
                if team_exists
                else f"Team {target.team} has no members; the lead stays visible to every manager"
            )
            activity = new_activity(
                lead.id,
                "assignment_waiting",
                f"{why}; it waits in the unassigned queue" + _rule_note(target),
                ASSIGNER,
                now,
                team=target.team,
                rule_id=target.rule.id if target.rule else None,
                trigger=trigger.value,
                candidates=[candidate.as_data() for candidate in choice.candidates],
            )
        if not self.assignments.mark_waiting(
            lead,
            target.team,
            set_lead_team=team_exists,
            trigger=trigger.value,
            activity=activity,
            now=now,
            since=since,
            manager_alerted=alerted,
        ):
            raise LeadNotAssignable("The lead changed while it was put in the queue")
        logger.info("Lead waits for a rep", extra={"lead_id": lead.id, "team": target.team})
        if not team_exists:
            logger.warning("Leads are routed to a team without members", extra={"team": target.team})
        if not alerted:
            self.publisher.send(
                self.notification_queue_url,
                NotificationRequest(
                    kind=NotificationKind.UNASSIGNED_LEAD,
                    lead_id=lead.id,
                    team=target.team,
                    event_id=f"waiting:{clock.isoformat(since)}",
                ).model_dump(mode="json"),
            )
            self.assignments.mark_alerted(lead.id)

    def _leave_queue(self, lead_id: str, team: str | None, why: str) -> None:
        """A lead found assigned, closed or deleted stops waiting, so the sweep stops sending it."""
        marker = self.assignments.get_marker(lead_id)
        if marker is not None and marker.state is RoutingState.WAITING:
            self.assignments.settle_marker(lead_id, team, why, self.now())

    # ------------------------------------------------------------------ manual assignment
    def assign_manually(self, lead_id: str, assignee: str, reason: str | None, by: Principal) -> Lead:
        """A manager's or admin's decision: any active user of the manager's teams, capacity or not."""
        for attempt in range(MAX_ATTEMPTS):
            snapshot = self.assignments.load_snapshot(lead_id)
            lead = visible_lead(by, snapshot.lead, lead_id)
            user = self.users.get(assignee)
            if user is None:
                raise InvalidInput.single("assigned_to", "no user has this sub")
            if not user.active:
                raise InvalidInput.single("assigned_to", "this user is not active")
            if Role.ADMIN not in by.roles and not set(user.teams) & set(by.teams):
                raise Forbidden("Managers assign leads to members of their own teams")
            if not is_open(lead):
                raise Conflict(f"The lead is {lead.lead_status.value}: only open leads are assigned")
            if lead.assigned_to == assignee:
                return lead
            now = self.now()
            team = lead.team if lead.team in user.teams else (user.primary_team or self.default_team)
            load = self.assignments.loads([assignee])[assignee]
            over_capacity = user.capacity is not None and load >= user.capacity
            previous = lead.assigned_to
            activity = new_activity(
                lead.id,
                "lead_reassigned" if previous else "lead_assigned",
                (f"Reassigned to {user.name}" if previous else f"Assigned to {user.name}")
                + f" by {by.actor}"
                + (f": {reason}" if reason else ""),
                by.actor,
                now,
                assigned_to=assignee,
                previous_assignee=previous,
                team=team,
                method=Method.MANUAL.value,
                trigger=Trigger.MANUAL.value,
                reason=reason,
                open_leads=load,
                capacity=user.capacity,
                over_capacity=over_capacity or None,
            )
            claimed_by = snapshot.claimed_by
            try:
                self.assignments.commit_manual(
                    lead, assignee, team, previous_claim=claimed_by, activity=activity, now=now
                )
            except (VersionConflict, RetryableError):
                self._back_off(attempt)
                continue
            logger.info("Lead assigned by hand", extra={"lead_id": lead.id, "team": team})
            stored = self.leads.get(lead_id)
            if stored is None:
                raise NotFound(f"No lead with id {lead_id}")
            return stored
        raise RetryableError("The lead is being changed by others; try again")

    # ------------------------------------------------------------------ counters
    def notify_assignee(self, lead_id: str, assignee: str, assigned_at: str) -> None:
        """Queue the new assignee's notification, once per assignment (its event id names it)."""
        job = NotificationRequest(
            kind=NotificationKind.LEAD_ASSIGNED,
            lead_id=lead_id,
            recipient=assignee,
            event_id=f"assigned:{assignee}:{assigned_at}",
        )
        self.publisher.send(self.notification_queue_url, job.model_dump(mode="json"))
        logger.info("Assignment notification queued", extra={"lead_id": lead_id})

    def keep_load(self, lead_id: str) -> bool:
        """Make the rep's open-lead counter agree with the lead (after closes, reopenings, edits elsewhere).

        The claim item says whose counter counts the lead; it is moved in one transaction with the counters,
        conditional on the lead's version, so replays and races change nothing twice. True if it moved.
        """
        for attempt in range(MAX_ATTEMPTS):
            snapshot = self.assignments.load_snapshot(lead_id)
            lead = snapshot.lead
            desired = lead.assigned_to if lead is not None and is_open(lead) else None
            if desired == snapshot.claimed_by:
                return False
            if self.assignments.move_load(lead, lead_id, snapshot.claimed_by, desired):
                logger.info("Open-lead counters moved", extra={"lead_id": lead_id})
                return True
            self._back_off(attempt)
        raise RetryableError("The lead keeps changing; its counters will be reconciled on retry")

    def _back_off(self, attempt: int) -> None:
        self.sleep(random.uniform(0, min(0.25, 0.005 * 2**attempt)))  # noqa: S311


def _rule_note(target: _Target) -> str:
    if target.rule is None:
        return " - no rule matched: default team"
    return f" - rule '{target.rule.name}'"
