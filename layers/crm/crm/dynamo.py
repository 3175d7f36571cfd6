"""DynamoDB plumbing shared by the data-access modules: item (un)marshalling and error translation."""

from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

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
