"""Publishing the domain events of the table's stream (a step of LeadEventsFunction, after the reactions).

Delivery is at least once end to end: a stream record can be delivered again (a retried batch, a reaction
that failed). A marker item per published event id (kept `DEDUPE_WINDOW`) stops a redelivered record from
publishing again; what cannot be avoided (the function dying between PutEvents and the marker write) makes
a duplicate with the same `detail.id`, which consumers drop.
"""

from datetime import UTC, datetime, timedelta

from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord

from crm.integrations.bus import EventBus
from crm.integrations.events import DomainEvent, StreamChange, domain_events
from crm.integrations.repository import PublishedEvents
from crm.platform.dynamo import stream_image
from crm.platform.observability import logger

DEDUPE_WINDOW = timedelta(hours=24)


def stream_change(record: DynamoDBRecord) -> StreamChange:
    stream = record.get("dynamodb") or {}
    created = stream.get("ApproximateCreationDateTime")
    return StreamChange(
        event_name=record.event_name.name if record.event_name is not None else "",
        new=stream_image(stream.get("NewImage")),
        old=stream_image(stream.get("OldImage")),
        sequence_number=str(stream.get("SequenceNumber") or record.event_id or ""),
        approximate_at=datetime.fromtimestamp(float(created), UTC) if created else None,
    )


class DomainEventPublisher:
    def __init__(self, bus: EventBus, published: PublishedEvents) -> None:
        self.bus = bus
        self.published = published

    def handle(self, record: DynamoDBRecord) -> list[DomainEvent]:
        """Publish what the record stands for and was not published yet; returns what was published."""
        events = [
            event for event in domain_events(stream_change(record)) if not self.published.seen(event.id)
        ]
        if not events:
            return []
        self.bus.put(events)
        for event in events:
            self.published.remember(event.id, event.name, DEDUPE_WINDOW)
        logger.info("Domain events published", extra={"events": [e.name for e in events]})
        return events
