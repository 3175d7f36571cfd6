"""What happens when a lead item changes: one dispatcher, a list of handlers, one stream consumer.

LeadEventsFunction receives the table's stream, filtered to lead items, and runs every handler on every
record, in order. A handler that raises fails the record (and the record is retried, with every handler
run again), so each handler is idempotent. Handlers of later features (analytics, search) are appended to
`default_handlers`; AWS advises at most two consumers per stream, and the scoring function is the other.

Handlers here:
- route: a scored, unassigned lead at or above the sales threshold goes to the assignment queue; below
  it, it is marked for nurture (`crm.assignment.routing`);
- keep counters: an assignment, reassignment, close or reopening made anywhere moves the open-lead
  counters (`AssignmentService.keep_load`);
- notify: a new assignee gets a notification job (`crm.notifications.messages`), deduplicated per assignment;
- follow-ups (`crm.follow_ups.service`): a new lead starts its speed-to-lead timer, an assignment plans the
  rep's follow-up tasks, the first contact (or conversion, or nurture) stops both;
- nurture (`crm.nurture.reactions`): a lead marked nurture is enrolled in its sequence; converting, being
  assigned, reaching the sales threshold or becoming do-not-email takes it out.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from boto3.dynamodb.types import TypeDeserializer

from crm.notifications.messages import NotificationKind, NotificationRequest
from crm.platform.observability import logger
from crm.platform.settings import get_settings

CLOSED_STATUSES = frozenset({"converted", "unqualified"})
_deserializer = TypeDeserializer()


def _image(raw: dict[str, Any] | None) -> dict[str, Any]:
    """A stream image as plain values. An attribute that is not a typed value is left out: DynamoDB Local's
    stream renders an empty map as `{}` instead of `{"M": {}}`, and no handler here reads maps."""
    image: dict[str, Any] = {}
    for name, value in (raw or {}).items():
        if isinstance(value, dict) and len(value) == 1:
            typed: Any = value  # one {type: value} pair, as TypeDeserializer expects
            image[name] = _deserializer.deserialize(typed)
    return image


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
        new, old = _image(stream.get("NewImage")), _image(stream.get("OldImage"))
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
        if change is None:
            return
        for handler in self.handlers:
            handler(change)


# ---------------------------------------------------------------- the assignment handlers


def route_lead(change: LeadChange) -> None:
    from crm import bootstrap

    # Only scored, unassigned, open leads can need routing; everything else costs no read.
    if change.event_name == "REMOVE" or not change.open_and_unassigned or change.new.get("grade") is None:
        return
    bootstrap.routing_service().consider(change.lead_id)


def keep_open_lead_counters(change: LeadChange) -> None:
    from crm import bootstrap

    if change.event_name == "INSERT" and not change.new.get("assigned_to"):
        return
    if change.event_name == "MODIFY" and not change.changed("assigned_to", "lead_status", "converted"):
        return
    bootstrap.assignment_service().keep_load(change.lead_id)


def notify_new_assignee(change: LeadChange) -> None:
    from crm import bootstrap

    assignee = change.new.get("assigned_to")
    if not assignee or assignee == change.old.get("assigned_to"):
        return
    job = NotificationRequest(
        kind=NotificationKind.LEAD_ASSIGNED,
        lead_id=change.lead_id,
        recipient=str(assignee),
        event_id=f"assigned:{assignee}:{change.new.get('assigned_at')}",
    )
    bootstrap.publisher().send(get_settings().notification_queue_url, job.model_dump(mode="json"))
    logger.info("Assignment notification queued", extra={"lead_id": change.lead_id})


def default_handlers() -> list[LeadChangeHandler]:
    # List-index upkeep, search tokens and analytics counters (crm.queries.reactions).
    from crm.follow_ups.service import close_what_no_longer_waits, plan_follow_ups, start_speed_to_lead_clock
    from crm.nurture.reactions import enroll_in_nurture, stop_nurture
    from crm.queries.reactions import count_for_analytics, index_for_search, repair_list_index

    return [
        route_lead,
        keep_open_lead_counters,
        notify_new_assignee,
        start_speed_to_lead_clock,
        plan_follow_ups,
        close_what_no_longer_waits,
        repair_list_index,
        index_for_search,
        count_for_analytics,
        enroll_in_nurture,
        stop_nurture,
    ]
