"""The event source mappings keep Lambda's promise through faults: a worker killed, hanging or timing out
mid-batch is a function error and the batch is retried (bisected, retried, then sent to the on-failure
queue), never dropped; the pumps deliver full batches when records wait and report their lag; the fault
switch throttles SQS and SES."""

import json
import os
import random
import signal
import threading
import time
import uuid

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from devstack.pumps import CheckpointStore, StreamPump
from devstack.stack import LocalStack
from devstack.workers import Invocation

from .conftest import STACK_TEMPLATE, Http, eventually

pytestmark = pytest.mark.e2e

TABLE = "leadflow-local-EventsTable"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    lines: list[str] = []
    local = LocalStack(
        port=0,
        data_dir=tmp_path_factory.mktemp("pump-faults"),
        template_path=STACK_TEMPLATE,
        log=lines.append,
        failed_batch_visibility_s=1,
    )
    local.logs = lines
    with local:
        yield local


def put(stack, pk, **attributes):
    stack.clients.dynamodb.put_item(
        TableName=TABLE, Item={"PK": {"S": pk}, "entity": {"S": "thing"}, **attributes}
    )


def seen(stack, pk):
    item = stack.clients.dynamodb.get_item(
        TableName=TABLE, Key={"PK": {"S": f"seen#{pk}"}}, ConsistentRead=True
    )
    return item.get("Item")


def failure_records(stack, wait=0):
    url = stack.template.queue("StreamFailureQueue").url
    found = []
    while True:
        response = stack.clients.sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=wait
        )
        messages = response.get("Messages", [])
        if not messages:
            return found
        for message in messages:
            found.append(json.loads(message["Body"]))
            stack.clients.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        wait = 0


def kill_workers(pool, count, spacing):
    """kill -9 the function's workers `count` times at random moments, as an out-of-memory kill would."""
    killed = 0
    for _ in range(count):
        time.sleep(random.uniform(*spacing))
        for pid in pool.pids():
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except ProcessLookupError:
                pass
    return killed


def reported_keys(stack, failure):
    """The keys of the records a stream failure record names (its shard's sequence range, read back)."""
    info = failure["DDBStreamBatchInfo"]
    streams = stack.clients.streams
    arn = stack.clients.dynamodb.describe_table(TableName=TABLE)["Table"]["LatestStreamArn"]
    iterator = streams.get_shard_iterator(
        StreamArn=arn,
        ShardId=info["shardId"],
        ShardIteratorType="AT_SEQUENCE_NUMBER",
        SequenceNumber=info["startSequenceNumber"],
    )["ShardIterator"]
    keys, end = [], int(info["endSequenceNumber"])
    while iterator:
        response = streams.get_records(ShardIterator=iterator, Limit=100)
        records = [r for r in response["Records"] if int(r["dynamodb"]["SequenceNumber"]) <= end]
        keys += [r["dynamodb"]["Keys"]["PK"]["S"] for r in records]
        if not response["Records"] or len(records) < len(response["Records"]):
            return keys
        iterator = response.get("NextShardIterator")
    return keys


def test_workers_killed_mid_batch_lose_no_record(stack):
    # Given a steady flow of records, each taking a moment to process (batches of 10 take ~0.3 s)
    pool = stack.pools["StreamFunction"]
    failures_before = pool.failures
    keys = [f"kill-{uuid.uuid4().hex[:8]}" for _ in range(60)]

    def writer():
        for key in keys:
            put(stack, key, sleep_ms={"N": "30"})
            time.sleep(0.1)

    thread = threading.Thread(target=writer)
    thread.start()
    # When its workers are killed (kill -9) at random moments of its batches
    killed = kill_workers(pool, 6, (0.8, 1.6))
    thread.join()

    # Then no record is dropped: each reaches the function, or (its retry spent: MaximumRetryAttempts is 1
    # here, and a retry on a fresh worker can be killed again) the on-failure queue names it
    def accounted():
        reported = {key for failure in failure_records(stack) for key in reported_keys(stack, failure)}
        accounted.reported |= reported
        return all(seen(stack, key) or key in accounted.reported for key in keys)

    accounted.reported = set()
    eventually(accounted, timeout=60)
    assert killed >= 1 and pool.failures > failures_before, (
        "no invocation was killed: the test proved nothing"
    )
    # and most were processed through the kills (bisected and retried), not given up on
    assert sum(1 for key in keys if seen(stack, key)) >= len(keys) - 5, accounted.reported


