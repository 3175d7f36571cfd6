"""A person's data on request against Amazon's DynamoDB Local: the export, and an erasure that reaches every
copy (a scan of the whole table, test code only, finds nothing of the person afterwards), is counted once
whatever SQS redelivers, and happens once for twenty concurrent requests."""

import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from crm import bootstrap
from crm.leads.model import (
    Channel,
    Lead,
    LeadStatus,
    LeadSubmission,
    MarketingConsent,
    new_activity,
    new_lead,
)
from crm.leads.repository import LeadRepository
from crm.leads.suppression import Suppression, blocks
from crm.leads.task_repository import TaskRepository
from crm.leads.tasks import new_task
from crm.notifications.repository import DeliveryKey, NotificationRepository
from crm.platform.auth import Principal
from crm.platform.dynamo import marshal
from crm.privacy.model import ErasurePage
from crm.queries.search_repository import DynamoSearchIndex

from devstack.provision import table_definition

pytestmark = pytest.mark.ddblocal

ADMIN = Principal("11111111-1111-4111-8111-000000000001", None, frozenset({"admin"}))
REP = "11111111-1111-4111-8111-0000000000aa"
KEY = "privacy-test-key"


class Pages:
    """The erasure queue in a list (what SqsPublisher would send), drained by the test."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []

    def send(self, queue_url: str, body: dict[str, Any]) -> None:
        self.bodies.append(body)

    def send_many(self, queue_url: str, bodies: list[dict[str, Any]]) -> None:
        self.bodies.extend(bodies)


@pytest.fixture
def privacy(local_aws: dict[str, Any], function_env: Any, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.setenv("PRIVACY_HASH_KEY", KEY)
    function_env("PrivacyFunction")
    service = bootstrap.privacy_service()
    pages = Pages()
    service.publisher = pages
    return {**local_aws, "service": service, "pages": pages}


def drain(stack: dict[str, Any]) -> int:
    pages: Pages = stack["pages"]
    done = 0
    while pages.bodies:
        stack["service"].process_page(ErasurePage.model_validate(pages.bodies.pop(0)))
        done += 1
    return done


def put(stack: dict[str, Any], item: dict[str, Any]) -> None:
    stack["dynamodb"].put_item(TableName=stack["table"], Item=marshal(item))


def person(stack: dict[str, Any], marker: str, company_id: str) -> tuple[Lead, dict[str, str]]:
    """One person through every kind of item that holds their data, written by the repositories that write
    them (capture, merge, chat transcript, behavioural event, scoring ledger, assignment with load and
    notification, task, search index, nurture enrollment and a sent step, idempotency record, conversion)."""
    table, client = stack["table"], stack["dynamodb"]
    leads = LeadRepository(table, client=client)
    now = datetime.now(UTC) - timedelta(minutes=5)
    email = f"ada.{marker}@engines.example"
    phone = f"+44 20 7946 {uuid.uuid4().int % 10000:04d}"
    submission = LeadSubmission(
        channel=Channel.WEBSITE_FORM,
        first_name="Augusta",
        last_name=f"Byron{marker[:6]}",
        email=email,
        lead_source="website",
        submitted_by="website_form",
        phone=phone,
        company="Analytical Engines",
        custom_fields={"note": f"wants {marker}"},
    )
    lead = new_lead(submission, now).model_copy(
        update={
            "assigned_to": REP,
            "marketing_consent": MarketingConsent(
                given=True, at=now, channel="website_form", recorded_by="x"
            ),
        }
    )
    leads.create(lead, [new_activity(lead.id, "form_submitted", "Form", "website_form", now, phone=phone)])
    merged = lead.model_copy(update={"title": "Countess", "updated_at": now, "version": lead.version + 1})
    merged = leads.replace(
        merged,
        lead.version,
        [
            new_activity(lead.id, "lead_merged", "Merged", "website_form", now, changes={"phone": phone}),
            new_activity(lead.id, "chat_transcript", "Chat", "live_chat", now, transcript=f"I am {marker}"),
            new_activity(lead.id, "page_view", "Viewed pricing", "tracker", now, email=email),
        ],
    )
    pk = f"LEAD#{lead.id}"
    put(
        stack,
        {"PK": pk, "SK": "SCORE", "entity": "score", "entries": [{"matched": email}], "lead_id": lead.id},
    )
    put(stack, {"PK": pk, "SK": "EVENT#ev-1", "entity": "event_claim", "lead_id": lead.id})
    put(stack, {"PK": pk, "SK": "ROUTING", "entity": "routing", "state": "assigned", "lead_id": lead.id})
    put(stack, {"PK": pk, "SK": "LOAD", "entity": "load_claim", "user": REP})
    client.update_item(
        TableName=table,
        Key=marshal({"PK": f"USER#{REP}", "SK": "LOAD"}),
        UpdateExpression="SET entity = :e ADD open_leads :one",
        ExpressionAttributeValues=marshal({":e": "load", ":one": 1}),
    )
    deliveries = NotificationRepository(table, client=client)
    delivery = DeliveryKey(lead.id, "lead_assigned", "ev-2", REP)
    deliveries.claim(delivery, now, timedelta(minutes=2))
    deliveries.complete(
        delivery,
        "msg-1",
        new_activity(lead.id, "notification_sent", f"Email: new lead {submission.last_name}", "n", now),
        now,
    )
    nurture = DeliveryKey(lead.id, "nurture_step", "nurture:e1:0", "lead")
    deliveries.claim(nurture, now, timedelta(minutes=2))
    deliveries.complete(
        nurture,
        "msg-2",
        new_activity(lead.id, "nurture_email_sent", "Welcome", "system:nurture", now, message_id="msg-2"),
        now,
    )
    put(stack, {"PK": pk, "SK": "NURTURE", "entity": "nurture_enrollment", "id": "e1", "state": "active"})
    put(stack, {"PK": pk, "SK": "TIMER#speed_to_lead", "entity": "sla_timer", "state": "pending"})
    task = new_task(
        lead.id,
        f"Call {submission.last_name}",
        due_at=now + timedelta(days=1),
        owner=REP,
        created_by="x",
        now=now,
    )
    TaskRepository(table, client=client).create(task, [])
    DynamoSearchIndex(table, client=client).sync(lead.id, merged, merged.version)
    put(
        stack,
        {
            "PK": "IDEMPOTENCY#capture",
            "SK": f"hash-{uuid.uuid4().hex}",
            "data": json.dumps({"status": 201, "body": json.dumps({"id": lead.id})}),
        },
    )
    contact_id, deal_id = str(uuid.uuid4()), str(uuid.uuid4())
    put(
        stack,
        {
            "PK": f"CONTACT#{contact_id}",
            "SK": "CONTACT",
            "entity": "contact",
            "first_name": submission.first_name,
            "last_name": submission.last_name,
            "email": email,
            "phone": phone,
            "lead_id": lead.id,
        },
    )
    put(
        stack,
        {
            "PK": f"DEAL#{deal_id}",
            "SK": "DEAL",
            "entity": "deal",
            "name": f"Analytical Engines - {submission.last_name}",
            "amount": 1000,
            "company_id": company_id,
            "contact_id": contact_id,
        },
    )
    converted = leads.get(lead.id)
    assert converted is not None
    converted = converted.model_copy(
        update={"converted": True, "contact_id": contact_id, "deal_id": deal_id, "company_id": company_id}
    )
    converted = leads.replace(converted, converted.version, [])
    return converted, {
        "email": email,
        "first": submission.first_name,
        "last": submission.last_name,
        "phone": phone,
        "marker": marker,
    }


def scan_for(stack: dict[str, Any], needles: list[str]) -> list[dict[str, Any]]:
    """Every item of the whole table whose text contains any needle (a Scan: test code only)."""
    found: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"TableName": stack["table"], "ConsistentRead": True}
    while True:
        page = stack["dynamodb"].scan(**kwargs)
        for item in page["Items"]:
            text = json.dumps(item).lower()
            if any(needle.lower() in text for needle in needles):
                found.append(item)
        if "LastEvaluatedKey" not in page:
            return found
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def rep_load(stack: dict[str, Any]) -> int:
    item = stack["dynamodb"].get_item(
        TableName=stack["table"], Key=marshal({"PK": f"USER#{REP}", "SK": "LOAD"}), ConsistentRead=True
    )["Item"]
    return int(item["open_leads"]["N"])


def company() -> str:
    return str(uuid.uuid4())


def test_the_export_holds_everything_about_the_person_and_an_unknown_email_is_empty(
    privacy: dict[str, Any],
) -> None:
    marker = uuid.uuid4().hex
    lead, pii = person(privacy, marker, company())

    export = privacy["service"].export(pii["email"], ADMIN)

    text = json.dumps(export, default=str)
    assert export["lead"]["id"] == lead.id and marker in text and pii["phone"] in text
    assert {a["type"] for a in export["activities"]} >= {"chat_transcript", "lead_merged", "form_submitted"}
    assert export["score_ledger"]["entries"] == [{"matched": pii["email"]}]
    assert [t["title"] for t in export["tasks"]] == [f"Call {pii['last']}"]
    assert {e["subject"] for e in export["emails_sent"]} >= {"Welcome"}
    assert export["nurture_enrollment"]["id"] == "e1"
    assert export["consent"]["marketing_consent"]["given"] is True
    assert export["contact"]["email"] == pii["email"] and export["deal"]["amount"] == 1000
    empty = privacy["service"].export(f"nobody-{marker}@example.com", ADMIN)
    assert empty["lead"] is None and empty["activities"] == [] and empty["tasks"] == []
    audits = privacy["service"].repository.audit_records(datetime.now(UTC).strftime("%Y-%m"))
    mine = [a for a in audits if a.get("email_hash") == export["email_hash"]]
    assert mine and mine[0]["action"] == "export" and marker not in json.dumps(audits, default=str)


def test_an_erasure_reaches_every_copy_and_leaves_the_other_person_of_the_company(
    privacy: dict[str, Any],
) -> None:
    shared = company()
    marker, other_marker = uuid.uuid4().hex, uuid.uuid4().hex
    lead, pii = person(privacy, marker, shared)
    other, _other_pii = person(privacy, other_marker, shared)
    load_before = rep_load(privacy)

    job = privacy["service"].request_erasure(pii["email"], "ticket 1", True, ADMIN)
    assert job.state.value == "queued"
    assert drain(privacy) == 1

    done = privacy["service"].get_job(job.id)
    assert done.state.value == "completed" and done.leads_erased == 1 and done.completed_at is not None
    assert done.erased["lead"] == 1 and done.erased["contact"] == 1 and done.erased["task"] == 1
    assert done.erased["activity"] >= 6 and done.erased["search_token"] > 0
    assert done.erased["email_claim"] == 1 and done.erased["idempotency_record"] == 1
    needles = [pii["email"], pii["last"], pii["phone"], marker]
    assert scan_for(privacy, needles) == []
    # The other person of the same company is untouched, the company's deal stays without the person.
    assert len(scan_for(privacy, [other_marker])) >= 4
    assert LeadRepository(privacy["table"], client=privacy["dynamodb"]).get(other.id) == other
    assert rep_load(privacy) == load_before - 1
    job_item = json.dumps(
        privacy["dynamodb"].get_item(
            TableName=privacy["table"], Key=marshal({"PK": f"PRIVACY#{job.id}", "SK": "JOB"})
        )["Item"]
    )
    assert pii["email"] not in job_item and done.email_hash in job_item
    suppression = privacy["service"].suppression.find(pii["email"])
    assert suppression is not None and suppression.active_job is None
    assert blocks(suppression, lead)
    # The person comes back through the website form with consent: a fresh lead, which may be mailed.
    again = bootstrap.capture_service().capture(
        LeadSubmission(
            channel=Channel.WEBSITE_FORM,
            first_name="Augusta",
            last_name=pii["last"],
            email=pii["email"],
            lead_source="website",
            submitted_by="website_form",
            marketing_consent=True,
        )
    )
    assert again.created and again.lead_id != lead.id
    assert not privacy["service"].suppression.blocks(again.lead)
    recorded = privacy["service"].suppression.find(pii["email"])
    assert recorded is not None and recorded.fresh_consent is not None
    assert recorded.fresh_consent.lead_id == again.lead_id


def test_an_email_nobody_has_completes_with_nothing_erased(privacy: dict[str, Any]) -> None:
    job = privacy["service"].request_erasure(
        f"nobody-{uuid.uuid4().hex}@example.com", "ticket 2", False, ADMIN
    )
    drain(privacy)
    done = privacy["service"].get_job(job.id)
    assert done.state.value == "completed" and done.leads_erased == 0 and done.erased == {}


def test_a_converted_lead_keeps_its_contact_without_include_converted(privacy: dict[str, Any]) -> None:
    marker = uuid.uuid4().hex
    _lead, pii = person(privacy, marker, company())
    job = privacy["service"].request_erasure(pii["email"], "ticket 3", False, ADMIN)
    drain(privacy)
    done = privacy["service"].get_job(job.id)
    assert done.contacts_kept == 1 and "contact" not in done.erased
    assert [item["PK"]["S"][:8] for item in scan_for(privacy, [marker, pii["email"]])] == ["CONTACT#"]


def test_a_redelivered_page_changes_nothing_and_a_crash_halfway_resumes(privacy: dict[str, Any]) -> None:
    marker = uuid.uuid4().hex
    _lead, pii = person(privacy, marker, company())
    load_before = rep_load(privacy)
    job = privacy["service"].request_erasure(pii["email"], "ticket 4", True, ADMIN)
    page = ErasurePage.model_validate(privacy["pages"].bodies.pop(0))
    service = privacy["service"]
    # A crash after the lead went but before the rest: the page is delivered again.
    original = service.repository.delete_keys
    calls = {"n": 0}

    def crash_once(keys: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("Lambda timed out")
        original(keys)

    service.repository.delete_keys = crash_once
    with pytest.raises(RuntimeError):
        service.process_page(page)
    service.repository.delete_keys = original
    service.process_page(page)
    first = service.get_job(job.id)
    service.process_page(page)  # redelivered after success
    again = service.get_job(job.id)

    assert first == again and again.leads_erased == 1 and again.erased["lead"] == 1
    assert scan_for(privacy, [pii["email"], marker, pii["phone"]]) == []
    assert rep_load(privacy) == load_before - 1


def test_twenty_concurrent_requests_erase_the_person_once(privacy: dict[str, Any]) -> None:
    marker = uuid.uuid4().hex
    _lead, pii = person(privacy, marker, company())
    load_before = rep_load(privacy)
    service = privacy["service"]

    with ThreadPoolExecutor(max_workers=20) as pool:
        jobs = list(
            pool.map(lambda n: service.request_erasure(pii["email"], f"t{n}", True, ADMIN), range(20))
        )
    bodies = list(privacy["pages"].bodies)
    privacy["pages"].bodies.clear()
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda body: service.process_page(ErasurePage.model_validate(body)), bodies))

    ids = {job.id for job in jobs}
    assert len(ids) == 1, ids
    done = service.get_job(ids.pop())
    assert done.state.value == "completed" and done.leads_erased == 1 and done.erased["lead"] == 1
    assert rep_load(privacy) == load_before - 1
    assert scan_for(privacy, [pii["email"], marker]) == []


def test_the_suppression_blocks_a_partner_resend_but_not_fresh_consent_through_a_form() -> None:
    erased_at = datetime(2026, 12, 1, tzinfo=UTC)
    suppression = Suppression(email_hash="h", suppressed_at=erased_at)
    later = erased_at + timedelta(days=1)
    submission = LeadSubmission(
        channel=Channel.WEBSITE_FORM,
        first_name="A",
        last_name="B",
        email="a@b.example",
        lead_source="website",
        submitted_by="website_form",
    )
    form_lead = new_lead(submission, later).model_copy(
        update={
            "marketing_consent": MarketingConsent(
                given=True, at=later, channel="website_form", recorded_by="f"
            )
        }
    )
    partner_lead = form_lead.model_copy(
        update={
            "marketing_consent": MarketingConsent(
                given=True, at=later, channel="partner_webhook", recorded_by="p"
            )
        }
    )
    old_lead = form_lead.model_copy(update={"created_at": erased_at - timedelta(days=1)})
    assert not blocks(suppression, form_lead)
    assert blocks(suppression, partner_lead) and blocks(suppression, old_lead)
    assert not blocks(None, partner_lead)


@pytest.fixture
def own_table(privacy: dict[str, Any], template: Any, function_env: Any) -> dict[str, Any]:
    """A table of the test's own: retention reads every old lead, and must not see other tests' leads."""
    definition = table_definition(template.tables[0]) | {"TableName": f"retention-{uuid.uuid4().hex[:12]}"}
    privacy["dynamodb"].create_table(**definition)
    privacy["dynamodb"].get_waiter("table_exists").wait(TableName=definition["TableName"])
    function_env.pin(TABLE_NAME=definition["TableName"])
    function_env("PrivacyFunction")
    service = bootstrap.privacy_service()
    service.publisher = privacy["pages"]
    return {**privacy, "table": definition["TableName"], "service": service}


def aged_lead(stack: dict[str, Any], days_old: int, active_days_ago: int, **changes: Any) -> Lead:
    then = datetime.now(UTC) - timedelta(days=days_old)
    submission = LeadSubmission(
        channel=Channel.API,
        first_name="Old",
        last_name=f"Lead{uuid.uuid4().hex[:8]}",
        email=f"old-{uuid.uuid4().hex[:10]}@example.com",
        lead_source="api",
        submitted_by="test",
    )
    lead = new_lead(submission, then).model_copy(update=changes)
    last = datetime.now(UTC) - timedelta(days=active_days_ago)
    LeadRepository(stack["table"], client=stack["dynamodb"]).create(
        lead, [new_activity(lead.id, "page_view", "Viewed", "tracker", last)]
    )
    return lead


def test_retention_erases_only_leads_inactive_that_long_once_a_day(own_table: dict[str, Any]) -> None:
    stack, service = own_table, own_table["service"]
    inactive = aged_lead(stack, 400, 400)
    recently_active = aged_lead(stack, 400, 10)
    converted = aged_lead(stack, 400, 400, lead_status=LeadStatus.CONVERTED, converted=True)
    young = aged_lead(stack, 10, 10)

    assert service.start_retention(0) is None  # off
    job = service.start_retention(365)
    assert job is not None and job.lead_ids == [inactive.id]
    assert service.start_retention(365).id == job.id  # a retried run finds the day's job
    drain(stack)

    done = service.get_job(job.id)
    assert (
        done.state.value == "completed" and done.leads_erased == 1 and done.requested_by == "system:retention"
    )
    leads = LeadRepository(stack["table"], client=stack["dynamodb"])
    assert leads.get(inactive.id) is None
    assert all(leads.get(lead.id) is not None for lead in (recently_active, converted, young))
    assert scan_for(stack, [inactive.email, inactive.last_name]) == []
    assert scan_for(stack, ["SUPPRESSION#"]) == []  # nobody asked: no one is suppressed
    audits = service.repository.audit_records(datetime.now(UTC).strftime("%Y-%m"))
    assert [a["action"] for a in audits if a.get("job_id") == job.id] == ["retention"]
