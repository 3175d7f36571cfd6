"""Follow-ups, reminders and the speed-to-lead SLA on DynamoDB Local (real conditional writes, real
transactions, real index Queries), with concurrent stream deliveries and concurrent scheduler runs.

Each thread builds its own services, as separate Lambda execution environments would. Times are set in
2031 so the due-time windows read only this module's items from the session's shared table.
"""

import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from crm.follow_ups.repository import FollowUpRepository
from crm.follow_ups.rules import SpeedToLeadSla, TimerState
from crm.follow_ups.service import FollowUpService
from crm.leads.model import Lead, LeadStatus
from crm.leads.repository import LeadRepository
from crm.leads.task_repository import TaskRepository
from crm.leads.tasks import TaskKind, new_task
from crm.notifications.delivery import NotificationService
from crm.notifications.messages import NotificationRequest
from crm.notifications.repository import NotificationRepository
from crm.platform.auth import Role
from crm.platform.checkpoints import CheckpointRepository
from crm.platform.email import OutgoingEmail
from crm.platform.errors import RetryableError
from crm.platform.scheduler import FollowUpScheduler
from crm.users.repository import UserRepository

from tests.assignment_support import make_lead, make_user, unique

pytestmark = pytest.mark.ddblocal

ASSIGNED_AT = datetime(2031, 3, 4, 10, 0, tzinfo=UTC)  # a Tuesday


class RecordingPublisher:
    def __init__(self) -> None:
        self.jobs: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def send(self, queue_url: str, body: dict[str, Any]) -> None:
        with self._lock:
            self.jobs.append(body)

    def send_many(self, queue_url: str, bodies: list[dict[str, Any]]) -> None:
        for body in bodies:
            self.send(queue_url, body)


class RecordingSender:
    def __init__(self) -> None:
        self.sent: list[OutgoingEmail] = []
        self._lock = threading.Lock()

    def send(self, email: OutgoingEmail) -> str:
        with self._lock:
            self.sent.append(email)
            return f"message-{len(self.sent)}"


class IsolatedCheckpoints(CheckpointRepository):
    """The real checkpoint item, under a name of this test's own."""

    def __init__(self, table: str, client: Any, prefix: str) -> None:
        super().__init__(table, client=client)
        self.prefix = prefix

    def get(self, source: str) -> datetime | None:
        return super().get(f"{self.prefix}-{source}")

    def put(self, source: str, until: datetime) -> None:
        super().put(f"{self.prefix}-{source}", until)


@pytest.fixture
def world(local_aws: dict[str, Any]) -> dict[str, Any]:
    client, table = local_aws["dynamodb"], local_aws["table"]
    return {
        "client": client,
        "table": table,
        "team": unique("team"),
        "leads": LeadRepository(table, client=client),
        "tasks": TaskRepository(table, client=client),
        "timers": FollowUpRepository(table, client=client),
        "users": UserRepository(table, client=client),
        "publisher": RecordingPublisher(),
        "checkpoints": unique("checkpoint"),
    }


def service(world: dict[str, Any], now: Callable[[], datetime]) -> FollowUpService:
    client, table = world["client"], world["table"]
    return FollowUpService(
        LeadRepository(table, client=client),
        TaskRepository(table, client=client),
        FollowUpRepository(table, client=client),
        world["publisher"],
        notification_queue_url="queue",
        sla=SpeedToLeadSla(timedelta(hours=1)),
        default_team=world["team"],
        now=now,
    )


def run_at_once(count: int, work: Callable[[int], Any]) -> list[Any]:
    start = threading.Barrier(count)
    results: list[Any] = [None] * count
    errors: list[BaseException] = []

    def run(n: int) -> None:
        try:
            start.wait()
            results[n] = work(n)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    return results


def assigned_lead(world: dict[str, Any], rep_sub: str) -> Lead:
    lead = make_lead(world["leads"], team=world["team"])
    return world["leads"].replace(
        lead.model_copy(update={"assigned_to": rep_sub, "assigned_at": ASSIGNED_AT}), lead.version, []
    )


def follow_ups_of(world: dict[str, Any], lead_id: str) -> list[Any]:
    return [t for t in world["tasks"].lead_tasks(lead_id) if t.kind == TaskKind.FOLLOW_UP.value]


def deliver(world: dict[str, Any], jobs: list[dict[str, Any]], at: datetime) -> RecordingSender:
    """Every job (duplicates included) through the notification service, six workers at once."""
    sender = RecordingSender()
    client, table = world["client"], world["table"]

    def work(n: int) -> None:
        notifications = NotificationService(
            LeadRepository(table, client=client),
            UserRepository(table, client=client),
            NotificationRepository(table, client=client),
            sender,
            TaskRepository(table, client=client),
            console_url="http://127.0.0.1:3000/app/",
            lease=timedelta(seconds=60),
            now=lambda: at,
        )
        for job in jobs:
            for attempt in range(50):
                try:
                    notifications.deliver(NotificationRequest.model_validate(job))
                    break
                except RetryableError:  # another worker holds the claim: SQS delivers it again later
                    time.sleep(0.05 * (attempt + 1))

    run_at_once(6, work)
    return sender


