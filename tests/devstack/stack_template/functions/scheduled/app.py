"""Records the events schedules send; POST /remind creates a one-time schedule through the Scheduler API."""

import json
import os
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3


def handler(event, context):
    table = boto3.resource("dynamodb").Table(os.environ["TABLE_NAME"])
    if event.get("version") == "2.0" and "requestContext" in event:
        body = json.loads(event.get("body") or "{}")
        clock_file = Path(os.environ["LEADFLOW_CLOCK_FILE"])
        offset = json.loads(clock_file.read_text())["offset_seconds"] if clock_file.exists() else 0
        when = datetime.now(UTC) + timedelta(seconds=offset + body.get("in_seconds", 3600))
        name = "remind-" + uuid.uuid4().hex[:8]
        target = {
            "Arn": context.invoked_function_arn,
            "RoleArn": "arn:aws:iam::000000000000:role/scheduler",
            "Input": json.dumps({"kind": "reminder", "name": name}),
        }
        if body.get("to_queue"):
            target = {"Arn": body["to_queue"], "RoleArn": target["RoleArn"], "Input": "queued-reminder"}
        boto3.client("scheduler").create_schedule(
            Name=name,
            ScheduleExpression=f"at({when.strftime('%Y-%m-%dT%H:%M:%S')})",
            FlexibleTimeWindow={"Mode": "OFF"},
            Target=target,
            ActionAfterCompletion=body.get("after", "DELETE"),
        )
        return {"statusCode": 201, "body": json.dumps({"name": name})}
    kind = event.get("kind") or event.get("detail-type")
    table.put_item(
        Item={
            "PK": f"scheduled#{uuid.uuid4().hex}",
            "entity": "scheduled",
            "kind": kind,
            "event": json.dumps(event),
        }
    )
    return {"ok": True}
