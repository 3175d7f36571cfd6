"""The cost benchmark's probe counts DynamoDB write units as AWS bills them, where DynamoDB Local differs."""

import importlib.util
import json
from pathlib import Path
from typing import Any

import boto3
import botocore.client
import pytest
from botocore import xform_name
from botocore.awsrequest import AWSResponse

PROBE = Path(__file__).resolve().parents[1] / "bench" / "cost_probe" / "leadflow_cost_probe.py"


@pytest.fixture(autouse=True)
def probe_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # Loading the probe wraps the real handler and hooks every new botocore client: both undone afterwards.
    monkeypatch.setenv("COST_PROBE_HANDLER", "json.dumps")
    monkeypatch.setattr(
        botocore.client.ClientCreator, "create_client", botocore.client.ClientCreator.create_client
    )


class RawBody:
    def __init__(self, body: str) -> None:
        self.body = body.encode()

    def stream(self, **_: Any) -> Any:
        yield self.body

    def read(self, *_: Any) -> bytes:
        return self.body


def load_probe() -> Any:
    spec = importlib.util.spec_from_file_location("leadflow_cost_probe_under_test", PROBE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def table_units(probe: Any) -> float:
    return sum(units for key, units in probe._capacity.items() if json.loads(key)[1] == "table")


def call(probe: Any, operation: str, params: dict[str, Any], consumed: list[dict[str, Any]]) -> None:
    """A DynamoDB call through a real botocore client's event chain (the probe hooks every new client, as in
    a Lambda worker), answered with `consumed` without a network."""
    client = boto3.client(
        "dynamodb", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    answer = {"ConsumedCapacity": consumed}
    client.meta.events.register(
        "before-send.dynamodb", lambda **_: AWSResponse("https://x", 200, {}, RawBody(json.dumps(answer)))
    )
    getattr(client, xform_name(operation))(**params)


def test_a_transaction_of_four_small_items_counts_eight_units_not_dynamodb_locals_two() -> None:
    probe = load_probe()
    puts = [{"Put": {"TableName": "leads", "Item": {"PK": {"S": str(n)}}}} for n in range(3)]
    check = [
        {"ConditionCheck": {"TableName": "leads", "Key": {"PK": {"S": "k"}}, "ConditionExpression": "x"}}
    ]
    reported = [{"TableName": "leads", "CapacityUnits": 2.0, "Table": {"CapacityUnits": 2.0}}]

    call(probe, "TransactWriteItems", {"TransactItems": puts + check}, reported)

    assert table_units(probe) == 8.0


def test_larger_figures_and_plain_writes_are_taken_as_reported() -> None:
    probe = load_probe()
    big = [{"TableName": "leads", "CapacityUnits": 8.0, "Table": {"CapacityUnits": 8.0}}]
    one_put = {"TransactItems": [{"Put": {"TableName": "leads", "Item": {"PK": {"S": "1"}}}}]}
    call(probe, "TransactWriteItems", one_put, big)
    batch = [{"TableName": "leads", "CapacityUnits": 3.0, "Table": {"CapacityUnits": 3.0}}]
    puts = [{"PutRequest": {"Item": {"PK": {"S": str(n)}}}} for n in range(3)]
    call(probe, "BatchWriteItem", {"RequestItems": {"leads": puts}}, batch)

    assert table_units(probe) == 11.0