def test_an_assignment_delivered_many_times_at_once_plans_one_pair_of_follow_ups(
    world: dict[str, Any],
) -> None:
    rep = make_user(world["users"], world["team"])
    lead = assigned_lead(world, rep.sub)

    created = run_at_once(8, lambda _n: service(world, lambda: ASSIGNED_AT).on_assigned(lead.id))

    assert sum(created) == 2
    tasks = follow_ups_of(world, lead.id)
    assert sorted(t.due_at for t in tasks) == [
        ASSIGNED_AT + timedelta(days=1),
        ASSIGNED_AT + timedelta(days=7),
    ]
    assert {t.owner for t in tasks} == {rep.sub}
    _, activities = world["leads"].get_with_activities(lead.id)
    assert sum(1 for a in activities if a.type == "task_created") == 2


def test_concurrent_scheduler_runs_remind_each_due_task_once(world: dict[str, Any]) -> None:
    reps = [make_user(world["users"], world["team"]) for _ in range(3)]
    leads = [assigned_lead(world, reps[n % 3].sub) for n in range(9)]
    planner = service(world, lambda: ASSIGNED_AT)
    for lead in leads:
        planner.on_assigned(lead.id)
    a_day_later = ASSIGNED_AT + timedelta(days=1, minutes=1)

    def scheduler_run(n: int) -> int:
        checkpoints = IsolatedCheckpoints(world["table"], world["client"], world["checkpoints"])
        follow_ups = service(world, lambda: a_day_later)
        return FollowUpScheduler(checkpoints, follow_ups.due_sources(), now=lambda: a_day_later).run().failed

    assert run_at_once(6, scheduler_run) == [0] * 6

    mine = {lead.id for lead in leads}  # other tests' follow-ups in the shared table are due too
    jobs = [
        job for job in world["publisher"].jobs if job["kind"] == "task_reminder" and job["lead_id"] in mine
    ]
    due_tasks = {t.id for lead in leads for t in follow_ups_of(world, lead.id) if t.due_at < a_day_later}
    assert {job["task_id"] for job in jobs} == due_tasks and len(due_tasks) == 9
    for lead in leads:
        day, week = sorted(follow_ups_of(world, lead.id), key=lambda t: t.due_at)
        assert day.reminded_at == a_day_later and day.version == 2  # reminded once, by one run
        assert week.reminded_at is None and week.version == 1  # not due yet

    # The jobs, duplicates and all, make one email per reminder.
    sender = deliver(world, jobs, a_day_later)
    assert sorted(email.to for email in sender.sent) == sorted(
        rep.email for lead in leads for rep in reps if rep.sub == lead.assigned_to
    )
    assert all(
        email.subject.startswith("Reminder: Follow up: 1 day after assignment") for email in sender.sent
    )

    # A later run finds nothing left to remind of (the index keys are gone).
    checkpoints = IsolatedCheckpoints(world["table"], world["client"], world["checkpoints"])
    again = FollowUpScheduler(
        checkpoints, service(world, lambda: a_day_later).due_sources(), now=lambda: a_day_later
    )
    assert again.run().sources["task_reminders"].fired == 0


def test_contacting_the_lead_cancels_its_follow_ups_and_stops_its_sla_clock(world: dict[str, Any]) -> None:
    rep = make_user(world["users"], world["team"])
    follow_ups = service(world, lambda: ASSIGNED_AT)
    lead = assigned_lead(world, rep.sub)
    follow_ups.start_sla(lead.id, ASSIGNED_AT)
    follow_ups.on_assigned(lead.id)
    contacted = world["leads"].replace(
        lead.model_copy(update={"lead_status": LeadStatus.CONTACTED}), lead.version, []
    )

    cancelled = run_at_once(4, lambda _n: service(world, lambda: ASSIGNED_AT).on_change(contacted.id))

    assert sum(cancelled) == 2
    assert all(t.cancelled_at is not None and not t.is_open for t in follow_ups_of(world, lead.id))
    assert all(t.cancel_reason == "lead contacted" for t in follow_ups_of(world, lead.id))
    timer = world["timers"].get(lead.id)
    assert timer is not None and timer.state is TimerState.CANCELLED and timer.cancel_reason == "contacted"
    a_week_later = ASSIGNED_AT + timedelta(days=8)
    checkpoints = IsolatedCheckpoints(world["table"], world["client"], world["checkpoints"])
    FollowUpScheduler(
        checkpoints, service(world, lambda: a_week_later).due_sources(), now=lambda: a_week_later
    ).run()
    assert not [job for job in world["publisher"].jobs if job["lead_id"] == lead.id]


