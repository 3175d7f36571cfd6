"""The notification function on moto's SQS and SES: one email per event, retries through the queue, DLQ."""

import json
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError
from crm.notifications.repository import DeliveryKey
from crm.platform import aws as crm_aws
from crm.platform.auth import Role

from devstack.template import Template
from tests.assignment_support import make_lead, make_user, sqs_event, sqs_event_from_messages
from tests.integration.assignment_env import AssignmentAws, assignment_aws_fixture, sent_emails  # noqa: F401
from tests.support import FakeLambdaContext, event, load_handler

NOTIFICATION_QUEUE = "leadflow-local-NotificationQueue"


def assigned_job(lead_id: str, rep: str, at: str = "2026-11-25T09:36:21.000000Z") -> dict[str, Any]:
    return {"kind": "lead_assigned", "lead_id": lead_id, "recipient": rep, "event_id": f"assigned:{rep}:{at}"}


def assigned_lead(aws: AssignmentAws, **fields: Any) -> tuple[Any, Any]:
    rep = make_user(aws.users, "sales", name="Riley Rep")
    lead = make_lead(aws.leads, **fields)
    stored = aws.leads.replace(
        lead.model_copy(update={"assigned_to": rep.sub, "team": "sales"}), lead.version, []
    )
    return stored, rep


def test_the_rep_gets_an_email_with_the_lead_and_a_link(assignment_aws: AssignmentAws, invoke: Any) -> None:
    lead, rep = assigned_lead(assignment_aws, first_name="<script>alert(1)</script>", company="Acme & Sons")

    response = invoke("NotificationFunction", sqs_event([assigned_job(lead.id, rep.sub)], NOTIFICATION_QUEUE))

    assert response == {"batchItemFailures": []}
    (email,) = sent_emails()
    assert email.destinations["ToAddresses"] == [rep.email]
    assert email.source == "leads@leadflow.local"
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in email.body and "<script>" not in email.body
    assert "Acme &amp; Sons" in email.body and "75 (B)" in email.body and "website_form" in email.body
    assert f'href="http://localhost:3000/app/#/leads/{lead.id}"' in email.body  # PublicConsoleUrl's lead page
    assert email.subject == "New lead assigned to you: <script>alert(1)</script> Lovelace (Acme & Sons)"
    found = assignment_aws.leads.get_with_activities(lead.id)
    assert found is not None
    (sent,) = [a for a in found[1] if a.type == "notification_sent"]
    assert sent.data["recipient"] == rep.sub and sent.data["kind"] == "lead_assigned"


def test_the_sample_notification_job_is_delivered(assignment_aws: AssignmentAws, invoke: Any) -> None:
    sample = event("notification_job.json")
    response = invoke("NotificationFunction", sample)

    # The sample names a lead this empty table does not have: nothing to send, nothing to retry.
    assert response == {"batchItemFailures": []}
    assert sent_emails() == []


def test_redelivering_every_message_twice_sends_no_duplicate_email(
    assignment_aws: AssignmentAws, invoke: Any
) -> None:
    aws = assignment_aws
    jobs = []
    for _ in range(5):
        lead, rep = assigned_lead(aws)
        jobs.append(assigned_job(lead.id, rep.sub))

    for _ in range(3):  # the first delivery and two redeliveries of each message
        invoke("NotificationFunction", sqs_event(jobs, NOTIFICATION_QUEUE))

    emails = sent_emails()
    assert len(emails) == 5
    assert len({tuple(email.destinations["ToAddresses"]) for email in emails}) == 5


def test_a_lead_reassigned_before_its_email_sends_nothing_stale(
    assignment_aws: AssignmentAws, invoke: Any
) -> None:
    lead, first_rep = assigned_lead(assignment_aws)
    other = make_user(assignment_aws.users, "sales")
    assignment_aws.leads.replace(lead.model_copy(update={"assigned_to": other.sub}), lead.version, [])

    invoke("NotificationFunction", sqs_event([assigned_job(lead.id, first_rep.sub)], NOTIFICATION_QUEUE))

    assert sent_emails() == []


