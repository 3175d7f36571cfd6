"""Idempotency-Key support for captures, on Powertools idempotency with the single table as its store.

The same key and body within the TTL returns the first response and writes nothing more; the same
key with another body is refused. Records live under PK=IDEMPOTENCY#<scope> with a TTL.
"""

import hashlib
from collections.abc import Callable
from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from crm.platform import aws
from crm.platform.errors import InvalidInput
from crm.platform.settings import get_settings

MAX_KEY_LENGTH = 255


@cache
def _persistence() -> DynamoDBPersistenceLayer:
    return DynamoDBPersistenceLayer(
        table_name=get_settings().table_name,
        key_attr="PK",
        sort_key_attr="SK",
        static_pk_value="IDEMPOTENCY#capture",
        expiry_attr="ttl",
        boto3_client=aws.dynamodb(),
    )


def validated_key(header_value: str | None) -> str | None:
    if header_value is None:
        return None
    key = header_value.strip()
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise InvalidInput.single("Idempotency-Key", f"must be 1-{MAX_KEY_LENGTH} printable characters")
    return key


def once_per_key(
    key: str,
    scope: str,
    body: bytes,
    context: LambdaContext | None,
    produce: Callable[[], dict[str, Any]],
) -> dict[str, Any]:
    """Run `produce` once per (scope, key); replays get its first JSON-serialisable result."""
    config = IdempotencyConfig(
        event_key_jmespath="[scope, key]",
        payload_validation_jmespath="body_sha256",
        expires_after_seconds=get_settings().idempotency_ttl_seconds,
        raise_on_no_idempotency_key=True,
    )
    if context is not None:
        config.register_lambda_context(context)

    @idempotent_function(data_keyword_argument="request", persistence_store=_persistence(), config=config)
    def run(request: dict[str, str]) -> dict[str, Any]:
        return produce()

    return run(request={"scope": scope, "key": key, "body_sha256": hashlib.sha256(body).hexdigest()})
