"""Nurture and unsubscribe through the real handlers (sample events from events/), on moto: the sequences API,
the one-click unsubscribe routes, enrollment and stopping from the lead stream, the due-step scheduler, the
nurture email (raw MIME with List-Unsubscribe headers) and SES bounces and complaints."""

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import boto3
import pytest
from crm.leads.model import Lead
from crm.leads.suppression import SuppressionRepository, email_hash, suppression_key
from crm.notifications.repository import DeliveryKey
from crm.nurture.repository import NurtureRepository
from crm.nurture.sequences import (
    EnrollmentState,
    NurtureSequence,
    StopReason,
    default_nurture_sequence,
    enroll,
)
from crm.platform import clock
from crm.platform.dynamo import marshal, unmarshal
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ses.models import RawMessage, ses_backends

from devstack.provision import create_email_templates
from devstack.template import Template
from tests.assignment_support import make_lead, sqs_event, stream_event
from tests.integration.assignment_env import AssignmentAws, assignment_aws_fixture  # noqa: F401
from tests.nurture_support import CONSENTED, UNSUBSCRIBE_KEY, parse_raw, tokens, url_from_header
from tests.support import event, response_json

NOTIFICATION_QUEUE = "leadflow-local-NotificationQueue"
SAMPLE_LEAD = "6f1c1b8e-2a52-4a53-9d8e-3f6f4a1c2b10"
REP_CLAIMS = {"sub": "rep-1", "cognito:groups": "[rep]"}
ADMIN_CLAIMS = {"sub": "admin-1", "cognito:groups": "[admin]"}


@pytest.fixture
def nurture_aws(
    assignment_aws: AssignmentAws, template: Template, monkeypatch: pytest.MonkeyPatch
) -> Iterator[AssignmentAws]:
    """moto with the table, queues, verified senders and the template's SES templates; the unsubscribe and
    privacy keys given directly (reading it from its secret is tested in test_signing_keys.py)."""
    create_email_templates(boto3.client("ses", region_name="us-east-1"), template)
    monkeypatch.setenv("UNSUBSCRIBE_SIGNING_KEY", UNSUBSCRIBE_KEY)
    # The suppression check of erased people (crm.leads.suppression) hashes emails with this key.
    monkeypatch.setenv("PRIVACY_HASH_KEY", "local-privacy-hash-key")
    yield assignment_aws


def nurture_repository(aws: AssignmentAws) -> NurtureRepository:
    return NurtureRepository(aws.table, client=aws.dynamodb)


def raw_emails() -> list[Any]:
    backend = ses_backends[DEFAULT_ACCOUNT_ID]["us-east-1"]
    return [message for message in backend.sent_messages if isinstance(message, RawMessage)]


def activities(aws: AssignmentAws, lead_id: str, type_: str) -> list[Any]:
    found = aws.leads.get_with_activities(lead_id)
    assert found is not None
    return [activity for activity in found[1] if activity.type == type_]


def with_claims(sample: dict[str, Any], claims: dict[str, str]) -> dict[str, Any]:
    sample["requestContext"]["authorizer"]["jwt"]["claims"] = claims
    return sample


def nurture_lead(aws: AssignmentAws, **fields: Any) -> Lead:
    return make_lead(
        aws.leads, score=20, grade="F", nurture=True, **{"marketing_consent": CONSENTED, **fields}
    )


def enrolled(aws: AssignmentAws, lead: Lead, sequence: NurtureSequence | None = None, **changes: Any) -> Any:
    """The lead enrolled (directly, as the stream handler would) in `sequence` (the default one)."""
    sequence = sequence or default_nurture_sequence(clock.now(), "dev")
    enrollment = enroll(lead.id, sequence, clock.now()).model_copy(update=changes)
    from crm.leads.model import new_activity

    activity = new_activity(lead.id, "nurture_enrolled", "test", "test", clock.now())
    nurture_repository(aws).enroll(enrollment, lead.version, activity)
    return enrollment


# ---------------------------------------------------------------- /nurture-sequences