def test_an_unassigned_lead_alert_goes_to_the_teams_active_managers(
    assignment_aws: AssignmentAws, invoke: Any
) -> None:
    aws = assignment_aws
    managers = [make_user(aws.users, "sales", role=Role.MANAGER) for _ in range(2)]
    make_user(aws.users, "sales", role=Role.MANAGER, active=False)
    make_user(aws.users, "sales")
    lead = make_lead(aws.leads)
    job = {"kind": "unassigned_lead", "lead_id": lead.id, "team": "sales", "event_id": "waiting:2026-11-25"}

    invoke("NotificationFunction", sqs_event([job, job], NOTIFICATION_QUEUE))

    emails = sent_emails()
    assert sorted(e.destinations["ToAddresses"][0] for e in emails) == sorted(m.email for m in managers)
    assert all(e.subject.startswith("Unassigned lead waiting in sales: ") for e in emails)


def test_an_assignee_without_a_user_record_goes_to_the_dead_letter_queue_with_the_reason(
    assignment_aws: AssignmentAws, invoke: Any
) -> None:
    aws = assignment_aws
    lead = make_lead(aws.leads)
    ghost = "0b9f4b7e-0000-4000-8000-00000000dead"
    aws.leads.replace(lead.model_copy(update={"assigned_to": ghost}), lead.version, [])

    response = invoke("NotificationFunction", sqs_event([assigned_job(lead.id, ghost)], NOTIFICATION_QUEUE))

    assert response == {"batchItemFailures": []}
    (dead,) = aws.messages("NotificationDeadLetterQueue")
    assert (
        dead["attributes"]["failure_reason"] == f"The assignee {ghost} has no user record (no email address)"
    )
    assert dead["body"]["lead_id"] == lead.id


# ---------------------------------------------------------------- faults, through a real queue


class ThrottledSes:
    """Wraps the cached SES v2 client: the first `failures` sends are throttled, as SES answers under load."""

    def __init__(self, failures: int, always_failing: set[str] | None = None) -> None:
        self.failures = failures
        self.always_failing = always_failing or set()
        self.calls = 0

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        client = crm_aws.client("sesv2")
        real_send = client.send_email

        def send_email(**request: Any) -> Any:
            self.calls += 1
            recipient = request["Destination"]["ToAddresses"][0]
            if self.calls <= self.failures or recipient in self.always_failing:
                raise ClientError(
                    {
                        "Error": {
                            "Code": "TooManyRequestsException",
                            "Message": "Maximum sending rate exceeded.",
                        }
                    },
                    "SendEmail",
                )
            return real_send(**request)

        monkeypatch.setattr(client, "send_email", send_email)


Handler = Callable[[dict[str, Any]], dict[str, Any]]


def drain(aws: AssignmentAws, handler: Handler, queue: str = "NotificationQueue", rounds: int = 60) -> int:
    """Run the queue as Lambda's event source mapping does: receive batches of up to 10, invoke, delete the
    successes; failures come back when their visibility timeout (set by the function's backoff) ends."""
    url, arn = aws.queue_urls[queue], aws.queue_arns[queue]
    invocations = 0
    for _ in range(rounds):
        messages = aws.sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"], WaitTimeSeconds=0
        ).get("Messages", [])
        if not messages:
            attributes = aws.sqs.get_queue_attributes(
                QueueUrl=url,
                AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
            )["Attributes"]
            if (
                attributes["ApproximateNumberOfMessages"]
                == attributes["ApproximateNumberOfMessagesNotVisible"]
                == "0"
            ):
                return invocations
            continue
        response = handler(sqs_event_from_messages(messages, arn))
        invocations += 1
        failed = {item["itemIdentifier"] for item in response.get("batchItemFailures", [])}
        for message in messages:
            if message["MessageId"] not in failed:
                aws.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    raise AssertionError("the queue did not drain")


@pytest.fixture
def notifier(assignment_aws: AssignmentAws, template: Template, function_env: Any) -> Callable[..., Handler]:
    """The notification function, loaded once (one warm execution environment) with its template environment;
    its backoff starts at 0 s here (10 s in the template), so retries come back at once."""

    def start(**overrides: str) -> Handler:
        function = template.function("NotificationFunction")
        function_env("NotificationFunction", RETRY_BASE_SECONDS="0", **overrides)
        handler = load_handler(function, copy=1)
        return lambda event: handler(event, FakeLambdaContext(function_name=function.name))

    return start


