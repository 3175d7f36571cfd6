"""DynamoDB plumbing shared by the data-access modules: item (un)marshalling and error translation."""

from datetime import datetime, timedelta
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from crm import clock
from crm.errors import RetryableError

serializer = TypeSerializer()
deserializer = TypeDeserializer()

RETRYABLE_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "TransactionConflictException",
        "TransactionInProgressException",
        "InternalServerError",
        "ServiceUnavailable",
    }
)


def marshal(item: dict[str, Any]) -> dict[str, Any]:
    return {key: serializer.serialize(value) for key, value in item.items() if value is not None}


def unmarshal(item: dict[str, Any]) -> dict[str, Any]:
    return {key: deserializer.deserialize(value) for key, value in item.items()}


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def cancellation_codes(exc: ClientError) -> list[str]:
    reasons: list[Any] = list(exc.response.get("CancellationReasons", []))
    return [str(reason.get("Code") or "None") for reason in reasons]


def translate(exc: ClientError) -> Exception:
    """Throttling and transient faults become RetryableError; anything else stays as it was."""
    if error_code(exc) in RETRYABLE_CODES:
        return RetryableError("The database is busy; try again")
    return exc


def query_due(
    client: Any,
    table_name: str,
    *,
    index: str,
    prefix: str,
    since: datetime,
    until: datetime,
    shards: int,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """Items of a due-time index (`<prefix>#<yyyy-mm-dd>#<shard>` / `<due ISO>#...`) due in [since, until],
    soonest first, at most `limit`: one Query per due day and shard, days in order, so days after the one
    that fills the limit are never read. Raises ClientError (callers translate it)."""
    low, high = clock.isoformat(since), clock.isoformat(until) + "\uffff"
    found: list[dict[str, Any]] = []
    day = since.date()
    while day <= until.date() and (limit is None or len(found) < limit):
        for shard in range(shards):
            kwargs: dict[str, Any] = {
                "TableName": table_name,
                "IndexName": index,
                "KeyConditionExpression": "GSI2PK = :pk AND GSI2SK BETWEEN :low AND :high",
                "ExpressionAttributeValues": marshal(
                    {":pk": f"{prefix}#{day.isoformat()}#{shard}", ":low": low, ":high": high}
                ),
            }
            if limit is not None:
                kwargs["Limit"] = limit
            from_shard: list[dict[str, Any]] = []
            while limit is None or len(from_shard) < limit:
                response = client.query(**kwargs)
                from_shard += [unmarshal(raw) for raw in response.get("Items", [])]
                if "LastEvaluatedKey" not in response:
                    break
                kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]
            found += from_shard
        day += timedelta(days=1)
    found.sort(key=lambda item: str(item["GSI2SK"]))
    return found if limit is None else found[:limit]