def test_a_manager_adds_a_sequence_and_anyone_signed_in_reads_it(
    nurture_aws: AssignmentAws, invoke: Any
) -> None:
    created = invoke("NurtureApiFunction", event("create_nurture_sequence.json"))

    assert created["statusCode"] == 201, created["body"]
    body = response_json(created)
    assert (
        created["headers"]["ETag"] == '"1"'
        and created["headers"]["Location"] == f"/nurture-sequences/{body['id']}"
    )
    assert [step["template"] for step in body["steps"]] == [
        "leadflow-dev-nurture-welcome",
        "leadflow-dev-nurture-resources",
    ]
    listed = invoke("NurtureApiFunction", event("list_nurture_sequences.json"))
    assert listed["statusCode"] == 200 and [s["id"] for s in response_json(listed)["sequences"]] == [
        body["id"]
    ]
    sample = event("get_nurture_sequence.json", pathParameters={"id": body["id"]})
    sample["rawPath"] = f"/nurture-sequences/{body['id']}"
    one = invoke("NurtureApiFunction", sample)
    assert one["statusCode"] == 200 and response_json(one)["name"] == "Webinar sign-ups"


def test_a_step_whose_template_ses_does_not_have_is_422_naming_that_step(
    nurture_aws: AssignmentAws, invoke: Any
) -> None:
    body = {
        "name": "Typo",
        "steps": [
            {"delay_hours": 1, "template": "leadflow-dev-nurture-welcome"},
            {"delay_hours": 24, "template": "leadflow-dev-nurture-welcom"},
        ],
    }

    response = invoke("NurtureApiFunction", event("create_nurture_sequence.json", body=body))

    assert response["statusCode"] == 422
    assert [f["field"] for f in response_json(response)["fields"]] == ["steps[1].template"]
    assert nurture_repository(nurture_aws).list_sequences() == []


def test_a_sequence_without_steps_or_with_bad_fields_is_422_naming_each(
    nurture_aws: AssignmentAws, invoke: Any
) -> None:
    empty = invoke(
        "NurtureApiFunction", event("create_nurture_sequence.json", body={"name": "x", "steps": []})
    )
    bad = invoke(
        "NurtureApiFunction",
        event(
            "create_nurture_sequence.json",
            body={
                "name": "",
                "priority": -1,
                "steps": [{"delay_hours": "soon", "template": "x"}],
                "extra": 1,
            },
        ),
    )
    malformed = invoke("NurtureApiFunction", event("create_nurture_sequence.json", body="{not json"))

    assert empty["statusCode"] == 422 and [f["field"] for f in response_json(empty)["fields"]] == ["steps"]
    assert bad["statusCode"] == 422
    assert {f["field"] for f in response_json(bad)["fields"]} == {
        "name",
        "priority",
        "steps[0].delay_hours",
        "extra",
    }
    assert malformed["statusCode"] == 400


def test_a_rep_reads_sequences_but_may_not_change_them(nurture_aws: AssignmentAws, invoke: Any) -> None:
    rep_create = with_claims(event("create_nurture_sequence.json"), REP_CLAIMS)
    rep_delete = with_claims(event("delete_nurture_sequence.json"), REP_CLAIMS)

    assert invoke("NurtureApiFunction", rep_create)["statusCode"] == 403
    assert invoke("NurtureApiFunction", rep_delete)["statusCode"] == 403
    assert invoke("NurtureApiFunction", event("list_nurture_sequences.json"))["statusCode"] == 200
    assert nurture_repository(nurture_aws).list_sequences() == []


def test_changes_need_the_version_read_and_valid_templates(nurture_aws: AssignmentAws, invoke: Any) -> None:
    nurture_repository(nurture_aws).put_sequence(default_nurture_sequence(clock.now(), "dev"), None)
    no_version = event("update_nurture_sequence.json")
    no_version["headers"].pop("if-match")

    missing = invoke("NurtureApiFunction", no_version)
    stale = invoke("NurtureApiFunction", event("update_nurture_sequence.json", headers={"If-Match": '"7"'}))
    unknown_template = invoke(
        "NurtureApiFunction",
        event("update_nurture_sequence.json", body={"steps": [{"delay_hours": 1, "template": "gone"}]}),
    )
    nothing = invoke("NurtureApiFunction", event("update_nurture_sequence.json", body={}))
    changed = invoke("NurtureApiFunction", event("update_nurture_sequence.json"))

    assert missing["statusCode"] == 428
    assert stale["statusCode"] == 409 and response_json(stale)["current_version"] == 1
    assert unknown_template["statusCode"] == 422
    assert [f["field"] for f in response_json(unknown_template)["fields"]] == ["steps[0].template"]
    assert nothing["statusCode"] == 422
    assert changed["statusCode"] == 200 and changed["headers"]["ETag"] == '"2"'
    assert response_json(changed)["active"] is False and len(response_json(changed)["steps"]) == 3


