"""Data access for speed-to-lead timers: the only module that reads and writes them.

    SLA timer   PK=LEAD#<lead id>   SK=TIMER#speed_to_lead   entity sla_timer
                GSI2PK=SLADUE#<yyyy-mm-dd of due_at>#<shard>   GSI2SK=<due_at>#<lead id>   (pending only)

The due keys exist only while the timer is pending: firing or cancelling it removes them in the same
conditional write that changes its state, so the scheduler's Query sees each pending timer and nothing else.
"""

from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from crm.follow_ups.rules import SlaTimer, TimerState
from crm.leads.model import Activity
from crm.leads.repository import ActivityItem, shard_of
from crm.platform import clock
from crm.platform.dynamo import (
    TableRepository,
    cancellation_codes,
    error_code,
    marshal,
    translate,
)
from crm.platform.errors import RetryableError


def sla_timer_key(lead_id: str) -> dict[str, str]:
    return {"PK": f"LEAD#{lead_id}", "SK": "TIMER#speed_to_lead"}


def sla_due_partition(due_at: datetime, shard: int) -> str:
    return f"SLADUE#{clock.isoformat(due_at)[:10]}#{shard}"


class FollowUpRepository(TableRepository):
    def start(self, timer: SlaTimer) -> bool:
        """Store a pending timer unless the lead has one already (a redelivered INSERT starts nothing)."""
        attributes = timer.model_dump(mode="json", exclude_none=True)
        item = {
            **sla_timer_key(timer.lead_id),
            "entity": "sla_timer",
            "GSI2PK": sla_due_partition(timer.due_at, shard_of(timer.lead_id, self.shards)),
            "GSI2SK": f"{attributes['due_at']}#{timer.lead_id}",
            **attributes,
        }
        return self._put_if_absent(item)

    def get(self, lead_id: str) -> SlaTimer | None:
        item = self._get_item(sla_timer_key(lead_id))
        return SlaTimer.model_validate(item) if item else None

    def cancel(self, lead_id: str, reason: str, now: datetime) -> bool:
        """Stop a pending timer; False if there is none pending (never started, fired or cancelled)."""
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=marshal(sla_timer_key(lead_id)),
                UpdateExpression="SET #state = :cancelled, cancelled_at = :now, cancel_reason = :reason "
                "REMOVE GSI2PK, GSI2SK",
                ConditionExpression="#state = :pending",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues=marshal(
                    {
                        ":cancelled": TimerState.CANCELLED.value,
                        ":pending": TimerState.PENDING.value,
                        ":now": clock.isoformat(now),
                        ":reason": reason,
                    }
                ),
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise translate(exc) from exc
        return True

    def fire(self, timer: SlaTimer, now: datetime, activity: Activity) -> bool:
        """Mark a pending timer fired, with the lead's activity, in one transaction; False if it no longer
        is pending (another run fired it, or the lead was contacted meanwhile)."""
        items: list[dict[str, Any]] = [
            {
                "Update": {
                    "TableName": self.table_name,
                    "Key": marshal(sla_timer_key(timer.lead_id)),
                    "UpdateExpression": "SET #state = :fired, fired_at = :now REMOVE GSI2PK, GSI2SK",
                    "ConditionExpression": "#state = :pending",
                    "ExpressionAttributeNames": {"#state": "state"},
                    "ExpressionAttributeValues": marshal(
                        {
                            ":fired": TimerState.FIRED.value,
                            ":pending": TimerState.PENDING.value,
                            ":now": clock.isoformat(now),
                        }
                    ),
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
            self.client.transact_write_items(TransactItems=items)  # type: ignore[arg-type]
        except ClientError as exc:
            if error_code(exc) == "TransactionCanceledException":
                if cancellation_codes(exc)[:1] == ["ConditionalCheckFailed"]:
                    return False
                raise RetryableError("The SLA timer could not be written; try again") from exc
            raise translate(exc) from exc
        return True

    def due(self, since: datetime, until: datetime, limit: int) -> list[SlaTimer]:
        """Pending timers due in [since, until], soonest first (`TableRepository.query_due`)."""
        items = self.query_due("SLADUE", since, until, limit)
        return [SlaTimer.model_validate(item) for item in items]
