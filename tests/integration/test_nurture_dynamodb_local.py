"""Nurture under real concurrency, on DynamoDB Local (real conditional writes and transactions): enrollment
from redelivered stream records, an unsubscribe racing the send of a step, a bounce stopping the sequence.

SES is the in-memory fake (tests/nurture_support.py): what is under test here is DynamoDB's side of the races.
"""

import threading
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from crm import bootstrap
from crm.leads.changes import LeadEventsDispatcher
from crm.leads.model import Lead
from crm.leads.repository import LeadRepository
from crm.notifications.repository import DeliveryKey, NotificationRepository
from crm.nurture.do_not_email import DoNotEmailService
from crm.nurture.mailer import NurtureMailer
from crm.nurture.reactions import enroll_in_nurture, stop_nurture
from crm.nurture.repository import NurtureRepository, SendCheck, SendClaim
from crm.nurture.sequences import EnrollmentState, NurtureSequence, StopReason
from crm.nurture.service import NurtureService
from crm.platform import clock

from tests.assignment_support import make_lead, stream_event
from tests.nurture_support import CONSENTED, InMemoryTemplates, RecordingSender, simple_template, tokens
from tests.support import event

pytestmark = pytest.mark.ddblocal

THREADS = 8


class Env:
    def __init__(self, local_aws: dict[str, Any]) -> None:
        self.client, self.table = local_aws["dynamodb"], local_aws["table"]
        self.leads = LeadRepository(self.table, client=self.client)
        self.nurture = NurtureRepository(self.table, client=self.client)
        self.deliveries = NotificationRepository(self.table, client=self.client)
        # Sequences are shared by the session's tests: each test's leads match only its own sequence.
        self.run = uuid.uuid4().hex
        self.sequence = self.nurture.put_sequence(
            NurtureSequence.model_validate(
                {
                    "id": f"test-{self.run[:12]}",
                    "name": "Concurrency test",
                    "priority": 0,
                    "conditions": [{"field": "custom_fields.run", "operator": "equals", "value": self.run}],
                    "steps": [
                        {"delay_hours": 1, "template": "welcome"},
                        {"delay_hours": 48, "template": "welcome"},
                    ],
                    "created_at": clock.now(),
                    "updated_at": clock.now(),
                }
            ),
            expected_version=None,
        )

    def nurture_lead(self) -> Lead:
        return make_lead(
            self.leads,
            score=20,
            grade="F",
            nurture=True,
            custom_fields={"run": self.run},
            marketing_consent=CONSENTED,
        )

    def mailer(self, nurture: NurtureRepository | None = None) -> tuple[NurtureMailer, RecordingSender]:
        sender = RecordingSender()
        mailer = NurtureMailer(
            self.leads,
            nurture or self.nurture,
            self.deliveries,
            sender,
            templates=InMemoryTemplates(simple_template("welcome")),
            tokens=tokens(),
            public_base_url="https://api.example.com",
            sales_threshold=lambda: 70,
            lease=timedelta(seconds=120),
        )
        return mailer, sender

    def activities(self, lead_id: str, type_: str) -> list[Any]:
        found = self.leads.get_with_activities(lead_id)
        assert found is not None
        return [a for a in found[1] if a.type == type_]


@pytest.fixture
def env(local_aws: dict[str, Any], function_env: Any) -> Env:
    function_env("LeadEventsFunction")  # the stream handlers' settings (table, threshold, shards)
    return Env(local_aws)