def test_deleting_a_sequence(nurture_aws: AssignmentAws, invoke: Any) -> None:
    nurture_repository(nurture_aws).put_sequence(default_nurture_sequence(clock.now(), "dev"), None)

    stale = invoke("NurtureApiFunction", event("delete_nurture_sequence.json", headers={"If-Match": '"3"'}))
    deleted = invoke("NurtureApiFunction", event("delete_nurture_sequence.json"))
    again = invoke("NurtureApiFunction", event("delete_nurture_sequence.json"))
    read = invoke("NurtureApiFunction", event("get_nurture_sequence.json"))

    assert stale["statusCode"] == 409
    assert deleted["statusCode"] == 204 and again["statusCode"] == 404 and read["statusCode"] == 404


# ---------------------------------------------------------------- /unsubscribe


def test_the_link_asks_to_confirm_and_changes_nothing(nurture_aws: AssignmentAws, invoke: Any) -> None:
    # Mail scanners open every link of an email: a GET must not unsubscribe.
    lead = nurture_lead(nurture_aws)
    token = tokens().token_for(lead.id)
    link = event("unsubscribe_link.json", queryStringParameters={"token": token})

    page = invoke("UnsubscribeFunction", link)
    as_json = invoke(
        "UnsubscribeFunction", {**link, "headers": {**link["headers"], "accept": "application/json"}}
    )

    assert page["statusCode"] == 200 and page["headers"]["Content-Type"].startswith("text/html")
    assert (
        "Unsubscribe from our marketing email?" in page["body"]
        and page["headers"]["Cache-Control"] == "no-store"
    )
    assert '<form method="post" action="">' in page["body"] and f'value="{token}"' in page["body"]
    assert "form-action 'self'" in page["headers"]["Content-Security-Policy"]
    assert response_json(as_json)["unsubscribed"] is False
    assert nurture_aws.leads.get(lead.id) == lead
    assert activities(nurture_aws, lead.id, "do_not_email") == []


def test_the_confirmation_button_unsubscribes_and_withdraws_consent(
    nurture_aws: AssignmentAws, invoke: Any
) -> None:
    lead = nurture_lead(nurture_aws)
    token = tokens().token_for(lead.id)
    button = event(
        "unsubscribe_one_click.json",
        queryStringParameters={"token": token},
        body=f"token={token}",
        headers={"content-type": "application/x-www-form-urlencoded", "accept": "text/html"},
    )

    first = invoke("UnsubscribeFunction", button)
    again = invoke("UnsubscribeFunction", button)

    assert first["statusCode"] == 200 and "You are unsubscribed" in first["body"]
    assert again["statusCode"] == 200 and again["body"] == first["body"]
    stored = nurture_aws.leads.get(lead.id)
    assert stored is not None and stored.do_not_email and stored.do_not_email_reason == "unsubscribed"
    assert stored.marketing_consent is not None and stored.marketing_consent.given is False
    assert stored.do_not_email_at is not None and stored.version == lead.version + 1
    (marked,) = activities(nurture_aws, lead.id, "do_not_email")
    assert marked.data["reason"] == "unsubscribed" and marked.created_by == "system:unsubscribe"


def test_the_one_click_post_sample_answers_200_even_for_a_lead_that_does_not_exist(
    nurture_aws: AssignmentAws, invoke: Any
) -> None:
    response = invoke("UnsubscribeFunction", event("unsubscribe_one_click.json"))

    assert response["statusCode"] == 200
    assert response_json(response)["unsubscribed"] is True
    assert nurture_aws.leads.get(SAMPLE_LEAD) is None


