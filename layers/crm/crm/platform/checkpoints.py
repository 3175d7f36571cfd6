"""Data access for the follow-up scheduler's checkpoints: how far each due-work source has been read.

checkpoint   PK=SCHEDULER#follow_ups   SK=CHECKPOINT#<source>   until (ISO-8601 UTC)
"""

from datetime import datetime

from botocore.exceptions import ClientError

from crm.platform import clock
from crm.platform.dynamo import TableRepository, marshal, translate


def checkpoint_key(source: str) -> dict[str, str]:
    return {"PK": "SCHEDULER#follow_ups", "SK": f"CHECKPOINT#{source}"}


class CheckpointRepository(TableRepository):
    def get(self, source: str) -> datetime | None:
        item = self._get_item(checkpoint_key(source)) or {}
        return clock.parse(str(item["until"])) if item.get("until") else None

    def put(self, source: str, until: datetime) -> None:
        """Store the checkpoint unless a concurrent run already stored a later one."""
        moment = clock.isoformat(until)
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item=marshal({**checkpoint_key(source), "entity": "checkpoint", "until": moment}),
                ConditionExpression="attribute_not_exists(#until) OR #until <= :until",
                ExpressionAttributeNames={"#until": "until"},
                ExpressionAttributeValues=marshal({":until": moment}),
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return
            raise translate(exc) from exc
