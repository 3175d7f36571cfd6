"""Data access for notification delivery records and email-event activities.

    delivery   PK=LEAD#<id>  SK=NOTIFY#<kind>#<event id>#<recipient sub>
               status sending (with lease_until) | failed (with last_error) | sent (with message_id)

A delivery is claimed with a conditional write before the email is sent: a redelivered job finds it
`sent` and sends nothing; a job whose sender died mid-send is taken over once the lease has expired.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from botocore.exceptions import ClientError

from crm.leads.model import Activity
from crm.leads.repository import ActivityItem, lead_key
from crm.platform import clock
from crm.platform.dynamo import (
    TableRepository,
    cancellation_codes,
    error_code,
    marshal,
    must_exist,
    put_new,
    translate,
    unmarshal,
)
from crm.platform.errors import RetryableError

MAX_ERROR_LENGTH = 500


class Claim(StrEnum):
    CLAIMED = "claimed"  # this worker sends it
    ALREADY_SENT = "already_sent"
    IN_FLIGHT = "in_flight"  # another worker holds an unexpired lease


@dataclass(frozen=True)
class DeliveryKey:
    lead_id: str
    kind: str
    event_id: str
    recipient: str

    def key(self) -> dict[str, str]:
        return {"PK": f"LEAD#{self.lead_id}", "SK": f"NOTIFY#{self.kind}#{self.event_id}#{self.recipient}"}


class NotificationRepository(TableRepository):
    def claim(self, delivery: DeliveryKey, now: datetime, lease: timedelta) -> Claim:
        moment = clock.isoformat(now)
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=marshal(delivery.key()),
                UpdateExpression=(
                    "SET entity = :entity, lead_id = :lead, kind = :kind, event_id = :event, "
                    "recipient = :recipient, #status = :sending, lease_until = :lease, updated_at = :now "
                    "ADD attempts :one"
                ),
                ConditionExpression=(
                    "attribute_not_exists(PK) OR #status = :failed "
                    "OR (#status = :sending AND lease_until < :now)"
                ),
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={
                    ":entity": {"S": "notification"},
                    ":lead": {"S": delivery.lead_id},
                    ":kind": {"S": delivery.kind},
                    ":event": {"S": delivery.event_id},
                    ":recipient": {"S": delivery.recipient},
                    ":sending": {"S": "sending"},
                    ":failed": {"S": "failed"},
                    ":lease": {"S": clock.isoformat(now + lease)},
                    ":now": {"S": moment},
                    ":one": {"N": "1"},
                },
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                raw: Any = exc.response.get("Item")  # the item as it was, when DynamoDB returns it
                old = unmarshal(raw) if raw else (self.get_status(delivery) or {})
                return Claim.ALREADY_SENT if old.get("status") == "sent" else Claim.IN_FLIGHT
            raise translate(exc) from exc
        return Claim.CLAIMED

    def release(self, delivery: DeliveryKey, error: str, now: datetime) -> None:
        """The send failed: record why and let the next attempt claim it again."""
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=marshal(delivery.key()),
                UpdateExpression=(
                    "SET #status = :failed, last_error = :error, updated_at = :now REMOVE lease_until"
                ),
                ConditionExpression="#status = :sending",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={
                    ":failed": {"S": "failed"},
                    ":sending": {"S": "sending"},
                    ":error": {"S": error[:MAX_ERROR_LENGTH]},
                    ":now": {"S": clock.isoformat(now)},
                },
            )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise translate(exc) from exc

    def complete(self, delivery: DeliveryKey, message_id: str, activity: Activity, now: datetime) -> None:
        items: list[Any] = [
            {
                "Update": {
                    "TableName": self.table_name,
                    "Key": marshal(delivery.key()),
                    "UpdateExpression": (
                        "SET #status = :sent, message_id = :message, updated_at = :now "
                        "REMOVE lease_until, last_error"
                    ),
                    "ExpressionAttributeNames": {"#status": "status"},
                    "ExpressionAttributeValues": {
                        ":sent": {"S": "sent"},
                        ":message": {"S": message_id},
                        ":now": {"S": clock.isoformat(now)},
                    },
                }
            },
            {
                "Put": {
                    "TableName": self.table_name,
                    "Item": marshal(ActivityItem.from_activity(activity).model_dump()),
                }
            },
        ]
        try:
            self.client.transact_write_items(TransactItems=items)
        except ClientError as exc:
            if error_code(exc) == "TransactionCanceledException":
                raise RetryableError("The delivery could not be recorded; try again") from exc
            raise translate(exc) from exc

    def get_status(self, delivery: DeliveryKey) -> dict[str, Any] | None:
        return self._get_item(delivery.key())

    def record_email_event(self, activity: Activity) -> bool:
        """Add an activity for an SES event once (its id and time derive from the event); False if known
        already or if the lead no longer exists."""
        try:
            items: list[Any] = [
                must_exist(self.table_name, lead_key(activity.lead_id)),
                put_new(self.table_name, ActivityItem.from_activity(activity).model_dump()),
            ]
            self.client.transact_write_items(TransactItems=items)
        except ClientError as exc:
            if "ConditionalCheckFailed" in cancellation_codes(exc):
                return False
            if error_code(exc) == "TransactionCanceledException":
                raise RetryableError("The event could not be recorded; try again") from exc
            raise translate(exc) from exc
        return True
