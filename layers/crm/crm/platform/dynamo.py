"""DynamoDB plumbing shared by the data-access modules: item (un)marshalling and error translation."""

import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from crm.platform import aws, clock
from crm.platform.errors import RetryableError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

BATCH_GET_ATTEMPTS = 6
BATCH_WRITE_SIZE = 25  # BatchWriteItem's limit
BATCH_WRITE_ATTEMPTS = 8
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


class TableRepository:
    """Base of the data-access classes: the table, its write-shard count (for sharded index keys), and a
    DynamoDB client made on first use, so importing a repository creates no boto3 client."""

    def __init__(self, table_name: str, shards: int = 4, *, client: "DynamoDBClient | None" = None) -> None:
        self.table_name = table_name
        self.shards = shards
        self._client = client

    @property
    def client(self) -> "DynamoDBClient":
        if self._client is None:
            self._client = aws.dynamodb()
        return self._client

    def _get_item(self, key: dict[str, str]) -> dict[str, Any] | None:
        """One item by its key, read consistently; None when there is none."""
        try:
            response = self.client.get_item(TableName=self.table_name, Key=marshal(key), ConsistentRead=True)
        except ClientError as exc:
            raise translate(exc) from exc
        item = response.get("Item")
        return unmarshal(item) if item else None

    def _put_if_absent(self, item: dict[str, Any]) -> bool:
        """Write `item` only if nothing is stored at its key yet; False when something already is."""
        return self._write_if("put_item", Item=marshal(item), ConditionExpression="attribute_not_exists(PK)")

    def _update_if(self, key: dict[str, str], **request: Any) -> bool:
        """One conditional UpdateItem of the item at `key`; False when its condition does not hold."""
        return self._write_if("update_item", Key=marshal(key), **request)

    def _write_if(self, operation: str, **request: Any) -> bool:
        """One conditional put_item, update_item or delete_item on the table; False when its condition
        does not hold, other errors translated."""
        try:
            getattr(self.client, operation)(TableName=self.table_name, **request)
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise translate(exc) from exc
        return True

    def _batch_write(
        self, puts: Sequence[dict[str, Any]] = (), deletes: Sequence[dict[str, str]] = (), busy: str = ""
    ) -> None:
        """Put `puts` and delete the items at `deletes` (BatchWriteItem, 25 at a time, not a transaction:
        half the write units; unprocessed ones are sent again). Raises RetryableError(`busy`) when some stay
        unprocessed: what was written is written, so callers must be safe to run again."""
        requests: list[Any] = [{"PutRequest": {"Item": marshal(item)}} for item in puts]
        requests += [{"DeleteRequest": {"Key": marshal(key)}} for key in deletes]
        for start in range(0, len(requests), BATCH_WRITE_SIZE):
            pending: list[Any] = requests[start : start + BATCH_WRITE_SIZE]
            for attempt in range(BATCH_WRITE_ATTEMPTS):
                try:
                    response = self.client.batch_write_item(RequestItems={self.table_name: pending})
                except ClientError as exc:
                    raise translate(exc) from exc
                pending = list(response.get("UnprocessedItems", {}).get(self.table_name, []))
                if not pending:
                    break
                time.sleep(0.05 * 2**attempt)
            if pending:
                raise RetryableError(busy or "Some items could not be written yet; try again")

    def _query_pages(self, kwargs: dict[str, Any]) -> list[dict[str, Any]]:
        """Every item a Query returns, page after page."""
        request: dict[str, Any] = {"TableName": self.table_name, **kwargs}
        items: list[dict[str, Any]] = []
        try:
            while True:
                response = self.client.query(**request)
                items.extend(unmarshal(raw) for raw in response.get("Items", []))
                if "LastEvaluatedKey" not in response:
                    return items
                request["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        except ClientError as exc:
            raise translate(exc) from exc

    def _get_many(self, keys: list[dict[str, str]]) -> list[dict[str, Any]]:
        """The items at `keys` that exist (BatchGetItem, 100 keys a request, unprocessed keys asked again),
        in no particular order. Eventually consistent: for items found through an index, which lags too."""
        found: list[dict[str, Any]] = []
        for start in range(0, len(keys), 100):
            request: dict[str, Any] = {
                self.table_name: {"Keys": [marshal(k) for k in keys[start : start + 100]]}
            }
            for attempt in range(BATCH_GET_ATTEMPTS):
                try:
                    response = self.client.batch_get_item(RequestItems=request)
                except ClientError as exc:
                    raise translate(exc) from exc
                found.extend(unmarshal(raw) for raw in response.get("Responses", {}).get(self.table_name, []))
                request = dict(response.get("UnprocessedKeys") or {})
                if not request:
                    break
                time.sleep(0.02 * 2**attempt)
            else:
                raise RetryableError("The database is busy; try again")
        return found

    def get_together(self, keys: list[dict[str, str]], busy: str) -> list[dict[str, Any] | None]:
        """The items at `keys` read as one serializable snapshot (TransactGetItems), None where absent. An
        item in the middle of a transaction is RetryableError(`busy`)."""
        try:
            response = self.client.transact_get_items(
                TransactItems=[{"Get": {"TableName": self.table_name, "Key": marshal(key)}} for key in keys]
            )
        except ClientError as exc:
            if error_code(exc) == "TransactionCanceledException":
                raise RetryableError(busy) from exc
            raise translate(exc) from exc
        return [unmarshal(entry["Item"]) if entry.get("Item") else None for entry in response["Responses"]]

    def query_due(
        self, prefix: str, since: datetime, until: datetime, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """Items of the GSI2 due-time index (`<prefix>#<yyyy-mm-dd>#<shard>` / `<due ISO>#...`) due in
        [since, until], soonest first, at most `limit`: one Query per due day and shard, days in order, so
        the days after the one that fills the limit are never read."""
        low, high = clock.isoformat(since), clock.isoformat(until) + "\uffff"
        found: list[dict[str, Any]] = []
        day = since.date()
        try:
            while day <= until.date() and (limit is None or len(found) < limit):
                for shard in range(self.shards):
                    found += self._query_due_partition(
                        f"{prefix}#{day.isoformat()}#{shard}", low, high, limit
                    )
                day += timedelta(days=1)
        except ClientError as exc:
            raise translate(exc) from exc
        found.sort(key=lambda item: str(item["GSI2SK"]))
        return found if limit is None else found[:limit]

    def _query_due_partition(
        self, partition: str, low: str, high: str, limit: int | None
    ) -> list[dict[str, Any]]:
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": "GSI2",
            "KeyConditionExpression": "GSI2PK = :pk AND GSI2SK BETWEEN :low AND :high",
            "ExpressionAttributeValues": marshal({":pk": partition, ":low": low, ":high": high}),
        }
        if limit is not None:
            kwargs["Limit"] = limit
        items: list[dict[str, Any]] = []
        while limit is None or len(items) < limit:
            response = self.client.query(**kwargs)
            items += [unmarshal(raw) for raw in response.get("Items", [])]
            if "LastEvaluatedKey" not in response:
                break
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        return items


def versioned(request: dict[str, Any], expected_version: int | None) -> dict[str, Any]:
    """A Put or Update request made conditional: creation only if the item is absent (`expected_version`
    None), a change only if the item is still at the version read."""
    if expected_version is None:
        return {**request, "ConditionExpression": "attribute_not_exists(PK)"}
    return {
        **request,
        "ConditionExpression": "#version = :expected",
        "ExpressionAttributeNames": {"#version": "version"},
        "ExpressionAttributeValues": {":expected": {"N": str(expected_version)}},
    }


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


def key_condition(
    pk_name: str, sk_name: str, pk: str, lower: str | None, upper: str | None
) -> tuple[str, dict[str, str], dict[str, Any]]:
    names = {"#pk": pk_name, "#sk": sk_name}
    values: dict[str, Any] = {":pk": {"S": pk}}
    expression = "#pk = :pk"
    if lower is not None and upper is not None:
        expression += " AND #sk BETWEEN :lower AND :upper"
        values |= {":lower": {"S": lower}, ":upper": {"S": upper}}
    elif lower is not None:
        expression += " AND #sk >= :lower"
        values[":lower"] = {"S": lower}
    elif upper is not None:
        expression += " AND #sk <= :upper"
        values[":upper"] = {"S": upper}
    else:
        names.pop("#sk")
    return expression, names, values


def stream_image(raw: dict[str, Any] | None) -> dict[str, Any]:
    """A stream record's image (absent: empty) as plain values. Images come as AWS types them; the local
    stack's stream pump (devstack.pumps) makes DynamoDB Local's look the same."""
    return unmarshal(raw or {})


def must_exist(table: str, key: dict[str, str]) -> dict[str, Any]:
    """A transaction item that only checks the item at `key` exists."""
    return {
        "ConditionCheck": {
            "TableName": table,
            "Key": marshal(key),
            "ConditionExpression": "attribute_exists(PK)",
        }
    }


def put_new(table: str, item: dict[str, Any]) -> dict[str, Any]:
    """A transaction item that writes `item` only if nothing is stored at its key yet."""
    return {
        "Put": {"TableName": table, "Item": marshal(item), "ConditionExpression": "attribute_not_exists(PK)"}
    }