def test_converting_closes_the_discovery_call_and_keeps_the_reps_own_task(world: dict[str, Any]) -> None:
    rep = make_user(world["users"], world["team"])
    lead = assigned_lead(world, rep.sub)
    tasks = world["tasks"]
    discovery = new_task(
        lead.id,
        "Schedule discovery call",
        due_at=ASSIGNED_AT + timedelta(days=1),
        owner=rep.sub,
        created_by="test",
        now=ASSIGNED_AT,
        kind=TaskKind.DISCOVERY_CALL,
    )
    own = new_task(
        lead.id,
        "Send the contract",
        due_at=ASSIGNED_AT + timedelta(days=1),
        owner=rep.sub,
        created_by="test",
        now=ASSIGNED_AT,
    )
    tasks.create(discovery, [])
    tasks.create(own, [])
    converted = lead.model_copy(
        update={"lead_status": LeadStatus.CONVERTED, "converted": True, "converted_at": ASSIGNED_AT}
    )
    world["leads"].replace(converted, lead.version, [])
    a_day_later = ASSIGNED_AT + timedelta(days=1, minutes=1)
    checkpoints = IsolatedCheckpoints(world["table"], world["client"], world["checkpoints"])

    # The scheduler runs before the stream's cancellation has landed: it cancels, it does not remind.
    FollowUpScheduler(
        checkpoints, service(world, lambda: a_day_later).due_sources(), now=lambda: a_day_later
    ).run()
    assert service(world, lambda: a_day_later).on_change(lead.id) == 0  # and the stream finds nothing left

    closed = tasks.get(discovery.id)
    assert closed is not None and closed.cancel_reason == "lead converted" and closed.reminded_at is None
    kept = tasks.get(own.id)
    assert kept is not None and kept.is_open and kept.reminded_at == a_day_later
    jobs = [job for job in world["publisher"].jobs if job["lead_id"] == lead.id]
    assert [job["task_id"] for job in jobs] == [own.id]


def test_a_lead_not_contacted_in_time_escalates_once_to_its_team_managers(world: dict[str, Any]) -> None:
    manager = make_user(world["users"], world["team"], role=Role.MANAGER)
    rep = make_user(world["users"], world["team"])
    captured_at = ASSIGNED_AT - timedelta(minutes=5)
    lead = assigned_lead(world, rep.sub)
    service(world, lambda: captured_at).start_sla(lead.id, captured_at)
    # A redelivered INSERT starts nothing more.
    assert not service(world, lambda: captured_at).start_sla(lead.id, captured_at + timedelta(seconds=1))
    late = captured_at + timedelta(hours=1, minutes=2)

    def scheduler_run(n: int) -> int:
        checkpoints = IsolatedCheckpoints(world["table"], world["client"], world["checkpoints"])
        follow_ups = service(world, lambda: late)
        return FollowUpScheduler(checkpoints, follow_ups.due_sources(), now=lambda: late).run().fired

    assert sum(run_at_once(5, scheduler_run)) == 1  # one run's conditional write fired it
    timer = world["timers"].get(lead.id)
    assert timer is not None and timer.state is TimerState.FIRED and timer.fired_at == late
    _, activities = world["leads"].get_with_activities(lead.id)
    breached = [a for a in activities if a.type == "sla_breached"]
    assert len(breached) == 1 and breached[0].data["team"] == world["team"]

    jobs = [job for job in world["publisher"].jobs if job["kind"] == "sla_breached"]
    assert {job["event_id"] for job in jobs} == {f"sla:{lead.id}:{timer.model_dump(mode='json')['due_at']}"}
    sender = deliver(world, jobs, late)
    assert [email.to for email in sender.sent] == [manager.email]
    assert sender.sent[0].subject == "SLA missed: Ada Lovelace not contacted yet"
    assert "not been contacted" in sender.sent[0].text and rep.name in sender.sent[0].text


def test_an_escalation_queued_just_before_the_first_contact_is_not_sent(world: dict[str, Any]) -> None:
    make_user(world["users"], world["team"], role=Role.MANAGER)
    lead = make_lead(world["leads"], team=world["team"])
    late = ASSIGNED_AT + timedelta(hours=2)
    service(world, lambda: ASSIGNED_AT).start_sla(lead.id, ASSIGNED_AT)
    timer = world["timers"].get(lead.id)
    assert timer is not None
    service(world, lambda: late).escalate(timer)
    world["leads"].replace(lead.model_copy(update={"lead_status": LeadStatus.CONTACTED}), lead.version, [])

    jobs = [job for job in world["publisher"].jobs if job["lead_id"] == lead.id]
    assert len(jobs) == 1
    assert deliver(world, jobs, late).sent == []


def test_the_checkpoint_never_moves_back(world: dict[str, Any]) -> None:
    checkpoints = IsolatedCheckpoints(world["table"], world["client"], world["checkpoints"])
    checkpoints.put("source", ASSIGNED_AT)
    checkpoints.put("source", ASSIGNED_AT - timedelta(hours=1))  # a slower run finishing late
    assert checkpoints.get("source") == ASSIGNED_AT
    checkpoints.put("source", ASSIGNED_AT + timedelta(minutes=1))
    assert checkpoints.get("source") == ASSIGNED_AT + timedelta(minutes=1)
    assert checkpoints.get(uuid.uuid4().hex) is None
