"""Data access of integrations: published-event markers (the publisher's dedupe window), webhook
subscriptions and their deliveries.

published event   PK=EVENT#<event id>   SK=PUBLISHED   name, ttl (epoch seconds)
"""

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

from botocore.exceptions import ClientError
from pydantic import BaseModel

from crm.integrations.webhooks import ATTEMPTS_KEPT, Subscription
from crm.platform import clock
from crm.platform.dynamo import TableRepository, error_code, marshal, translate
from crm.platform.errors import Conflict, RetryableError, VersionConflict


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


# ---------------------------------------------------------------- webhook subscriptions and deliveries
#
# subscription   PK=WEBHOOK#<id>   SK=SUBSCRIPTION   GSI1PK=WEBHOOKS  GSI1SK=<created_at>#<id>
# delivery       PK=WEBHOOK#<id>   SK=DELIVERY#<event id>   state, attempts (last 20), lease_until, ttl 7 days

DELIVERY_TTL = timedelta(days=7)


def subscription_key(subscription_id: str) -> dict[str, str]:
    return {"PK": f"WEBHOOK#{subscription_id}", "SK": "SUBSCRIPTION"}


def delivery_key(subscription_id: str, event_id: str) -> dict[str, str]:
    return {"PK": f"WEBHOOK#{subscription_id}", "SK": f"DELIVERY#{event_id}"}


class SubscriptionItem(BaseModel):
    PK: str
    SK: str
    GSI1PK: str = "WEBHOOKS"
    GSI1SK: str
    entity: str = "webhook_subscription"
    data: dict[str, Any]

    @classmethod
    def of(cls, subscription: Subscription) -> "SubscriptionItem":
        data = subscription.model_dump(mode="json")
        return cls(
            **subscription_key(subscription.id),
            GSI1SK=f"{data['created_at']}#{subscription.id}",
            data=data,
        )


class WebhookRepository(TableRepository):
    def create(self, subscription: Subscription) -> None:
        item = SubscriptionItem.of(subscription).model_dump()
        if not self._put_if_absent(item):
            raise Conflict("A webhook subscription with this id exists")

    def get(self, subscription_id: str) -> Subscription | None:
        item = self._get_item(subscription_key(subscription_id))
        return Subscription.model_validate(item["data"]) if item else None

    def all(self) -> list[Subscription]:
        items = self._query_pages(
            {
                "IndexName": "GSI1",
                "KeyConditionExpression": "GSI1PK = :pk",
                "ExpressionAttributeValues": marshal({":pk": "WEBHOOKS"}),
            }
        )
        return [Subscription.model_validate(item["data"]) for item in items if item.get("data")]

    def replace(self, subscription: Subscription, expected_version: int) -> None:
        item = SubscriptionItem.of(subscription).model_dump()
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item=marshal(item),
                ConditionExpression="#data.#version = :expected",
                ExpressionAttributeNames={"#data": "data", "#version": "version"},
                ExpressionAttributeValues=marshal({":expected": expected_version}),
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                raise VersionConflict(
                    "The subscription was changed or deleted meanwhile; read it again"
                ) from exc
            raise translate(exc) from exc

    def delete(self, subscription_id: str) -> bool:
        return self._write_if(
            "delete_item",
            Key=marshal(subscription_key(subscription_id)),
            ConditionExpression="attribute_exists(PK)",
        )

    def _set_failing(
        self, subscription_id: str, expression: str, values: dict[str, Any], condition: str = ""
    ) -> None:
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "Key": marshal(subscription_key(subscription_id)),
            "UpdateExpression": expression,
            "ConditionExpression": "attribute_exists(PK)" + (f" AND ({condition})" if condition else ""),
            "ExpressionAttributeNames": {"#data": "data", "#since": "failing_since"},
        }
        if values:
            request["ExpressionAttributeValues"] = marshal(values)
        try:
            self.client.update_item(**request)
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return  # deleted meanwhile, or (marking failing) failing since earlier already
            raise translate(exc) from exc

    def mark_failing(self, subscription_id: str, since: datetime) -> None:
        # The stored subscription holds failing_since as null while deliveries succeed: set it only then.
        self._set_failing(
            subscription_id,
            "SET #data.#since = :since",
            {":since": clock.isoformat(since), ":null": "NULL"},
            "attribute_not_exists(#data.#since) OR attribute_type(#data.#since, :null)",
        )

    def mark_succeeding(self, subscription_id: str) -> None:
        self._set_failing(subscription_id, "REMOVE #data.#since", {})

    def claim_delivery(self, subscription_id: str, event_id: str, event_type: str, lease: timedelta) -> bool:
        """Take the delivery for `lease` unless it was delivered (False) or another sender holds it
        (RetryableError: SQS tries the message again later)."""
        now = clock.now()
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=marshal(delivery_key(subscription_id, event_id)),
                UpdateExpression="SET lease_until = :until, event_type = :type, entity = :entity, "
                "#ttl = :ttl",
                ConditionExpression="(attribute_not_exists(#state) OR #state <> :delivered) AND "
                "(attribute_not_exists(lease_until) OR lease_until < :now)",
                ExpressionAttributeNames={"#state": "state", "#ttl": "ttl"},
                ExpressionAttributeValues=marshal(
                    {
                        ":until": clock.isoformat(now + lease),
                        ":now": clock.isoformat(now),
                        ":type": event_type,
                        ":entity": "webhook_delivery",
                        ":delivered": "delivered",
                        ":ttl": int((now + DELIVERY_TTL).timestamp()),
                    }
                ),
            )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise translate(exc) from exc
            current = self._get_item(delivery_key(subscription_id, event_id)) or {}
            if current.get("state") == "delivered":
                return False
            raise RetryableError("Another sender is delivering this event right now") from exc
        return True

    def record_attempt(
        self, subscription_id: str, event_id: str, attempt: dict[str, Any], state: str
    ) -> None:
        """Append the attempt (keeping the last ATTEMPTS_KEPT), set the state, release the lease."""
        key = delivery_key(subscription_id, event_id)
        current = self._get_item(key) or {}
        attempts = [*list(current.get("attempts") or []), attempt][-ATTEMPTS_KEPT:]
        item = {
            **key,
            "entity": "webhook_delivery",
            "event_type": attempt.get("event_type"),
            "state": state,
            "attempts": attempts,
            "last_attempt_at": attempt["at"],
            "ttl": int((clock.now() + DELIVERY_TTL).timestamp()),
        }
        try:
            self.client.put_item(TableName=self.table_name, Item=marshal(item))
        except ClientError as exc:
            raise translate(exc) from exc

    def deliveries(self, subscription_id: str, limit: int) -> list[dict[str, Any]]:
        """The most recent attempts (newest first), each with its event id and the delivery's state."""
        items = self._query_pages(
            {
                "KeyConditionExpression": "PK = :pk AND begins_with(SK, :prefix)",
                "ExpressionAttributeValues": marshal(
                    {":pk": f"WEBHOOK#{subscription_id}", ":prefix": "DELIVERY#"}
                ),
            }
        )
        attempts = [
            {**attempt, "event_id": str(item["SK"]).removeprefix("DELIVERY#"), "state": item.get("state")}
            for item in items
            for attempt in item.get("attempts") or []
        ]
        attempts.sort(key=lambda attempt: (str(attempt["at"]), int(attempt["attempt"])), reverse=True)
        return [
            {key: int(value) if isinstance(value, Decimal) else value for key, value in attempt.items()}
            for attempt in attempts[:limit]
        ]
