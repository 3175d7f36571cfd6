"""Records every stream record it gets; items with fail=true are reported as failures
(fail_while=<key>: while the item <key> exists); an item's sleep_ms
makes its record take that long (a slow or hanging record)."""

import functools
import json
import os
import time

import boto3


@functools.cache
def table():
    return boto3.resource("dynamodb").Table(os.environ["TABLE_NAME"])


def handler(event, context):
    failures = []
    for record in event["Records"]:
        image = record["dynamodb"].get("NewImage", {})
        switch = image.get("fail_while", {}).get("S")
        if image.get("fail", {}).get("BOOL") or (switch and table().get_item(Key={"PK": switch}).get("Item")):
            failures.append({"itemIdentifier": record["dynamodb"]["SequenceNumber"]})
            continue
        if "sleep_ms" in image:
            time.sleep(int(image["sleep_ms"]["N"]) / 1000)
        # A counter, so that a replayed record would show.
        table().update_item(
            Key={"PK": "seen#" + image["PK"]["S"]},
            UpdateExpression="SET #e = :e, #r = :r, batch_size = :b ADD seen_count :one",
            ExpressionAttributeNames={"#e": "entity", "#r": "record"},
            ExpressionAttributeValues={
                ":e": "seen",
                ":r": json.dumps(record),
                ":b": len(event["Records"]),
                ":one": 1,
            },
        )
    return {"batchItemFailures": failures}