def test_a_hanging_record_is_isolated_by_bisecting_and_reported_alone(stack):
    # Given one record that hangs past the function's timeout (5 s) among quick ones, arriving as one batch
    quick = [f"quick-{uuid.uuid4().hex[:8]}" for _ in range(7)]
    hang = f"hang-{uuid.uuid4().hex[:8]}"
    with ThreadedWrites(stack) as writes:
        for key in quick[:3]:
            writes.put(key)
        writes.put(hang, sleep_ms={"N": "20000"})
        for key in quick[3:]:
            writes.put(key)
    # Then its neighbours are processed (bisecting splits the timed-out batch until the hang is alone)
    eventually(lambda: all(seen(stack, key) for key in quick), timeout=40)
    # and the hanging record alone goes to the on-failure queue, once its retry is spent
    records = eventually(lambda: failure_records(stack, wait=1), timeout=40)
    assert [r["DDBStreamBatchInfo"]["batchSize"] for r in records] == [1]
    assert records[0]["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert seen(stack, hang) is None


def test_a_poison_record_reported_by_the_function_is_sent_alone_its_neighbours_processed(stack):
    failure_records(stack)
    # Given a batch with one record the function reports as failed (a rule that raises for that lead)
    keys = [f"near-{uuid.uuid4().hex[:8]}" for _ in range(8)]
    poison = f"poison-{uuid.uuid4().hex[:8]}"
    with ThreadedWrites(stack) as writes:
        for key in keys[:4]:
            writes.put(key)
        writes.put(poison, fail={"BOOL": True})
        for key in keys[4:]:
            writes.put(key)
    # Then its neighbours are processed at once, and bisecting leaves the poison record alone in the report
    eventually(lambda: all(seen(stack, key) for key in keys), timeout=10)
    (record,) = eventually(lambda: failure_records(stack, wait=1), timeout=30)
    assert record["DDBStreamBatchInfo"]["batchSize"] == 1
    assert reported_keys(stack, record) == [poison]


class ThreadedWrites:
    """Items written in one quick burst (so the pump reads them as one batch)."""

    def __init__(self, stack):
        self.stack = stack
        self.items = []

    def put(self, key, **attributes):
        self.items.append({"PK": {"S": key}, "entity": {"S": "thing"}, **attributes})

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        requests = [{"PutRequest": {"Item": item}} for item in self.items]
        self.stack.clients.dynamodb.batch_write_item(RequestItems={TABLE: requests})


def backlog_batch_sizes(stack, prefix, others_per_key):
    """Write 30 selected records (and `others_per_key` records the filter drops after each) while the
    function is busy with a slow first one; the size of the batch each selected record arrived in."""
    slow = f"slow-{uuid.uuid4().hex[:8]}"
    put(stack, slow, sleep_ms={"N": "1500"})
    time.sleep(0.5)
    keys = [f"{prefix}-{uuid.uuid4().hex[:8]}" for _ in range(30)]
    per_write = 25 // (1 + others_per_key)  # BatchWriteItem takes 25 items
    for start in range(0, len(keys), per_write):
        with ThreadedWrites(stack) as writes:
            for key in keys[start : start + per_write]:
                writes.put(key)
                for number in range(others_per_key):
                    writes.put(f"{key}-other-{number}", entity={"S": "other"})
    eventually(lambda: all(seen(stack, key) for key in keys), timeout=30)
    return [int(seen(stack, key)["batch_size"]["N"]) for key in keys]


def test_a_waiting_backlog_is_delivered_in_full_batches(stack):
    # Given records that pile up while the function is busy with a slow first one
    sizes = backlog_batch_sizes(stack, "backlog", others_per_key=0)
    # Then the backlog arrives in batches of the mapping's BatchSize (10), not one record at a time
    assert max(sizes) == 10 and sum(1 for s in sizes if s == 10) >= 20, sizes


def test_records_the_filters_drop_do_not_shrink_the_batches(stack):
    # Given a backlog in which four of every five records are items the mapping's filter drops
    sizes = backlog_batch_sizes(stack, "mixed", others_per_key=4)
    # Then the selected records still arrive in batches of BatchSize (10), as Lambda fills them
    assert max(sizes) == 10 and sum(1 for s in sizes if s == 10) >= 20, sizes


def test_status_reports_each_consumers_lag_and_batches(stack):
    def stream_status():
        status, _, body = Http(stack.url).request("GET", "/_local/status")
        assert status == 200
        consumers = json.loads(body)["consumers"]
        stream = next(c for c in consumers.values() if c["function"] == "StreamFunction")
        stream_status.seen.append((stream["records_behind"], stream["iterator_age_s"]))
        return stream["records_behind"] == 0 and (consumers, stream)

    stream_status.seen = []
    consumers, stream = eventually(stream_status, timeout=30)
    assert stream["kind"] == "dynamodb" and stream["batch_size"] == 10
    assert stream["records_behind"] == 0 and stream["selected_behind"] == 0
    assert stream["invocations"] > 0 and stream["largest_batch"] == 10 and stream["average_batch"] > 1
    queue = next(c for c in consumers.values() if c["function"] == "QueueFunction")
    assert queue["kind"] == "sqs" and {"messages_waiting", "messages_in_flight"} <= set(queue)


def test_lag_counts_the_records_after_a_consumers_position_and_those_its_filter_selects(stack, tmp_path):
    # A consumer of the same stream that has read nothing yet (its own, empty checkpoints; never started)
    running = next(p for p in stack.pumps if isinstance(p, StreamPump))
    probe = StreamPump(
        running.mapping,
        stack.template,
        dynamodb=stack.clients.dynamodb,
        streams=stack.clients.streams,
        sqs=stack.clients.sqs,
        checkpoints=CheckpointStore(tmp_path / "checkpoints.json"),
        invoke=lambda *_: Invocation("x"),
        log=lambda _line: None,
        stop=threading.Event(),
    )
    before = probe.lag()
    for _ in range(3):
        put(stack, f"behind-{uuid.uuid4().hex[:8]}")
    for _ in range(2):
        put(stack, f"other-{uuid.uuid4().hex[:8]}", entity={"S": "other"})
    after = probe.lag()
    assert after["records_behind"] - before["records_behind"] >= 5
    assert after["selected_behind"] - before["selected_behind"] == 3  # the filter selects entity "thing"
    # while the running consumer catches up with them
    eventually(lambda: running.lag()["selected_behind"] == 0, timeout=15)


def moto_client(stack, service):
    return boto3.client(
        service,
        endpoint_url=stack.fault_proxy.url,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=Config(retries={"max_attempts": 1, "mode": "standard"}),
    )


def test_the_fault_switch_throttles_sqs_and_ses_as_aws_does_then_lets_them_through(stack):
    http = Http(stack.url)
    sqs = moto_client(stack, "sqs")
    sesv2 = moto_client(stack, "sesv2")
    url = stack.template.queue("WorkQueue").url
    status, _, body = http.request("POST", "/_local/faults", {"throttle": ["sqs", "ses"], "seconds": 2})
    assert status == 200 and set(json.loads(body)["throttled"]) == {"sqs", "ses"}

    with pytest.raises(ClientError) as raised:
        sqs.send_message(QueueUrl=url, MessageBody="throttled")
    assert raised.value.response["Error"]["Code"] in (
        "RequestThrottled",
        "AWS.SimpleQueueService.RequestThrottled",
    )
    with pytest.raises(ClientError) as raised:
        sesv2.send_email(
            FromEmailAddress="noreply@stack-test.local",
            Destination={"ToAddresses": ["a@example.com"]},
            Content={"Simple": {"Subject": {"Data": "s"}, "Body": {"Text": {"Data": "b"}}}},
        )
    assert raised.value.response["Error"]["Code"] == "TooManyRequestsException"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429

    time.sleep(2.2)
    sqs.send_message(QueueUrl=url, MessageBody=f"after-{uuid.uuid4().hex[:6]}")  # through again
    rejected = json.loads(http.request("GET", "/_local/faults")[2])["rejected_calls"]
    assert rejected["sqs"] >= 1 and rejected["ses"] >= 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"throttle": ["s3"], "seconds": 2}, "throttle"),
        ({"throttle": "sqs", "seconds": 2}, "throttle"),
        ({"throttle": ["sqs"]}, "seconds"),
        ({"throttle": ["sqs"], "seconds": 100000}, "seconds"),
        ([], "body"),
    ],
)
def test_a_bad_fault_request_is_a_400_naming_the_field(stack, body, field):
    status, _, answer = Http(stack.url).request("POST", "/_local/faults", body)
    assert status == 400 and json.loads(answer)["message"].startswith(field)


