"""crm.tools.stream_replay: the AWS path of redriving a stream on-failure queue (fakes of SQS, the stream and
Lambda; the local stack's `make redrive` does the same and is tested over DynamoDB Local)."""

import io
import json
from datetime import UTC, datetime

from botocore.exceptions import ClientError
from crm.tools.stream_replay import replay

STREAM = "arn:aws:dynamodb:eu-west-1:123456789012:table/leads/stream/2026-01-01T00:00:00.000"


def record(sequence: int, pk: str) -> dict:
    return {
        "eventName": "MODIFY",
        "dynamodb": {
            "SequenceNumber": f"{sequence:021d}",
            "ApproximateCreationDateTime": datetime(2026, 12, 6, tzinfo=UTC),
            "Keys": {"PK": {"S": pk}},
            "NewImage": {"PK": {"S": pk}, "blob": {"B": b"\x00\x01"}},
        },
    }


class Streams:
    def __init__(self, records, trimmed=()):
        self.records = records
        self.trimmed = set(trimmed)

    def get_shard_iterator(self, StreamArn, ShardId, ShardIteratorType, SequenceNumber):
        if ShardId in self.trimmed:
            raise ClientError({"Error": {"Code": "TrimmedDataAccessException"}}, "GetShardIterator")
        start = next(
            i for i, r in enumerate(self.records) if r["dynamodb"]["SequenceNumber"] == SequenceNumber
        )
        return {"ShardIterator": str(start)}

    def get_records(self, ShardIterator, Limit):
        start = int(ShardIterator)
        page = self.records[start : start + 2]  # small pages: the range is followed across them
        return {"Records": page, "NextShardIterator": str(start + 2)}


class Sqs:
    def __init__(self, bodies):
        self.messages = {str(i): json.dumps(body) for i, body in enumerate(bodies)}
        self.deleted = []

    def receive_message(self, **_):
        return {
            "Messages": [{"MessageId": k, "ReceiptHandle": k, "Body": v} for k, v in self.messages.items()]
        }

    def delete_message(self, QueueUrl, ReceiptHandle):
        self.deleted.append(ReceiptHandle)
        del self.messages[ReceiptHandle]


class Lambda:
    def __init__(self, fail_keys=()):
        self.fail_keys = set(fail_keys)
        self.events = []

    def invoke(self, FunctionName, InvocationType, Payload):
        event = json.loads(Payload)
        self.events.append(event)
        failed = [
            {"itemIdentifier": r["dynamodb"]["SequenceNumber"]}
            for r in event["Records"]
            if r["dynamodb"]["Keys"]["PK"]["S"] in self.fail_keys
        ]
        return {"StatusCode": 200, "Payload": io.BytesIO(json.dumps({"batchItemFailures": failed}).encode())}


def failure(shard, start, end):
    info = {"shardId": shard, "startSequenceNumber": f"{start:021d}", "endSequenceNumber": f"{end:021d}"}
    return {
        "requestContext": {"condition": "RetryAttemptsExhausted"},
        "DDBStreamBatchInfo": {**info, "streamArn": STREAM},
    }


def test_each_failed_range_is_read_again_and_delivered_as_lambda_would():
    streams = Streams([record(n, f"LEAD#{n}") for n in range(1, 8)])
    sqs = Sqs([failure("shard-1", 2, 5), {"unrelated": True}])
    function = Lambda()

    report = replay("queue", "ScoringFunction", sqs=sqs, streams=streams, lambda_=function)

    assert report.replayed == 1 and report.skipped == 1 and sqs.deleted == ["0"]
    (event,) = function.events
    assert [r["dynamodb"]["Keys"]["PK"]["S"] for r in event["Records"]] == [
        "LEAD#2",
        "LEAD#3",
        "LEAD#4",
        "LEAD#5",
    ]
    first = event["Records"][0]
    assert first["dynamodb"]["ApproximateCreationDateTime"] == 1796515200
    assert first["dynamodb"]["NewImage"]["blob"] == {"B": "AAE="} and first["eventSourceARN"] == STREAM


def test_a_batch_that_fails_again_or_is_no_longer_in_the_stream_stays_in_the_queue():
    streams = Streams([record(n, f"LEAD#{n}") for n in range(1, 4)], trimmed={"shard-old"})
    sqs = Sqs([failure("shard-1", 1, 2), failure("shard-old", 1, 1)])

    report = replay(
        "queue", "ScoringFunction", sqs=sqs, streams=streams, lambda_=Lambda(fail_keys={"LEAD#2"})
    )

    assert report.replayed == 0 and sqs.deleted == []
    assert report.failed_again == [f"shard-1 {1:021d}..{2:021d}"]
    assert report.unreadable == [f"shard-old {1:021d}..{1:021d}"]