def together(*calls: Callable[[], Any]) -> list[Any]:
    """Run the calls in threads released at the same moment; their results, or the exceptions they raised."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(index: int, call: Callable[[], Any]) -> None:
        barrier.wait()
        try:
            results[index] = call()
        except Exception as exc:  # surfaced to the test
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


def flip_to_nurture(env: Env) -> tuple[Lead, dict[str, Any]]:
    """A lead just marked nurture, and the stream record of that change."""
    before = make_lead(
        env.leads, score=20, grade="F", custom_fields={"run": env.run}, marketing_consent=CONSENTED
    )
    after = env.leads.replace(before.model_copy(update={"nurture": True}), before.version, [])
    return after, stream_event([("MODIFY", after, before)])["Records"][0]


# ---------------------------------------------------------------- enrollment


def test_concurrent_deliveries_of_the_same_stream_record_enroll_the_lead_once(env: Env) -> None:
    dispatcher = LeadEventsDispatcher([lambda change: enroll_in_nurture(change, bootstrap.nurture_service())])
    flips = [flip_to_nurture(env) for _ in range(4)]

    for lead, record in flips:
        # Eight deliveries of the record at once, while another writer keeps changing the lead.
        def bump(lead: Lead = lead) -> None:
            current = env.leads.get(lead.id)
            assert current is not None
            env.leads.replace(current.model_copy(update={"title": "Changed"}), current.version, [])

        results = together(
            *(lambda r=record: dispatcher.handle(DynamoDBRecord(r)) for _ in range(THREADS)), bump
        )

        assert not [r for r in results if isinstance(r, Exception)], results
        enrollment = env.nurture.get_enrollment(lead.id)
        assert enrollment is not None and enrollment.sequence_id == env.sequence.id
        assert enrollment.state is EnrollmentState.ACTIVE and enrollment.next_step == 0
        (activity,) = env.activities(lead.id, "nurture_enrolled")
        assert activity.data["enrollment_id"] == enrollment.id


def test_the_due_index_holds_active_enrollments_only(env: Env) -> None:
    lead, record = flip_to_nurture(env)
    LeadEventsDispatcher([lambda change: enroll_in_nurture(change, bootstrap.nurture_service())]).handle(
        DynamoDBRecord(record)
    )
    enrollment = env.nurture.get_enrollment(lead.id)
    assert enrollment is not None and enrollment.next_due_at is not None
    window = (enrollment.next_due_at - timedelta(minutes=1), enrollment.next_due_at + timedelta(minutes=1))

    due_before = [e.lead_id for e in env.nurture.due(*window, limit=500)]
    bootstrap.nurture_service().stop(lead.id, StopReason.CONVERTED)
    due_after = [e.lead_id for e in env.nurture.due(*window, limit=500)]

    assert lead.id in due_before and lead.id not in due_after


class RecordingPublisher:
    """The queue port, in memory (no SQS in these tests)."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def send(self, queue_url: str, body: dict[str, Any]) -> None:
        with self.lock:
            self.sent.append(body)

    def send_many(self, queue_url: str, bodies: list[dict[str, Any]]) -> None:
        for body in bodies:
            self.send(queue_url, body)


def test_a_stop_racing_a_fired_step_leaves_the_enrollment_stopped_and_out_of_the_due_index(env: Env) -> None:
    publisher = RecordingPublisher()
    service = NurtureService(
        env.leads, env.nurture, publisher, notification_queue_url="queue", sales_threshold=lambda: 70
    )
    leads = [enrolled_lead(env)[0] for _ in range(6)]

    for lead in leads:
        read = env.nurture.get_enrollment(lead.id)
        assert read is not None
        results = together(
            lambda read=read: service.fire(read),
            lambda lead=lead: service.stop(lead.id, StopReason.CONVERTED),
        )
        assert not [r for r in results if isinstance(r, Exception)], results

        final = env.nurture.get_enrollment(lead.id)
        assert final is not None and final.state is EnrollmentState.STOPPED and final.next_due_at is None
        (stopped,) = env.activities(lead.id, "nurture_stopped")
        assert int(stopped.data["steps_done"]) == final.next_step  # stopped at the step it had reached
        assert final.next_step == (1 if results[0] else 0)
    assert len(publisher.sent) == 6  # each step queued once (the mailer would re-check before sending)


# ---------------------------------------------------------------- an unsubscribe racing a send


class UnsubscribeInTheWindow(NurtureRepository):
    """The mailer's repository, where an unsubscribe commits between the mailer's read of the lead and its
    claim of the email: exactly the window the claim's lead-version check must close."""

    def __init__(self, base: NurtureRepository, unsubscribe: Callable[[], Any]) -> None:
        super().__init__(base.table_name, base.shards, client=base.client)
        self.unsubscribe = unsubscribe
        self.claims: list[SendClaim] = []

    def claim_send(self, delivery: DeliveryKey, check: SendCheck, now: Any, lease: timedelta) -> SendClaim:
        if not self.claims:
            self.unsubscribe()
        claim = super().claim_send(delivery, check, now, lease)
        self.claims.append(claim)
        return claim


def enrolled_lead(env: Env) -> tuple[Lead, str]:
    lead = env.nurture_lead()
    assert bootstrap.nurture_service().enroll(lead.id) == "enrolled"
    enrollment = env.nurture.get_enrollment(lead.id)
    assert enrollment is not None
    stored = env.leads.get(lead.id)
    assert stored is not None
    return stored, f"nurture:{enrollment.id}:0"


