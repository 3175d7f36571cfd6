"""Domain events: the business facts a lead change stands for, as plain Python (no AWS).

One stream record of the table becomes zero or more events, one per business fact: `lead.captured`,
`lead.merged`, `lead.scored` (grade changed), `lead.assigned`, `lead.status_changed`, `lead.qualified`,
`lead.converted`, `lead.unsubscribed`, `lead.erased`. Each event's `detail` is a versioned shape
(`schema_version`) with `id`, `lead_id`, `occurred_at` and the changed fields as `{"old", "new"}`; its JSON
Schema is `events/schemas/<name>.json`. The id is derived from the stream record (the record's sequence
number, or the activity's id), so a redelivered record yields the same ids and consumers can drop duplicates.
"""

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from crm.platform import clock

SOURCE = "leadflow"
SCHEMA_VERSION = 1
EVENT_NAMES = (
    "lead.captured",
    "lead.merged",
    "lead.scored",
    "lead.assigned",
    "lead.status_changed",
    "lead.qualified",
    "lead.converted",
    "lead.unsubscribed",
    "lead.erased",
)
# Outbound webhooks may also send this one (POST /webhook-subscriptions/{id}/test); it is never on the bus.
PING = "ping"

_NAMESPACE = uuid.UUID("5d7c4bfa-7a43-4d4e-9d55-0c1b8f0b5e17")

# What lead.captured tells about the new lead (its business fields; ids of records come with conversion).
CAPTURED_FIELDS = (
    "first_name",
    "last_name",
    "email",
    "phone",
    "company",
    "title",
    "industry",
    "employee_count",
    "annual_revenue",
    "lead_source",
    "lead_status",
    "custom_fields",
)
# Ids only: an erased lead's event carries nothing personal.
ERASED_IDS = ("contact_id", "company_id", "deal_id")


@dataclass(frozen=True)
class DomainEvent:
    id: str
    name: str
    lead_id: str
    occurred_at: str
    changes: dict[str, dict[str, Any]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def detail(self) -> dict[str, Any]:
        """The event's `detail`, as published and as its JSON Schema describes it."""
        return {
            "schema_version": SCHEMA_VERSION,
            "id": self.id,
            "type": self.name,
            "lead_id": self.lead_id,
            "occurred_at": self.occurred_at,
            "changes": self.changes,
            **self.extra,
        }


@dataclass(frozen=True)
class StreamChange:
    """One stream record of the table, any item kind: images as plain values."""

    event_name: str  # INSERT, MODIFY or REMOVE
    new: Mapping[str, Any]
    old: Mapping[str, Any]
    sequence_number: str
    approximate_at: datetime | None = None


def event_id(name: str, identity: str) -> str:
    """The same business fact from the same record always gets the same id."""
    return str(uuid.uuid5(_NAMESPACE, f"{name}:{identity}"))


def plain(value: Any) -> Any:
    """A stored value as JSON has it (numbers from DynamoDB come as Decimal)."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, Mapping):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(item) for item in value]
    return value


def _change(old: Mapping[str, Any], new: Mapping[str, Any], *names: str) -> dict[str, dict[str, Any]]:
    return {
        name: {"old": plain(old.get(name)), "new": plain(new.get(name))}
        for name in names
        if old.get(name) != new.get(name)
    }


def domain_events(change: StreamChange) -> list[DomainEvent]:
    """The business facts one stream record stands for, in the order they happened (possibly none)."""
    image = change.new or change.old
    entity = image.get("entity")
    if entity == "activity":
        return _merged(change)
    if entity != "lead" or not image.get("id"):
        return []
    lead_id = str(image["id"])
    identity = f"{lead_id}:{change.sequence_number}"
    if change.event_name == "REMOVE":
        moment = change.approximate_at or clock.now()
        ids = {name: change.old.get(name) for name in ERASED_IDS}
        return [
            DomainEvent(
                event_id("lead.erased", identity),
                "lead.erased",
                lead_id,
                clock.isoformat(moment),
                extra={name: value for name, value in ids.items() if value},
            )
        ]
    new, old = change.new, change.old
    occurred_at = str(new.get("updated_at") or new.get("created_at") or clock.isoformat(clock.now()))
    if change.event_name == "INSERT":
        fields = [name for name in CAPTURED_FIELDS if new.get(name) not in (None, {}, "")]
        return [
            DomainEvent(
                event_id("lead.captured", identity),
                "lead.captured",
                lead_id,
                str(new.get("created_at") or occurred_at),
                changes={name: {"old": None, "new": plain(new.get(name))} for name in fields},
                extra={"score": plain(new.get("score", 0)), "grade": new.get("grade")},
            )
        ]
    events: list[DomainEvent] = []

    def add(name: str, changes: dict[str, dict[str, Any]], **extra: Any) -> None:
        events.append(DomainEvent(event_id(name, identity), name, lead_id, occurred_at, changes, extra))

    if old.get("grade") != new.get("grade") and new.get("grade") is not None:
        add("lead.scored", _change(old, new, "grade", "score"))
    if new.get("assigned_to") and old.get("assigned_to") != new.get("assigned_to"):
        add("lead.assigned", _change(old, new, "assigned_to", "team"))
    if old.get("lead_status") != new.get("lead_status"):
        add("lead.status_changed", _change(old, new, "lead_status"))
    if new.get("qualified") and not old.get("qualified"):
        add("lead.qualified", _change(old, new, "qualified"), qualified_at=new.get("qualified_at"))
    if new.get("converted") and not old.get("converted"):
        add(
            "lead.converted",
            _change(old, new, "converted", "contact_id", "company_id", "deal_id"),
            contact_id=new.get("contact_id"),
            company_id=new.get("company_id"),
            deal_id=new.get("deal_id"),
        )
    if new.get("do_not_email") and not old.get("do_not_email"):
        add(
            "lead.unsubscribed",
            _change(old, new, "do_not_email", "do_not_email_reason"),
            reason=new.get("do_not_email_reason"),
        )
    return events


def _merged(change: StreamChange) -> list[DomainEvent]:
    activity = change.new
    if change.event_name != "INSERT" or activity.get("type") != "submission_merged":
        return []
    data = activity.get("data") or {}
    changes = {
        str(name): {"old": plain(diff.get("old")), "new": plain(diff.get("new"))}
        for name, diff in (data.get("changes") or {}).items()
        if isinstance(diff, Mapping)
    }
    return [
        DomainEvent(
            event_id("lead.merged", str(activity.get("id"))),
            "lead.merged",
            str(activity.get("lead_id")),
            str(activity.get("created_at")),
            changes=changes,
            extra={"channel": data.get("channel"), "lead_source": data.get("source")},
        )
    ]


_SCHEMAS = Path(__file__).resolve().parent / "schemas"


def event_schema(name: str) -> dict[str, Any] | None:
    """The JSON Schema of a published event (`events/schemas/<name>.json`), None for an unknown name."""
    if name not in EVENT_NAMES:
        return None
    schema: dict[str, Any] = json.loads((_SCHEMAS / f"{name}.json").read_text(encoding="utf-8"))
    return schema
