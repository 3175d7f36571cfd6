"""A change to a lead item, as the table's stream tells it, and the dispatcher that runs the reactions to it.

LeadEventsFunction receives the table's stream, filtered to lead items, and runs every reaction on every
record, in order. A reaction that raises fails the record (and the record is retried, with every reaction
run again), so each reaction is idempotent. The reactions live in their contexts (`reactions.py` of
assignment, follow_ups, queries, analytics and nurture); `crm.bootstrap.lead_change_reactions` is the one
list that wires them. AWS advises at most two consumers per stream, and the scoring function is the other.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord

from crm.platform.dynamo import stream_image

CLOSED_STATUSES = frozenset({"converted", "unqualified"})


@dataclass(frozen=True)
class LeadChange:
    event_name: str  # INSERT, MODIFY or REMOVE
    lead_id: str
    new: dict[str, Any]
    old: dict[str, Any]
    # The stream record's sequence number: the same on every redelivery (analytics dedupes on it).
    sequence_number: str = ""

    @classmethod
    def from_record(cls, record: DynamoDBRecord) -> "LeadChange | None":
        stream = record.get("dynamodb") or {}
        new, old = stream_image(stream.get("NewImage")), stream_image(stream.get("OldImage"))
        image = new or old
        if image.get("entity") != "lead" or not image.get("id"):
            return None
        event_name = record.event_name.name if record.event_name is not None else ""
        return cls(
            event_name=event_name,
            lead_id=str(image["id"]),
            new=new,
            old=old,
            sequence_number=str(stream.get("SequenceNumber") or record.event_id or ""),
        )

    def changed(self, *names: str) -> bool:
        return any(self.new.get(name) != self.old.get(name) for name in names)

    @property
    def open_and_unassigned(self) -> bool:
        lead = self.new
        return (
            bool(lead)
            and not lead.get("assigned_to")
            and not lead.get("converted")
            and lead.get("lead_status") not in CLOSED_STATUSES
        )


LeadChangeHandler = Callable[[LeadChange], None]


class LeadEventsDispatcher:
    def __init__(self, handlers: Sequence[LeadChangeHandler]) -> None:
        self.handlers = list(handlers)

    def handle(self, record: DynamoDBRecord) -> None:
        change = LeadChange.from_record(record)
        # A removed lead item reaches LeadEventsFunction only for its domain event (lead.erased,
        # crm.integrations); the reactions never handled removals and still do not.
        if change is None or change.event_name == "REMOVE":
            return
        for handler in self.handlers:
            handler(change)
