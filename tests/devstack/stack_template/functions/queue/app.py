"""Stores each message; a body of "fail" is reported as a failure (so it ends in the DLQ)."""

import json
import os

import boto3


def handler(event, context):
    table = boto3.resource("dynamodb").Table(os.environ["TABLE_NAME"])
    failures = []
    for record in event["Records"]:
        if record["body"] == "fail":
            failures.append({"itemIdentifier": record["messageId"]})
            continue
        table.put_item(
            Item={"PK": "msg#" + record["body"], "entity": "message", "record": json.dumps(record)}
        )
    return {"batchItemFailures": failures}
