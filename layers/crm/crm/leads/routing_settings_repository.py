"""Data access for the routing settings: one item, changed only at the version read.

    routing settings   PK=SETTINGS#routing   SK=SETTINGS   sales_threshold, version, updated_at, updated_by

An absent item is version 1 (the deploy parameter's value): the first save expects version 1 and
creates the item at version 2.
"""

from typing import Any

from botocore.exceptions import ClientError

from crm.platform.dynamo import TableRepository, error_code, marshal, translate, unmarshal
from crm.platform.errors import VersionConflict

SETTINGS_KEY = {"PK": "SETTINGS#routing", "SK": "SETTINGS"}
ENTITY = "routing_settings"
# The version an absent item stands for.
UNSAVED_VERSION = 1


class RoutingSettingsRepository(TableRepository):
    def get(self) -> dict[str, Any] | None:
        """The stored settings (without keys), or None before the first save."""
        item = self._get_item(SETTINGS_KEY)
        if item is None:
            return None
        return {name: value for name, value in item.items() if name not in ("PK", "SK", "entity")}

    def save(self, settings: dict[str, Any], expected_version: int) -> None:
        """Write `settings` if the stored ones are at `expected_version`; VersionConflict otherwise."""
        condition = "#version = :expected"
        if expected_version == UNSAVED_VERSION:
            condition = f"attribute_not_exists(PK) OR {condition}"
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item=marshal({**SETTINGS_KEY, "entity": ENTITY, **settings}),
                ConditionExpression=condition,
                ExpressionAttributeNames={"#version": "version"},
                ExpressionAttributeValues={":expected": {"N": str(expected_version)}},
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise translate(exc) from exc
            old: Any = exc.response.get("Item")
            current = int(unmarshal(old)["version"]) if old else UNSAVED_VERSION
            raise VersionConflict(
                "The routing settings were changed by someone else", current_version=current
            ) from exc
