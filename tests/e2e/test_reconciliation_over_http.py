"""The nightly analytics reconciliation on the local stack's clock, as an operator drives it: a jump of days
is caught up day by day from a checkpoint, and a chosen day is reconciled by sending the README's event,
over `POST /_local/schedules/<function>` or with the CLI's `--event`.

These tests move the stack's clock by days, so they run on a stack of their own (`clock_stack`).
"""

import json
import uuid
from datetime import timedelta
from typing import Any

import pytest

from devstack import cli
from devstack.stack import LocalStack

from .conftest import Client

pytestmark = pytest.mark.e2e

DAY = 24 * 3600
RECONCILE = "AnalyticsReconcileFunction"


def run(http: Client, event: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Fire the reconciliation now (with `event` as its event, if given): the days it reconciled."""
    response = http.request("POST", f"/_local/schedules/{RECONCILE}", json_body=event or {})
    assert response.status == 200, response.body
    (result,) = response.json()
    assert result["ok"], result
    return list(result["response"]["days"])


def reconciled_days(stack: LocalStack) -> set[str]:
    assert stack.template is not None
    table = stack.template.function(RECONCILE).environment["TABLE_NAME"]
    items = stack.clients.dynamodb.query(
        TableName=table,
        KeyConditionExpression="PK = :pk",
        ExpressionAttributeValues={":pk": {"S": "STATS#reconciliation"}},
    )["Items"]
    return {item["SK"]["S"] for item in items if item["SK"]["S"] != "CHECKPOINT"}


def test_a_jump_of_days_reconciles_every_missed_day_once(http: Client, clock_stack: LocalStack) -> None:
    # Given a lead captured today, and a first run (no checkpoint yet): yesterday only
    today = clock_stack.clock.now().date()
    captured = http.request(
        "POST",
        "/capture/form",
        data={"first_name": "Re", "last_name": "Con", "email": f"{uuid.uuid4().hex}@x.io"},
    )
    assert captured.status == 201
    assert [d["day"] for d in run(http)] == [(today - timedelta(days=1)).isoformat()]
    assert run(http) == []  # nothing missed since

    # When the clock jumps three days (the nightly schedule fires once on the way)
    clock_stack.advance_clock(3 * DAY)

    # Then today and the two days after it were reconciled too, and nothing is left to catch up
    expected = {(today + timedelta(days=n)).isoformat() for n in range(-1, 3)}
    assert reconciled_days(clock_stack) >= expected
    assert run(http) == []


def test_a_chosen_day_is_reconciled_by_sending_its_event(
    http: Client, clock_stack: LocalStack, capsys: pytest.CaptureFixture[str]
) -> None:
    chosen = (clock_stack.clock.now().date() - timedelta(days=9)).isoformat()

    assert run(http, {"day": chosen}) == [{"day": chosen, "leads": 0, "drift": 0}]
    bad = http.request("POST", f"/_local/schedules/{RECONCILE}", json_body=["not", "an", "object"])
    assert bad.status == 400

    # The same through the CLI
    earlier = (clock_stack.clock.now().date() - timedelta(days=12)).isoformat()
    argv = ["schedules", "run", RECONCILE, "--event", json.dumps({"day": earlier})]
    assert cli.main([*argv, "--data-dir", str(clock_stack.data.root)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert json.loads(printed[-1]) == {"days": [{"day": earlier, "leads": 0, "drift": 0}]}
    assert {chosen, earlier} <= reconciled_days(clock_stack)
