"""Event sources and schedules of the test template, run by the local stack."""

import json
import uuid

import pytest
from boto3.dynamodb.types import TypeDeserializer

from devstack.pumps import aws_stream_record

from .conftest import eventually

pytestmark = pytest.mark.e2e


def items(stack, prefix):
    response = stack.clients.dynamodb.scan(TableName="leadflow-local-EventsTable")
    return [i for i in response["Items"] if i["PK"]["S"].startswith(prefix)]


def get(stack, pk):
    return stack.clients.dynamodb.get_item(TableName="leadflow-local-EventsTable", Key={"PK": {"S": pk}}).get(
        "Item"
    )


def put(stack, pk, **attributes):
    item = {"PK": {"S": pk}, **attributes}
    stack.clients.dynamodb.put_item(TableName="leadflow-local-EventsTable", Item=item)


def queue_messages(stack, name, wait=1):
    url = stack.template.queue(name).url
    response = stack.clients.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=wait)
    return response.get("Messages", [])


def test_stream_records_that_match_the_filter_reach_the_function(stack):
    key = f"thing-{uuid.uuid4().hex[:6]}"
    put(stack, key, entity={"S": "thing"}, n={"N": "1"})
    seen = eventually(lambda: get(stack, f"seen#{key}"))
    record = json.loads(seen["record"]["S"])
    assert record["eventName"] == "INSERT" and record["eventSource"] == "aws:dynamodb"
    assert record["awsRegion"] == "us-east-1" and ":us-east-1:" in record["eventSourceARN"]
    assert record["dynamodb"]["NewImage"]["n"] == {"N": "1"}
    assert isinstance(record["dynamodb"]["ApproximateCreationDateTime"], int)
    assert record["dynamodb"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"


def dynamodb_local_records(stack, key):
    """The records of `key` exactly as DynamoDB Local's stream API answers (boto3-parsed)."""
    streams = stack.clients.streams
    arn = stack.clients.dynamodb.describe_table(TableName="leadflow-local-EventsTable")["Table"][
        "LatestStreamArn"
    ]
    found = []
    for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
        iterator = streams.get_shard_iterator(
            StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while iterator:
            response = streams.get_records(ShardIterator=iterator, Limit=1000)
            iterator = response.get("NextShardIterator")
            if not response["Records"]:
                break
            found += [r for r in response["Records"] if r["dynamodb"]["Keys"]["PK"]["S"] == key]
    return arn, found


# An item with an empty map at the top, inside a map and inside a list, plus the other types a lead holds.
EMPTY_MAPS = {
    "custom_fields": {"M": {}},
    "data": {"M": {"answers": {"M": {}}, "steps": {"L": [{"M": {}}, {"S": "x"}]}, "note": {"S": ""}}},
    "tags": {"L": []},
    "labels": {"SS": ["a"]},
    "gone": {"NULL": True},
    "n": {"N": "2"},
}


def test_dynamodb_locals_stream_records_become_what_aws_would_deliver(stack):
    # Given an item whose stream images DynamoDB Local writes its own way (an empty map as `{}`)
    key = f"thing-{uuid.uuid4().hex[:6]}"
    put(stack, key, entity={"S": "thing"}, **EMPTY_MAPS)
    eventually(lambda: get(stack, f"seen#{key}"))
    stream_arn, (raw,) = dynamodb_local_records(stack, key)

    # When the pump turns DynamoDB Local's real record into a Lambda record
    record = aws_stream_record(raw, stream_arn)

    # Then its image is typed as AWS types it, and a standard deserializer reads every attribute
    image = record["dynamodb"]["NewImage"]
    assert {name: image[name] for name in EMPTY_MAPS} == EMPTY_MAPS
    plain = {name: TypeDeserializer().deserialize(value) for name, value in image.items()}
    assert plain["custom_fields"] == {} and plain["data"] == {"answers": {}, "steps": [{}, "x"], "note": ""}
    assert record["awsRegion"] == "us-east-1" and ":us-east-1:" in record["eventSourceARN"]


def test_functions_get_empty_maps_typed_as_aws_types_them(stack):
    key = f"thing-{uuid.uuid4().hex[:6]}"
    put(stack, key, entity={"S": "thing"}, **EMPTY_MAPS)

    seen = eventually(lambda: get(stack, f"seen#{key}"))

    image = json.loads(seen["record"]["S"])["dynamodb"]["NewImage"]
    assert {name: image[name] for name in EMPTY_MAPS} == EMPTY_MAPS


def test_stream_records_the_filter_rejects_are_skipped(stack):
    key = f"other-{uuid.uuid4().hex[:6]}"
    put(stack, key, entity={"S": "other"})
    marker = f"thing-{uuid.uuid4().hex[:6]}"
    put(stack, marker, entity={"S": "thing"})
    eventually(lambda: get(stack, f"seen#{marker}"))  # in order: the rejected record came first
    assert get(stack, f"seen#{key}") is None


def test_failing_stream_records_go_to_the_on_failure_queue(stack):
    key = f"fail-{uuid.uuid4().hex[:6]}"
    put(stack, key, entity={"S": "thing"}, fail={"BOOL": True})
    messages = eventually(lambda: queue_messages(stack, "StreamFailureQueue"), timeout=20)
    info = json.loads(messages[0]["Body"])
    assert info["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert info["DDBStreamBatchInfo"]["batchSize"] == 1
    after = f"thing-{uuid.uuid4().hex[:6]}"
    put(stack, after, entity={"S": "thing"})
    eventually(lambda: get(stack, f"seen#{after}"))  # the shard moved on


def test_queue_messages_are_processed_and_failures_dead_lettered_then_redriven(stack):
    url = stack.template.queue("WorkQueue").url
    stack.clients.sqs.send_message(QueueUrl=url, MessageBody="ok-1")
    stack.clients.sqs.send_message(QueueUrl=url, MessageBody="fail")
    item = eventually(lambda: get(stack, "msg#ok-1"))
    record = json.loads(item["record"]["S"])
    assert record["eventSource"] == "aws:sqs" and record["eventSourceARN"].endswith(
        ":leadflow-local-WorkQueue"
    )
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    dlq = stack.template.queue("WorkDeadLetterQueue").url

    def dead_lettered():
        attributes = stack.clients.sqs.get_queue_attributes(
            QueueUrl=dlq, AttributeNames=["ApproximateNumberOfMessages"]
        )
        return int(attributes["Attributes"]["ApproximateNumberOfMessages"]) == 1

    eventually(dead_lettered, timeout=20)
    assert stack.redrive("WorkQueue") == {"leadflow-local-WorkQueue": 1}
    attributes = stack.clients.sqs.get_queue_attributes(
        QueueUrl=dlq, AttributeNames=["ApproximateNumberOfMessages"]
    )
    assert attributes["Attributes"]["ApproximateNumberOfMessages"] == "0"


def test_template_schedules_fire_when_the_clock_passes_them(stack):
    before = len(items(stack, "scheduled#"))
    stack.advance_clock(86_400 + 60)  # the rate(1 day) rule
    kinds = [i["kind"]["S"] for i in eventually(lambda: items(stack, "scheduled#"))]
    assert len(kinds) > before and "Scheduled Event" in kinds
    event = next(
        json.loads(i["event"]["S"]) for i in items(stack, "scheduled#") if i["kind"]["S"] == "Scheduled Event"
    )
    assert event["source"] == "aws.events" and event["resources"][0].endswith(
        ":rule/leadflow-local-ScheduledFunctionNightly"
    )


def test_a_schedule_can_be_run_now(stack, http):
    status, _, body = http.request("POST", "/_local/schedules/ScheduledFunctionWeekly")
    assert status == 200 and json.loads(body)[0]["ok"]
    eventually(lambda: [i for i in items(stack, "scheduled#") if i["kind"]["S"] == "weekly"])
    assert http.request("POST", "/_local/schedules/NoSuchSchedule")[0] == 404


def test_one_time_schedules_created_at_runtime_fire_when_due_then_go(stack, http):
    status, _, body = http.request(
        "POST", "/remind", {"in_seconds": 3600}, {"Content-Type": "application/json"}
    )
    assert status == 201
    name = json.loads(body)["name"]
    stack.schedules.tick()
    assert not [i for i in items(stack, "scheduled#") if name in i["event"]["S"]]
    status, _, body = http.request("POST", "/_local/clock", {"advance_seconds": 3700})
    assert status == 200 and json.loads(body)["offset_seconds"] >= 3700
    fired = eventually(lambda: [i for i in items(stack, "scheduled#") if name in i["event"]["S"]])
    assert fired[0]["kind"]["S"] == "reminder"
    names = [s["Name"] for s in stack.clients.scheduler.list_schedules()["Schedules"]]
    assert name not in names  # ActionAfterCompletion DELETE


def test_one_time_schedules_can_target_a_queue(stack, http):
    queue_arn = stack.template.queue("WorkQueue").arn
    body = {"in_seconds": 60, "to_queue": queue_arn, "after": "NONE"}
    name = json.loads(http.request("POST", "/remind", body, {"Content-Type": "application/json"})[2])["name"]
    stack.advance_clock(120)
    eventually(lambda: get(stack, "msg#queued-reminder"))
    stack.advance_clock(120)
    names = [s["Name"] for s in stack.clients.scheduler.list_schedules()["Schedules"]]
    assert name in names  # ActionAfterCompletion NONE keeps it, and it does not fire twice
    assert f"default/{name}" in json.loads(stack.data.schedules.read_text())["done"]


def test_seed_and_template_parameters_and_mail_identities_exist(stack):
    ssm = stack.clients.ssm
    secret = ssm.get_parameter(Name="/stack-test/test/partners/acme/webhook-secret", WithDecryption=True)[
        "Parameter"
    ]
    assert secret["Value"] == "local-demo-secret" and secret["Type"] == "SecureString"
    assert ssm.get_parameter(Name="/stack-test/test/declared")["Parameter"]["Value"] == "declared-in-template"
    identities = {i["IdentityName"] for i in stack.clients.sesv2.list_email_identities()["EmailIdentities"]}
    assert "noreply@stack-test.local" in identities


def test_sent_mail_shows_in_the_outbox(stack, http):
    stack.clients.sesv2.send_email(
        FromEmailAddress="noreply@stack-test.local",
        Destination={"ToAddresses": ["ada@example.com"]},
        Content={"Simple": {"Subject": {"Data": "Welcome"}, "Body": {"Html": {"Data": "<p>Hello Ada</p>"}}}},
    )
    status, _, body = http.request("GET", "/_local/outbox.json")
    mail = json.loads(body)[0]
    assert status == 200 and mail["subject"] == "Welcome" and mail["to"] == ["ada@example.com"]
    assert mail["html"] == "<p>Hello Ada</p>" and mail["from"] == "noreply@stack-test.local"
    status, headers, page = http.request("GET", "/_local/outbox")
    assert status == 200 and headers["content-type"].startswith("text/html") and b"Welcome" in page


def test_events_matching_a_rule_pattern_reach_the_function(stack):
    marker = uuid.uuid4().hex
    stack.clients.events.put_events(
        Entries=[
            {
                "Source": "stack.test",
                "DetailType": "thing.ignored",
                "Detail": json.dumps({"m": marker + "-no"}),
            },
            {"Source": "stack.test", "DetailType": "thing.happened", "Detail": json.dumps({"m": marker})},
        ]
    )
    fired = eventually(lambda: [i for i in items(stack, "scheduled#") if marker in i["event"]["S"]])
    event = json.loads(fired[0]["event"]["S"])
    assert event["detail-type"] == "thing.happened" and event["detail"] == {"m": marker}
    assert event["source"] == "stack.test"
    assert all(marker + "-no" not in i["event"]["S"] for i in items(stack, "scheduled#"))