def test_one_click_posts_from_mail_clients_and_forms(nurture_aws: AssignmentAws, invoke: Any) -> None:
    form_lead, json_lead, multipart_lead, browser_lead = (nurture_lead(nurture_aws) for _ in range(4))
    one_click = event(
        "unsubscribe_one_click.json", queryStringParameters={"token": tokens().token_for(form_lead.id)}
    )
    json_body = event(
        "unsubscribe_one_click.json",
        queryStringParameters=None,
        body={"token": tokens().token_for(json_lead.id)},
        headers={"content-type": "application/json"},
    )
    boundary = "----leadflow"
    multipart = event(
        "unsubscribe_one_click.json",
        queryStringParameters={"token": tokens().token_for(multipart_lead.id)},
        body=(
            f"--{boundary}\r\n"
            'Content-Disposition: form-data; name="List-Unsubscribe"\r\n\r\n'
            f"One-Click\r\n--{boundary}--\r\n"
        ),
        headers={"content-type": f"multipart/form-data; boundary={boundary}"},
    )
    browser_form = event(
        "unsubscribe_one_click.json",
        queryStringParameters=None,
        body=f"token={quote(tokens().token_for(browser_lead.id))}",
        headers={"accept": "text/html"},
    )

    answers = [invoke("UnsubscribeFunction", e) for e in (one_click, json_body, multipart, browser_form)]

    assert [a["statusCode"] for a in answers] == [200, 200, 200, 200]
    assert answers[3]["headers"]["Content-Type"].startswith("text/html")
    for lead in (form_lead, json_lead, multipart_lead, browser_lead):
        stored = nurture_aws.leads.get(lead.id)
        assert stored is not None and stored.do_not_email


def test_a_missing_forged_or_tampered_token_is_400_naming_token(
    nurture_aws: AssignmentAws, invoke: Any
) -> None:
    lead = nurture_lead(nurture_aws)
    genuine = tokens().token_for(lead.id)
    # An API client: a browser gets a page instead (test_unsubscribe_pages_handlers.py).
    api_client = {"accept": "application/json"}
    cases = [
        event("unsubscribe_link.json", queryStringParameters=None, headers=api_client),
        event(
            "unsubscribe_link.json", queryStringParameters={"token": genuine[:-2] + "xx"}, headers=api_client
        ),
        event(
            "unsubscribe_link.json",
            queryStringParameters={"token": tokens("guessed-key").token_for(lead.id)},
            headers=api_client,
        ),
        event("unsubscribe_one_click.json", queryStringParameters=None),
        event("unsubscribe_one_click.json", queryStringParameters={"token": "drop table leads"}),
    ]

    for sample in cases:
        response = invoke("UnsubscribeFunction", sample)
        assert response["statusCode"] == 400, response["body"]
        assert [f["field"] for f in response_json(response)["fields"]] == ["token"]
    stored = nurture_aws.leads.get(lead.id)
    assert stored is not None and not stored.do_not_email


# ---------------------------------------------------------------- enrollment and stopping (the lead stream)


def test_a_lead_that_becomes_nurture_is_enrolled_once(nurture_aws: AssignmentAws, invoke: Any) -> None:
    nurture_repository(nurture_aws).put_sequence(default_nurture_sequence(clock.now(), "dev"), None)
    before = make_lead(nurture_aws.leads, score=20, grade="F", marketing_consent=CONSENTED)
    after = nurture_aws.leads.replace(before.model_copy(update={"nurture": True}), before.version, [])
    record = stream_event([("MODIFY", after, before)])

    for _ in range(3):  # the first delivery and two redeliveries
        assert invoke("LeadEventsFunction", record) == {"batchItemFailures": []}

    enrollment = nurture_repository(nurture_aws).get_enrollment(after.id)
    assert enrollment is not None and enrollment.state is EnrollmentState.ACTIVE
    assert enrollment.sequence_id == "seed-default-nurture" and enrollment.next_step == 0
    (enrolled_activity,) = activities(nurture_aws, after.id, "nurture_enrolled")
    assert enrolled_activity.data["enrollment_id"] == enrollment.id


def test_leads_that_may_not_be_emailed_or_match_no_sequence_are_not_enrolled(
    nurture_aws: AssignmentAws, invoke: Any
) -> None:
    repository = nurture_repository(nurture_aws)
    webinar_only = NurtureSequence.model_validate(
        {
            **default_nurture_sequence(clock.now(), "dev").model_dump(),
            "conditions": [{"field": "lead_source", "operator": "equals", "value": "webinar"}],
        }
    )
    repository.put_sequence(webinar_only, None)
    unmatched = make_lead(nurture_aws.leads, score=20, grade="F")
    blocked = make_lead(nurture_aws.leads, score=20, grade="F", lead_source="webinar", do_not_email=True)
    changes = []
    for lead in (unmatched, blocked):
        after = nurture_aws.leads.replace(lead.model_copy(update={"nurture": True}), lead.version, [])
        changes.append(("MODIFY", after, lead))

    invoke("LeadEventsFunction", stream_event(changes))

    assert repository.get_enrollment(unmatched.id) is None and repository.get_enrollment(blocked.id) is None


