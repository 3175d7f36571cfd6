"""Lazily created, cached boto3 clients: tests set up their fakes first, cold starts stay short.

Endpoints come from the standard AWS_ENDPOINT_URL_<SERVICE> variables, which is all the local
stack changes.
"""

from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


@cache
def _session() -> Any:
    import boto3

    return boto3.session.Session()


@cache
def client(service: str) -> Any:
    from botocore.config import Config

    # Standard retry mode retries throttling with backoff; connections sized for a Lambda's worker.
    config = Config(retries={"mode": "standard", "max_attempts": 4}, max_pool_connections=25)
    return _session().client(service, config=config)


@cache
def s3() -> Any:
    """S3 with SigV4 presigned links (botocore still signs presigned URLs with SigV2 by default, which new
    regions and KMS-encrypted buckets refuse)."""
    from botocore.config import Config

    config = Config(
        signature_version="s3v4", retries={"mode": "standard", "max_attempts": 4}, max_pool_connections=4
    )
    return _session().client("s3", config=config)


def dynamodb() -> "DynamoDBClient":
    dynamodb_client: DynamoDBClient = client("dynamodb")
    return dynamodb_client


def reset() -> None:
    """Forget cached clients (tests switch endpoints between suites)."""
    client.cache_clear()
    s3.cache_clear()
    _session.cache_clear()
