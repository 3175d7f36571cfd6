"""S3 through the local stack's own port: a presigned URL a function makes works with plain HTTP on
127.0.0.1, and the template's bucket notification (SAM `Type: S3`, prefix and suffix filters) reaches the
function, which reads the object back through the same endpoint."""

import json
import uuid

import pytest

from .conftest import eventually

pytestmark = pytest.mark.e2e


def stored(stack, pk):
    return stack.clients.dynamodb.get_item(TableName="leadflow-local-EventsTable", Key={"PK": {"S": pk}}).get(
        "Item"
    )


def presigned_put(http, key):
    status, _, body = http.request(
        "POST", "/upload-url", {"key": key}, headers={"Content-Type": "application/json"}
    )
    assert status == 200, body
    return json.loads(body)["url"]


def test_a_presigned_put_through_the_stack_reaches_the_bucket_and_its_function(stack, http):
    key = f"incoming/{uuid.uuid4().hex[:8]} list.csv"
    url = presigned_put(http, key)
    assert url.startswith(stack.url + "/_s3/leadflow-local-uploadsbucket/")

    status, _, _ = http.request("PUT", url[len(stack.url) :], b"a,b\n1,2\n")

    assert status == 200
    item = eventually(lambda: stored(stack, f"s3#{key}"), timeout=30)
    record = json.loads(item["record"]["S"])
    assert record["eventSource"] == "aws:s3" and record["eventName"] == "ObjectCreated:Put"
    assert record["s3"]["bucket"]["name"] == "leadflow-local-uploadsbucket"
    assert record["s3"]["object"]["size"] == 8 and "+list.csv" in record["s3"]["object"]["key"]
    assert item["head"]["S"] == "a,b\n1"  # the function's own GetObject with a Range, through the stack
    body = stack.clients.s3.get_object(Bucket="leadflow-local-uploadsbucket", Key=key)["Body"].read()
    assert body == b"a,b\n1,2\n"


def test_objects_outside_the_filter_notify_nobody(stack, http):
    for key in (f"elsewhere/{uuid.uuid4().hex[:8]}.csv", f"incoming/{uuid.uuid4().hex[:8]}.txt"):
        url = presigned_put(http, key)
        assert http.request("PUT", url[len(stack.url) :], b"x")[0] == 200
    marker = f"incoming/{uuid.uuid4().hex[:8]}.csv"  # sent last: once it is seen, the others had their turn
    assert http.request("PUT", presigned_put(http, marker)[len(stack.url) :], b"x")[0] == 200
    eventually(lambda: stored(stack, f"s3#{marker}"), timeout=30)
    seen = stack.clients.dynamodb.scan(TableName="leadflow-local-EventsTable")["Items"]
    keys = [item["PK"]["S"] for item in seen if item["PK"]["S"].startswith("s3#")]
    assert not [k for k in keys if "elsewhere/" in k or k.endswith(".txt")]


def test_the_bucket_answers_a_browser_preflight_from_the_templates_cors_rules(stack, http):
    status, headers, _ = http.request(
        "OPTIONS",
        "/_s3/leadflow-local-uploadsbucket/incoming/x.csv",
        headers={"Origin": "http://localhost:8000", "Access-Control-Request-Method": "PUT"},
    )
    assert status == 200
    assert headers["Access-Control-Allow-Origin"] == "http://localhost:8000"