def test_a_lead_that_unsubscribes_leaves_its_sequence(nurture_aws: AssignmentAws, invoke: Any) -> None:
    lead = nurture_lead(nurture_aws)
    enrolled(nurture_aws, lead)
    unsubscribed = nurture_aws.leads.replace(
        lead.model_copy(update={"do_not_email": True, "do_not_email_reason": "unsubscribed"}),
        lead.version,
        [],
    )

    invoke("LeadEventsFunction", stream_event([("MODIFY", unsubscribed, lead)]))

    enrollment = nurture_repository(nurture_aws).get_enrollment(lead.id)
    assert enrollment is not None and enrollment.state is EnrollmentState.STOPPED
    assert enrollment.stop_reason is StopReason.UNSUBSCRIBED and enrollment.next_due_at is None
    (stopped,) = activities(nurture_aws, lead.id, "nurture_stopped")
    assert stopped.data["reason"] == "unsubscribed"


def test_a_lead_assigned_to_a_rep_leaves_its_sequence(nurture_aws: AssignmentAws, invoke: Any) -> None:
    lead = nurture_lead(nurture_aws)
    enrolled(nurture_aws, lead)
    assigned = nurture_aws.leads.replace(
        lead.model_copy(update={"assigned_to": "rep-1", "nurture": False, "score": 75, "grade": "B"}),
        lead.version,
        [],
    )

    invoke("LeadEventsFunction", stream_event([("MODIFY", assigned, lead)]))

    enrollment = nurture_repository(nurture_aws).get_enrollment(lead.id)
    assert enrollment is not None and enrollment.stop_reason is StopReason.ASSIGNED


# ---------------------------------------------------------------- due steps (the follow-up scheduler)


def test_a_due_step_is_queued_once_and_the_enrollment_moves_on(
    nurture_aws: AssignmentAws, invoke: Any
) -> None:
    lead = nurture_lead(nurture_aws)
    due = clock.now() - timedelta(minutes=2)
    enrollment = enrolled(nurture_aws, lead, next_due_at=due)
    repository = nurture_repository(nurture_aws)
    repository.put_sequence(default_nurture_sequence(clock.now(), "dev"), None)

    invoke("FollowUpsFunction", event("follow_ups_schedule.json"))
    invoke("FollowUpsFunction", event("follow_ups_schedule.json"))  # an overlapping run finds nothing due

    jobs = [
        m["body"] for m in nurture_aws.messages("NotificationQueue") if m["body"]["kind"] == "nurture_step"
    ]
    assert [(job["lead_id"], job["event_id"]) for job in jobs] == [(lead.id, f"nurture:{enrollment.id}:0")]
    moved = repository.get_enrollment(lead.id)
    assert moved is not None and moved.next_step == 1 and moved.state is EnrollmentState.ACTIVE
    assert moved.next_due_at is not None and moved.next_due_at > clock.now() + timedelta(hours=71)


# ---------------------------------------------------------------- the email


def step_job(lead_id: str, enrollment_id: str, step: int = 0) -> dict[str, Any]:
    return {"kind": "nurture_step", "lead_id": lead_id, "event_id": f"nurture:{enrollment_id}:{step}"}


def test_a_nurture_step_sends_the_rendered_template_with_one_click_unsubscribe_once(
    nurture_aws: AssignmentAws, invoke: Any
) -> None:
    lead = nurture_lead(nurture_aws, first_name="Zoë", company="Acme & Co")
    enrollment = enrolled(nurture_aws, lead)
    job = sqs_event([step_job(lead.id, enrollment.id)], NOTIFICATION_QUEUE)

    for _ in range(3):  # the job delivered three times
        assert invoke("NotificationFunction", job) == {"batchItemFailures": []}

    (sent,) = raw_emails()
    message = parse_raw(sent.raw_data)
    assert sent.source == "leads@leadflow.local" and lead.email in sent.destinations
    assert message["Subject"] == "Thanks for your interest, Zoë"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    link = url_from_header(message["List-Unsubscribe"])
    assert link == f"http://127.0.0.1:3000/unsubscribe?token={quote(tokens().token_for(lead.id), safe='')}"
    html_part, text_part = message.get_body(("html",)), message.get_body(("plain",))
    assert html_part is not None and text_part is not None
    assert (
        "on behalf of Acme &amp; Co" in html_part.get_content()
        and f'href="{link}"' in html_part.get_content()
    )
    assert "on behalf of Acme & Co" in text_part.get_content() and link in text_part.get_content()
    (recorded,) = activities(nurture_aws, lead.id, "nurture_email_sent")
    assert recorded.data["step"] == 1 and recorded.data["template"] == "leadflow-dev-nurture-welcome"
    delivery = nurture_aws.deliveries.get_status(DeliveryKey(lead.id, "nurture_step", job_event(job), "lead"))
    assert delivery is not None and delivery["status"] == "sent"


