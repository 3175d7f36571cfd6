"""Domain events: which business facts a stream record stands for, their ids, and their JSON Schemas."""

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from crm.integrations.bus import InMemoryBus, entry
from crm.integrations.events import EVENT_NAMES, StreamChange, domain_events
from crm.integrations.publisher import DomainEventPublisher
from crm.integrations.repository import InMemoryPublishedEvents
from crm.platform.dynamo import marshal

SCHEMAS = Path(__file__).resolve().parents[2] / "events" / "schemas"


def schema(name: str) -> dict[str, Any]:
    return json.loads((SCHEMAS / f"{name}.json").read_text())


def as_published(event: Any) -> dict[str, Any]:
    """What a rule target receives for the event: source, detail-type and the detail as JSON."""
    raw = entry(event, "bus")
    return {"source": raw["Source"], "detail-type": raw["DetailType"], "detail": json.loads(raw["Detail"])}


def validate(event: Any) -> None:
    jsonschema.validate(as_published(event), schema(event.name), format_checker=jsonschema.FormatChecker())


LEAD = {
    "entity": "lead",
    "id": "L1",
    "first_name": "Ada",
    "last_name": "Lovelace",
    "email": "ada@example.com",
    "lead_source": "website",
    "lead_status": "new",
    "score": 0,
    "grade": None,
    "qualified": False,
    "converted": False,
    "do_not_email": False,
    "custom_fields": {},
    "created_at": "2026-01-01T10:00:00Z",
    "updated_at": "2026-01-01T10:00:00Z",
    "version": 1,
}


def modify(seq: str, **changes: Any) -> StreamChange:
    new = {**LEAD, **changes, "updated_at": "2026-01-02T10:00:00Z"}
    return StreamChange("MODIFY", new, LEAD, seq)


def test_every_event_has_a_schema_and_every_schema_an_event() -> None:
    assert sorted(path.name.removesuffix(".json") for path in SCHEMAS.glob("*.json")) == sorted(EVENT_NAMES)
    for name in EVENT_NAMES:
        jsonschema.Draft202012Validator.check_schema(schema(name))


def test_a_new_lead_is_captured_with_its_fields() -> None:
    [event] = domain_events(StreamChange("INSERT", LEAD, {}, "100"))
    assert event.name == "lead.captured"
    assert event.detail["changes"]["email"] == {"old": None, "new": "ada@example.com"}
    assert event.detail["occurred_at"] == "2026-01-01T10:00:00Z"
    validate(event)


def test_one_change_can_be_several_facts_each_with_its_old_and_new_values() -> None:
    change = modify(
        "200",
        lead_status="converted",
        converted=True,
        contact_id="C1",
        company_id="CO1",
        deal_id="D1",
        qualified=True,
        qualified_at="2026-01-02T10:00:00Z",
    )
    events = {event.name: event for event in domain_events(change)}
    assert sorted(events) == ["lead.converted", "lead.qualified", "lead.status_changed"]
    converted = events["lead.converted"].detail
    assert (converted["contact_id"], converted["company_id"], converted["deal_id"]) == ("C1", "CO1", "D1")
    assert events["lead.status_changed"].detail["changes"] == {
        "lead_status": {"old": "new", "new": "converted"}
    }
    for event in events.values():
        validate(event)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"grade": "A", "score": 90}, ["lead.scored"]),
        ({"score": 5}, []),  # a score change within the same grade is no fact for other tools
        ({"assigned_to": "u1", "team": "sales"}, ["lead.assigned"]),
        ({"do_not_email": True, "do_not_email_reason": "unsubscribed"}, ["lead.unsubscribed"]),
        ({"title": "CTO"}, []),
    ],
)
def test_facts_of_a_change(changes: dict[str, Any], expected: list[str]) -> None:
    events = domain_events(modify("300", **changes))
    assert [event.name for event in events] == expected
    for event in events:
        validate(event)


def test_an_erased_lead_carries_ids_only() -> None:
    old = {**LEAD, "contact_id": "C1", "phone": "+441234"}
    [event] = domain_events(StreamChange("REMOVE", {}, old, "400"))
    assert event.name == "lead.erased"
    text = json.dumps(event.detail)
    assert "ada" not in text.lower() and "lovelace" not in text.lower() and "+441234" not in text
    assert event.detail["contact_id"] == "C1"
    validate(event)


def test_a_merge_is_published_from_its_activity() -> None:
    activity = {
        "entity": "activity",
        "id": "A1",
        "lead_id": "L1",
        "type": "submission_merged",
        "created_at": "2026-01-03T10:00:00Z",
        "data": {
            "channel": "website_form",
            "source": "website",
            "changes": {"phone": {"old": None, "new": "1"}},
        },
    }
    [event] = domain_events(StreamChange("INSERT", activity, {}, "500"))
    assert (event.name, event.lead_id, event.detail["changes"]) == (
        "lead.merged",
        "L1",
        {"phone": {"old": None, "new": "1"}},
    )
    validate(event)
    other = {**activity, "type": "email_opened"}
    assert domain_events(StreamChange("INSERT", other, {}, "501")) == []


def stream_record(event_name: str, new: dict[str, Any], old: dict[str, Any], seq: str) -> DynamoDBRecord:
    dynamodb: dict[str, Any] = {"SequenceNumber": seq, "ApproximateCreationDateTime": 1767261600}
    if new:
        dynamodb["NewImage"] = marshal(new)
    if old:
        dynamodb["OldImage"] = marshal(old)
    return DynamoDBRecord({"eventID": seq, "eventName": event_name, "dynamodb": dynamodb})


def test_a_redelivered_record_publishes_nothing_again_and_ids_are_stable() -> None:
    bus = InMemoryBus()
    publisher = DomainEventPublisher(bus, InMemoryPublishedEvents())
    record = stream_record("INSERT", LEAD, {}, "600")

    first = publisher.handle(record)
    again = publisher.handle(record)

    assert [event.name for event in first] == ["lead.captured"] and again == []
    assert len(bus.published) == 1
    # Another publisher (a fresh dedupe window) derives the same id: consumers can still drop it.
    fresh = DomainEventPublisher(InMemoryBus(), InMemoryPublishedEvents()).handle(record)
    assert fresh[0].id == first[0].id
    other = DomainEventPublisher(InMemoryBus(), InMemoryPublishedEvents()).handle(
        stream_record("INSERT", LEAD, {}, "601")
    )
    assert other[0].id != first[0].id