def failure_queue_depth(stack):
    url = stack.template.queue("StreamFailureQueue").url
    attributes = stack.clients.sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


def test_redrive_reads_a_failed_stream_batch_again_and_delivers_it(stack):
    failure_records(stack)  # earlier tests' records are theirs
    # Given a record the function gives up on (it fails while a switch item exists) ...
    switch = f"switch#{uuid.uuid4().hex[:8]}"
    stack.clients.dynamodb.put_item(TableName=TABLE, Item={"PK": {"S": switch}})
    key = f"redrive-{uuid.uuid4().hex[:8]}"
    put(stack, key, fail_while={"S": switch})
    eventually(lambda: failure_queue_depth(stack) == 1, timeout=30)
    assert seen(stack, key) is None
    # ... and the cause is gone
    stack.clients.dynamodb.delete_item(TableName=TABLE, Key={"PK": {"S": switch}})

    # When the on-failure queue is redriven (make redrive, the CLI and POST /_local/redrive do this)
    status, _, body = Http(stack.url).request("POST", "/_local/redrive", {"queue": "StreamFunction"})

    # Then the shard range it names is read again and delivered: the record is processed, the queue empty
    assert status == 200 and json.loads(body) == {"leadflow-local-StreamFailureQueue": 1}
    assert int(seen(stack, key)["seen_count"]["N"]) == 1
    assert failure_queue_depth(stack) == 0


def test_a_failed_range_the_stream_no_longer_holds_stays_in_the_queue(stack):
    failure_records(stack)
    url = stack.template.queue("StreamFailureQueue").url
    info = {
        "shardId": "shardId-00000000000000000000-00000000",
        "startSequenceNumber": "1",
        "endSequenceNumber": "2",
        "batchSize": 2,
        "streamArn": "arn:aws:dynamodb:us-east-1:000000000000:table/gone/stream/2020-01-01T00:00:00.000",
    }
    function_arn = stack.template.functions["StreamFunction"].arn
    body = {"requestContext": {"functionArn": function_arn}, "DDBStreamBatchInfo": info}
    stack.clients.sqs.send_message(QueueUrl=url, MessageBody=json.dumps(body))

    assert stack.redrive("StreamFailureQueue") == {"leadflow-local-StreamFailureQueue": 0}
    assert failure_queue_depth(stack) == 1
    assert any("no longer in the stream" in line for line in stack.logs)
    failure_records(stack)
