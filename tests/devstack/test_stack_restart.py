"""A restart on the same data folder neither replays nor loses anything the stack owns."""

import json

import pytest

from devstack.lockfile import AlreadyRunning
from devstack.stack import LocalStack

from .conftest import STACK_TEMPLATE, Http, eventually

pytestmark = pytest.mark.e2e


def seen_count(stack, key):
    item = stack.clients.dynamodb.get_item(
        TableName="leadflow-local-EventsTable", Key={"PK": {"S": f"seen#{key}"}}
    )
    return int(item["Item"]["seen_count"]["N"]) if "Item" in item else 0


def test_restart_keeps_data_stream_positions_and_runtime_schedules(tmp_path):
    def start():
        return LocalStack(
            port=0, data_dir=tmp_path, template_path=STACK_TEMPLATE, log=lambda _: None, prewarm=False
        ).start()

    first = start()
    try:
        with pytest.raises(AlreadyRunning, match=r"already runs \(pid \d+\) on http://127.0.0.1:\d+"):
            LocalStack(port=0, data_dir=tmp_path, template_path=STACK_TEMPLATE).start()
        first.clients.dynamodb.put_item(
            TableName="leadflow-local-EventsTable", Item={"PK": {"S": "before"}, "entity": {"S": "thing"}}
        )
        eventually(lambda: seen_count(first, "before") == 1)
        body = {"in_seconds": 3600}
        name = json.loads(
            Http(first.url).request("POST", "/remind", body, {"Content-Type": "application/json"})[2]
        )["name"]
        first.schedules.tick()  # mirrors the new schedule into the data folder
    finally:
        first.stop()

    second = start()
    try:
        second.clients.dynamodb.put_item(
            TableName="leadflow-local-EventsTable", Item={"PK": {"S": "after"}, "entity": {"S": "thing"}}
        )
        eventually(lambda: seen_count(second, "after") == 1)
        assert seen_count(second, "before") == 1  # not replayed
        names = [s["Name"] for s in second.clients.scheduler.list_schedules()["Schedules"]]
        assert name in names  # put back into the fresh moto
        second.advance_clock(3700)
        items = second.clients.dynamodb.scan(TableName="leadflow-local-EventsTable")["Items"]
        assert any(name in i.get("event", {}).get("S", "") for i in items)
    finally:
        second.stop()