def test_an_erased_person_resent_by_a_partner_is_never_mailed_but_fresh_form_consent_is(
    nurture_aws: AssignmentAws, invoke: Any
) -> None:
    """The suppression item of an erased person (crm.leads.suppression) stops the nurture sender; a lead made
    after the erasure through a public form with consent is new consent, recorded in the suppression."""
    erased_at = clock.now() - timedelta(hours=1)
    after = {"created_at": clock.now(), "updated_at": clock.now()}
    resent = nurture_lead(
        nurture_aws,
        **after,
        marketing_consent={
            "given": True,
            "at": clock.now(),
            "channel": "partner_webhook",
            "recorded_by": "p",
        },
    )
    fresh = nurture_lead(
        nurture_aws,
        **after,
        marketing_consent={"given": True, "at": clock.now(), "channel": "website_form", "recorded_by": "f"},
    )
    for lead in (resent, fresh):
        hashed = email_hash(lead.email, b"local-privacy-hash-key")
        nurture_aws.dynamodb.put_item(
            TableName=nurture_aws.table,
            Item=marshal(
                {**suppression_key(hashed), "email_hash": hashed, "suppressed_at": clock.isoformat(erased_at)}
            ),
        )
    jobs = [step_job(lead.id, enrolled(nurture_aws, lead).id) for lead in (resent, fresh)]

    assert invoke("NotificationFunction", sqs_event(jobs, NOTIFICATION_QUEUE)) == {"batchItemFailures": []}

    assert [set(sent.destinations) for sent in raw_emails()] == [{fresh.email}]
    assert activities(nurture_aws, resent.id, "nurture_email_sent") == []
    stored = SuppressionRepository(nurture_aws.table, client=nurture_aws.dynamodb).get(
        email_hash(fresh.email, b"local-privacy-hash-key")
    )
    assert stored is not None and stored.fresh_consent is not None
    assert (stored.fresh_consent.lead_id, stored.fresh_consent.channel) == (fresh.id, "website_form")


def job_event(sqs: dict[str, Any]) -> str:
    return str(json.loads(sqs["Records"][0]["body"])["event_id"])


def test_a_lead_marked_do_not_email_after_its_step_was_queued_gets_nothing(
    nurture_aws: AssignmentAws, invoke: Any
) -> None:
    lead = nurture_lead(nurture_aws)
    enrollment = enrolled(nurture_aws, lead)
    nurture_aws.leads.replace(
        lead.model_copy(update={"do_not_email": True, "do_not_email_reason": "unsubscribed"}),
        lead.version,
        [],
    )

    response = invoke(
        "NotificationFunction", sqs_event([step_job(lead.id, enrollment.id)], NOTIFICATION_QUEUE)
    )

    assert response == {"batchItemFailures": []} and raw_emails() == []
    stopped = nurture_repository(nurture_aws).get_enrollment(lead.id)
    assert stopped is not None and stopped.stop_reason is StopReason.UNSUBSCRIBED


def test_a_job_of_a_stopped_or_replaced_enrollment_sends_nothing(
    nurture_aws: AssignmentAws, invoke: Any
) -> None:
    lead = nurture_lead(nurture_aws)
    enrollment = enrolled(nurture_aws, lead)
    other_enrollment = "0b5e8f2a-3c4d-4e6f-8a9b-1c2d3e4f5a6b"

    invoke("NotificationFunction", sqs_event([step_job(lead.id, other_enrollment)], NOTIFICATION_QUEUE))
    invoke("NotificationFunction", sqs_event([step_job(lead.id, enrollment.id, step=7)], NOTIFICATION_QUEUE))
    invoke("NotificationFunction", event("notification_nurture_step.json"))  # a lead this table does not have

    assert raw_emails() == []
    assert nurture_aws.messages("NotificationDeadLetterQueue") == []


# ---------------------------------------------------------------- SES bounces and complaints


