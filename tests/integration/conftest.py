import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from devstack.provision import create_event_buses, create_tables
from devstack.template import Template
from tests.support import PARTNER_SECRET, FakeLambdaContext, load_handler


@pytest.fixture
def moto_stack(template: Template, function_env: Any) -> Iterator[dict[str, Any]]:
    """moto standing in for AWS, with the table built from template.yaml and a partner secret in SSM."""
    with mock_aws():
        environment = function_env("CaptureFunction")
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        create_tables(dynamodb, template)
        create_event_buses(boto3.client("events", region_name="us-east-1"), template)
        ssm = boto3.client("ssm", region_name="us-east-1")
        ssm.put_parameter(
            Name=f"{environment['PARTNER_SECRETS_PATH']}/acme/webhook-secret",
            Value=PARTNER_SECRET,
            Type="SecureString",
        )
        yield {"dynamodb": dynamodb, "table": environment["TABLE_NAME"], "ssm": ssm}


@pytest.fixture
def invoke(template: Template, function_env: Any) -> Any:
    """Call a function's real handler in-process, with its own environment from the template."""
    handlers: dict[str, Any] = {}

    def call(logical_id: str, event: dict[str, Any]) -> dict[str, Any]:
        function = template.function(logical_id)
        function_env(logical_id)
        if logical_id not in handlers:
            handlers[logical_id] = load_handler(function)
        context = FakeLambdaContext(function_name=function.name, timeout_s=function.timeout_s)
        response: dict[str, Any] = handlers[logical_id](event, context)
        return response

    return call


def count_items(dynamodb: Any, table: str, prefix: str) -> int:
    """How many items have a partition key starting with `prefix` (test inspection only)."""
    items = dynamodb.scan(TableName=table)["Items"]
    return sum(1 for item in items if item["PK"]["S"].startswith(prefix))


def wait_for(condition: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


# ---------------------------------------------------------------- DynamoDB Local


@pytest.fixture(scope="session")
def dynamodb_local(template: Template) -> Iterator[str]:
    """Amazon's DynamoDB Local (real conditional writes and transactions), tables from template.yaml."""
    from devstack.dynamodb_local import DynamoDBLocal

    with DynamoDBLocal() as database:
        client = boto3.client("dynamodb", region_name="us-east-1", endpoint_url=database.endpoint_url)
        create_tables(client, template)
        yield database.endpoint_url


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """moto in server mode for the non-DynamoDB services (SSM here), as the local stack runs it."""
    from devstack.moto_server import MotoServer

    with MotoServer() as server:
        yield server.endpoint_url


@pytest.fixture
def local_aws(
    dynamodb_local: str, moto_endpoint: str, function_env: Any, monkeypatch: pytest.MonkeyPatch
) -> dict[str, Any]:
    """Point the functions at DynamoDB Local and moto's server, through the standard endpoint variables."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", dynamodb_local)
    monkeypatch.setenv("AWS_ENDPOINT_URL_SSM", moto_endpoint)
    environment = function_env("CaptureFunction")
    ssm = boto3.client("ssm", region_name="us-east-1", endpoint_url=moto_endpoint)
    ssm.put_parameter(
        Name=f"{environment['PARTNER_SECRETS_PATH']}/acme/webhook-secret",
        Value=PARTNER_SECRET,
        Type="SecureString",
        Overwrite=True,
    )
    dynamodb = boto3.client("dynamodb", region_name="us-east-1", endpoint_url=dynamodb_local)
    return {"dynamodb": dynamodb, "table": environment["TABLE_NAME"]}
