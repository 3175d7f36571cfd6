"""Data access of integrations: published-event markers (the publisher's dedupe window).

published event   PK=EVENT#<event id>   SK=PUBLISHED   name, ttl (epoch seconds)
"""

from datetime import timedelta
from typing import Protocol

from botocore.exceptions import ClientError

from crm.platform import clock
from crm.platform.dynamo import TableRepository, marshal, translate


class PublishedEvents(Protocol):
    def seen(self, event_id: str) -> bool: ...

    def remember(self, event_id: str, name: str, window: timedelta) -> None: ...


def published_key(event_id: str) -> dict[str, str]:
    return {"PK": f"EVENT#{event_id}", "SK": "PUBLISHED"}


class PublishedEventRepository(TableRepository):
    def seen(self, event_id: str) -> bool:
        item = self._get_item(published_key(event_id))
        # DynamoDB deletes expired items some time after their ttl: an expired marker is no marker.
        return item is not None and int(item.get("ttl", 0)) > clock.now().timestamp()

    def remember(self, event_id: str, name: str, window: timedelta) -> None:
        expires = int((clock.now() + window).timestamp())
        item = {**published_key(event_id), "entity": "published_event", "name": name, "ttl": expires}
        try:
            self.client.put_item(TableName=self.table_name, Item=marshal(item))
        except ClientError as exc:
            raise translate(exc) from exc


class InMemoryPublishedEvents:
    def __init__(self) -> None:
        self.ids: set[str] = set()

    def seen(self, event_id: str) -> bool:
        return event_id in self.ids

    def remember(self, event_id: str, name: str, window: timedelta) -> None:
        self.ids.add(event_id)