def test_ses_throttling_delays_emails_but_every_one_goes_out_exactly_once(
    assignment_aws: AssignmentAws, notifier: Callable[..., Handler], monkeypatch: pytest.MonkeyPatch
) -> None:
    aws = assignment_aws
    jobs = []
    for _ in range(12):
        lead, rep = assigned_lead(aws)
        jobs.append(assigned_job(lead.id, rep.sub))
    url = aws.queue_urls["NotificationQueue"]
    for job in jobs:
        aws.sqs.send_message(QueueUrl=url, MessageBody=json.dumps(job))
    handler = notifier()
    ses = ThrottledSes(failures=7)
    ses.install(monkeypatch)

    invocations = drain(aws, handler)

    emails = sent_emails()
    assert len(emails) == 12
    assert sorted(e.destinations["ToAddresses"][0] for e in emails) == sorted(
        aws.users.get(job["recipient"]).email  # type: ignore[union-attr]
        for job in jobs
    )
    assert ses.calls == 12 + 7
    assert invocations >= 2
    assert aws.messages("NotificationDeadLetterQueue") == []


def test_a_poison_message_ends_in_the_dead_letter_queue_after_max_receive_count_and_the_batch_goes_on(
    assignment_aws: AssignmentAws, notifier: Callable[..., Handler], monkeypatch: pytest.MonkeyPatch
) -> None:
    aws = assignment_aws
    jobs, poisoned = [], None
    for index in range(10):
        lead, rep = assigned_lead(aws)
        jobs.append(assigned_job(lead.id, rep.sub))
        if index == 4:
            poisoned = rep
    assert poisoned is not None
    url = aws.queue_urls["NotificationQueue"]
    aws.sqs.send_message_batch(
        QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": json.dumps(j)} for i, j in enumerate(jobs)]
    )
    handler = notifier()
    ThrottledSes(failures=0, always_failing={poisoned.email}).install(monkeypatch)

    drain(aws, handler)

    assert sorted(e.destinations["ToAddresses"][0] for e in sent_emails()) == sorted(
        aws.users.get(job["recipient"]).email  # type: ignore[union-attr]
        for job in jobs
        if job["recipient"] != poisoned.sub
    )
    (dead,) = aws.messages("NotificationDeadLetterQueue")
    assert dead["body"]["recipient"] == poisoned.sub
    assert dead["attributes"]["receive_count"] == "5"  # the queue's maxReceiveCount
    assert (
        dead["attributes"]["failure_reason"]
        == "SES is not accepting mail right now (TooManyRequestsException)"
    )
    assert dead["attributes"]["source_queue"].endswith(":leadflow-local-NotificationQueue")
    # What the delivery record says about it.
    status = aws.deliveries.get_status(
        DeliveryKey(dead["body"]["lead_id"], "lead_assigned", dead["body"]["event_id"], poisoned.sub)
    )
    assert status is not None and status["status"] == "failed" and int(status["attempts"]) == 5


def test_a_crashing_consumer_still_loses_nothing_sqs_redrives_after_max_receive_count(
    assignment_aws: AssignmentAws, notifier: Callable[..., Handler], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the consumer's own dead-lettering (no DLQ URL), SQS's redrive still moves the message."""
    aws = assignment_aws
    lead, rep = assigned_lead(aws)
    url = aws.queue_urls["NotificationQueue"]
    aws.sqs.send_message(QueueUrl=url, MessageBody=json.dumps(assigned_job(lead.id, rep.sub)))
    handler = notifier(DEAD_LETTER_QUEUE_URL="")
    ThrottledSes(failures=0, always_failing={rep.email}).install(monkeypatch)

    drain(aws, handler)

    (dead,) = aws.messages("NotificationDeadLetterQueue")
    assert dead["body"]["lead_id"] == lead.id
    assert "failure_reason" not in dead["attributes"]
    assert sent_emails() == []