def step_job(lead_id: str, event_id: str) -> Any:
    from crm.notifications.messages import NotificationKind, NotificationRequest

    return NotificationRequest(kind=NotificationKind.NURTURE_STEP, lead_id=lead_id, event_id=event_id)


def test_an_unsubscribe_committed_after_the_mailer_read_the_lead_still_wins(env: Env) -> None:
    lead, event_id = enrolled_lead(env)
    unsubscribe = DoNotEmailService(env.leads)
    racing = UnsubscribeInTheWindow(env.nurture, lambda: unsubscribe.unsubscribe(lead.id))
    mailer, sender = env.mailer(racing)

    sent = mailer.deliver(step_job(lead.id, event_id))

    assert sent == 0 and sender.sent == []
    assert racing.claims == [SendClaim.LEAD_CHANGED]  # the claim saw the unsubscribe and sent nothing
    stored = env.leads.get(lead.id)
    assert stored is not None and stored.do_not_email
    enrollment = env.nurture.get_enrollment(lead.id)
    assert enrollment is not None and enrollment.stop_reason is StopReason.UNSUBSCRIBED
    assert env.deliveries.get_status(DeliveryKey(lead.id, "nurture_step", event_id, "lead")) is None


def test_unsubscribes_racing_sends_never_lose_to_a_send_claimed_after_them(env: Env) -> None:
    mailer, sender = env.mailer()
    unsubscribe = DoNotEmailService(env.leads)
    leads = [enrolled_lead(env) for _ in range(12)]

    for lead, event_id in leads:
        results = together(
            lambda lead=lead, event_id=event_id: mailer.deliver(step_job(lead.id, event_id)),
            lambda lead=lead: unsubscribe.unsubscribe(lead.id),
        )
        assert not [r for r in results if isinstance(r, Exception)], results

    sent_to = {email.tags["lead_id"] for email in sender.sent}
    for lead, event_id in leads:
        final = env.leads.get(lead.id)
        assert final is not None and final.do_not_email  # every unsubscribe went through
        delivery = env.deliveries.get_status(DeliveryKey(lead.id, "nurture_step", event_id, "lead"))
        if lead.id in sent_to:
            # Sent only because its claim committed while the lead was still at a version before the
            # do-not-email write (the claim checks the version it read).
            assert delivery is not None and delivery["status"] == "sent"
            assert int(delivery["lead_version"]) < final.version
            assert len(env.activities(lead.id, "nurture_email_sent")) == 1
        else:
            assert delivery is None or delivery["status"] != "sent"
    assert len(sender.sent) == len(sent_to)  # never twice to one lead

    # Whatever the race's outcome, nothing more goes out afterwards.
    for lead, event_id in leads:
        assert mailer.deliver(step_job(lead.id, event_id)) == 0
    assert len(sender.sent) == len(sent_to)


# ---------------------------------------------------------------- a bounce stops the sequence


def test_a_permanent_bounce_marks_the_lead_and_the_stream_stops_its_sequence(
    env: Env, function_env: Any
) -> None:
    lead, _ = enrolled_lead(env)
    function_env("SesEventsFunction")
    bounce = event("ses_nurture_email_bounced.json")
    bounce["detail"]["mail"]["tags"]["lead_id"] = [lead.id]

    assert bootstrap.email_event_recorder().record(bounce) is True
    assert bootstrap.email_event_recorder().record(bounce) is False  # redelivered by EventBridge
    marked = env.leads.get(lead.id)
    assert marked is not None and marked.do_not_email and marked.do_not_email_reason == "bounced"
    assert marked.version == lead.version + 1
    function_env("LeadEventsFunction")
    record = stream_event([("MODIFY", marked, lead)])["Records"][0]
    for _ in range(2):  # the record, and a redelivery of it
        LeadEventsDispatcher([lambda change: stop_nurture(change, bootstrap.nurture_service())]).handle(
            DynamoDBRecord(record)
        )

    enrollment = env.nurture.get_enrollment(lead.id)
    assert enrollment is not None and enrollment.state is EnrollmentState.STOPPED
    assert enrollment.stop_reason is StopReason.BOUNCED and enrollment.next_due_at is None
    (stopped,) = env.activities(lead.id, "nurture_stopped")
    assert stopped.data["reason"] == "bounced"
    assert len(env.activities(lead.id, "do_not_email")) == 1
    item = env.client.get_item(
        TableName=env.table, Key={"PK": {"S": f"LEAD#{lead.id}"}, "SK": {"S": "NURTURE"}}, ConsistentRead=True
    )["Item"]
    assert "GSI2PK" not in item and "GSI2SK" not in item  # out of the due index