def ses_event(lead_id: str, **changes: Any) -> dict[str, Any]:
    sample = event("ses_nurture_email_bounced.json")
    sample["detail"]["mail"]["tags"]["lead_id"] = [lead_id]
    for key, value in changes.items():
        sample[key] = value
    return sample


def test_a_permanent_bounce_or_a_complaint_marks_the_lead_do_not_email_once(
    nurture_aws: AssignmentAws, invoke: Any
) -> None:
    bounced, complained, transient = (nurture_lead(nurture_aws) for _ in range(3))
    complaint = ses_event(complained.id, **{"detail-type": "Email Complaint Received"})
    complaint["detail"]["complaint"] = {
        "complaintFeedbackType": "abuse",
        "timestamp": "2026-11-25T09:41:00.000Z",
    }
    soft = ses_event(transient.id)
    soft["detail"]["bounce"]["bounceType"] = "Transient"

    for sample in (ses_event(bounced.id), ses_event(bounced.id), complaint, soft):
        invoke("SesEventsFunction", sample)

    marked = nurture_aws.leads.get(bounced.id)
    assert marked is not None and marked.do_not_email and marked.do_not_email_reason == "bounced"
    assert len(activities(nurture_aws, bounced.id, "do_not_email")) == 1
    assert len(activities(nurture_aws, bounced.id, "email_bounced")) == 1
    spam = nurture_aws.leads.get(complained.id)
    assert spam is not None and spam.do_not_email_reason == "complained"
    still = nurture_aws.leads.get(transient.id)
    assert still is not None and not still.do_not_email


def test_a_bounce_of_a_staff_notification_marks_no_lead(nurture_aws: AssignmentAws, invoke: Any) -> None:
    lead = nurture_lead(nurture_aws)
    sample = event("ses_email_bounced.json")  # audience staff: the rep's address bounced
    sample["detail"]["mail"]["tags"]["lead_id"] = [lead.id]

    invoke("SesEventsFunction", sample)

    stored = nurture_aws.leads.get(lead.id)
    assert stored is not None and not stored.do_not_email


def test_the_admin_sees_do_not_email_on_the_lead(nurture_aws: AssignmentAws, invoke: Any) -> None:
    lead = nurture_lead(nurture_aws)
    invoke(
        "UnsubscribeFunction",
        event("unsubscribe_one_click.json", queryStringParameters={"token": tokens().token_for(lead.id)}),
    )
    sample = event("get_lead.json", pathParameters={"id": lead.id}, rawPath=f"/leads/{lead.id}")
    sample["requestContext"]["authorizer"]["jwt"]["claims"] = ADMIN_CLAIMS

    response = invoke("LeadsApiFunction", sample)

    body = response_json(response)
    assert response["statusCode"] == 200 and body["do_not_email"] is True
    assert body["do_not_email_reason"] == "unsubscribed" and body["do_not_email_at"]
    assert (
        body["marketing_consent"]["given"] is False and body["marketing_consent"]["channel"] == "unsubscribe"
    )


def test_sequence_changes_record_who_made_them(nurture_aws: AssignmentAws, invoke: Any) -> None:
    nurture_repository(nurture_aws).put_sequence(default_nurture_sequence(clock.now(), "dev"), None)
    manager = "user:5f0b7c1e-0a11-4d2b-9a01-000000000002"  # the sample events' caller

    changed = invoke("NurtureApiFunction", event("update_nurture_sequence.json"))
    stale = invoke("NurtureApiFunction", event("delete_nurture_sequence.json", headers={"If-Match": '"1"'}))
    deleted = invoke("NurtureApiFunction", event("delete_nurture_sequence.json", headers={"If-Match": '"2"'}))

    assert changed["statusCode"] == 200 and response_json(changed)["updated_by"] == manager
    assert stale["statusCode"] == 409 and response_json(stale)["current_version"] == 2
    assert deleted["statusCode"] == 204
    trail = nurture_aws.dynamodb.query(
        TableName=nurture_aws.table,
        KeyConditionExpression="PK = :pk",
        ExpressionAttributeValues={":pk": {"S": "AUDIT#nurture_sequences"}},
    )["Items"]
    entries = [unmarshal(item) for item in trail]
    assert [(e["action"], e["actor"], e["record_id"]) for e in entries] == [
        ("updated", manager, "seed-default-nurture"),
        ("deleted", manager, "seed-default-nurture"),
    ]
    assert entries[0]["changes"]["active"] == {"old": True, "new": False}
