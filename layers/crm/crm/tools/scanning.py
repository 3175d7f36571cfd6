"""The maintenance tools' one way through a whole table: a Scan, never a request path."""

from collections.abc import Iterator
from typing import Any

from crm.platform.dynamo import unmarshal


def entity_items(dynamodb: Any, table: str, entity: str, sort_key: str) -> Iterator[dict[str, Any]]:
    """Every item of this entity and sort key (unmarshalled), page after page."""
    kwargs: dict[str, Any] = {
        "TableName": table,
        "FilterExpression": "entity = :entity AND SK = :sk",
        "ExpressionAttributeValues": {":entity": {"S": entity}, ":sk": {"S": sort_key}},
    }
    while True:
        page = dynamodb.scan(**kwargs)
        yield from (unmarshal(raw) for raw in page.get("Items", []))
        if "LastEvaluatedKey" not in page:
            return
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
