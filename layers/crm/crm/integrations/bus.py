"""The event bus port: EventBridge in AWS (moto locally), a list in unit tests."""

import json
from typing import Any, Protocol

from botocore.exceptions import ClientError

from crm.integrations.events import SOURCE, DomainEvent
from crm.platform import aws
from crm.platform.errors import RetryableError


class EventBus(Protocol):
    def put(self, events: list[DomainEvent]) -> None: ...


def entry(event: DomainEvent, bus_name: str) -> dict[str, Any]:
    """One PutEvents entry: `source` leadflow, `detail-type` the event's name, `detail` its versioned JSON."""
    return {
        "Source": SOURCE,
        "DetailType": event.name,
        "Detail": json.dumps(event.detail, separators=(",", ":"), default=str),
        "EventBusName": bus_name,
        "Resources": [],
    }


class EventBridgeBus:
    def __init__(self, bus_name: str) -> None:
        self.bus_name = bus_name

    def put(self, events: list[DomainEvent]) -> None:
        for start in range(0, len(events), 10):  # PutEvents takes at most 10 entries
            chunk = events[start : start + 10]
            try:
                response = aws.client("events").put_events(
                    Entries=[entry(event, self.bus_name) for event in chunk]
                )
            except ClientError as exc:
                raise RetryableError("The event bus refused the events; the record is retried") from exc
            if response.get("FailedEntryCount"):
                raise RetryableError(f"{response['FailedEntryCount']} events were not published; retried")


class InMemoryBus:
    def __init__(self) -> None:
        self.published: list[DomainEvent] = []

    def put(self, events: list[DomainEvent]) -> None:
        self.published.extend(events)
