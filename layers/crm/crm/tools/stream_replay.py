"""Replay the stream batches a function gave up on, from its on-failure queue (AWS; locally `make redrive`).

    PYTHONPATH=layers/crm python -m crm.tools.stream_replay \\
        --queue-url <ScoringFailureQueue or LeadEventsFailureQueue URL> --function <its function's name>

Each message of the queue is Lambda's on-failure record of one stream batch: its shard and sequence range
(`DDBStreamBatchInfo`), not the records. For each, the range is read again from the table's stream (which
holds records for 24 hours) and delivered to the function as Lambda would (one synchronous invocation with
`{"Records": [...]}`); when the function answers without an error and without `batchItemFailures`, the message
is deleted. A range the stream no longer holds, or a batch that fails again, stays in the queue and is
listed: the reconciler's pass (scoring behind, unrouted leads) repairs those leads from the table's state.
Safe to run again: the stream functions are idempotent.
"""

import argparse
import base64
import json
import sys
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from crm.platform import aws


@dataclass
class ReplayReport:
    replayed: int = 0
    failed_again: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    skipped: int = 0  # not an on-failure record of a stream batch


def _plain(value: Any) -> Any:
    """boto3's parsed stream record as the JSON Lambda delivers (epoch seconds, base64 binaries)."""
    if isinstance(value, datetime):
        return int(value.timestamp())
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def read_range(streams: Any, info: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The records of `info`'s shard from its start to its end sequence number, or None if not readable."""
    try:
        iterator = streams.get_shard_iterator(
            StreamArn=info["streamArn"],
            ShardId=info["shardId"],
            ShardIteratorType="AT_SEQUENCE_NUMBER",
            SequenceNumber=info["startSequenceNumber"],
        )["ShardIterator"]
    except ClientError:
        return None  # TrimmedDataAccessException, ResourceNotFoundException: the stream no longer holds it
    end = int(info["endSequenceNumber"])
    found: list[dict[str, Any]] = []
    while iterator:
        response = streams.get_records(ShardIterator=iterator, Limit=1000)
        records = response.get("Records", [])
        found += [r for r in records if int(r["dynamodb"]["SequenceNumber"]) <= end]
        if not records or int(records[-1]["dynamodb"]["SequenceNumber"]) >= end:
            break
        iterator = response.get("NextShardIterator")
    if not found or found[0]["dynamodb"]["SequenceNumber"] != info["startSequenceNumber"]:
        return None
    return [{**_plain(r), "eventSourceARN": info["streamArn"]} for r in found]


def _delivered(response: dict[str, Any]) -> bool:
    if response.get("FunctionError"):
        return False
    payload = json.loads(response["Payload"].read() or b"null")
    return not (isinstance(payload, dict) and payload.get("batchItemFailures"))


def replay(
    queue_url: str, function: str, *, sqs: Any = None, streams: Any = None, lambda_: Any = None
) -> ReplayReport:
    sqs = sqs or aws.client("sqs")
    streams = streams or aws.client("dynamodbstreams")
    lambda_ = lambda_ or aws.client("lambda")
    report = ReplayReport()
    seen: set[str] = set()
    while True:
        messages = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0, VisibilityTimeout=900
        ).get("Messages", [])
        fresh = [m for m in messages if m["MessageId"] not in seen]
        if not fresh:
            return report
        for message in fresh:
            seen.add(message["MessageId"])
            info = json.loads(message["Body"]).get("DDBStreamBatchInfo")
            if not info:
                report.skipped += 1
                continue
            name = f"{info['shardId']} {info['startSequenceNumber']}..{info['endSequenceNumber']}"
            records = read_range(streams, info)
            if records is None:
                report.unreadable.append(name)
                continue
            response = lambda_.invoke(
                FunctionName=function,
                InvocationType="RequestResponse",
                Payload=json.dumps({"Records": records}).encode(),
            )
            if not _delivered(response):
                report.failed_again.append(name)
                continue
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            report.replayed += 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--queue-url", required=True, help="the stream mapping's on-failure queue")
    parser.add_argument("--function", required=True, help="the function of that mapping (name or ARN)")
    args = parser.parse_args(argv)
    report = replay(args.queue_url, args.function)
    print(f"replayed {report.replayed} batch(es)")
    for name in report.failed_again:
        print(f"failed again (left in the queue): {name}")
    for name in report.unreadable:
        print(f"no longer in the stream (left in the queue; the reconciler repairs its leads): {name}")
    return 0 if not report.failed_again else 1


if __name__ == "__main__":
    sys.exit(main())
