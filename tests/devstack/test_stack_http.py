"""The gateway in front of real worker processes, driven over HTTP like a client."""

import base64
import json
import os
import time
from pathlib import Path

import pytest

from devstack.gateway import MAX_BODY_BYTES

pytestmark = pytest.mark.e2e


def test_the_function_gets_a_v2_event_and_a_lambda_context(stack, http):
    status, headers, body = http.request(
        "POST",
        "/public/7?x=1",
        b"name=Ada",
        {"Content-Type": "application/x-www-form-urlencoded", "Cookie": "a=1"},
    )
    assert status == 200
    echoed = json.loads(body)
    event = echoed["event"]
    assert event["routeKey"] == "ANY /public/{id}" and event["pathParameters"] == {"id": "7"}
    assert event["rawPath"] == "/public/7" and event["queryStringParameters"] == {"x": "1"}
    assert event["isBase64Encoded"] is True and base64.b64decode(event["body"]) == b"name=Ada"
    assert event["cookies"] == ["a=1"]
    assert event["requestContext"]["http"]["method"] == "POST"
    assert event["requestContext"]["requestId"] == headers["apigw-requestid"]
    context = echoed["context"]
    assert context["function_name"] == "leadflow-local-EchoFunction"
    assert context["memory_limit_in_mb"] == "384"
    assert context["invoked_function_arn"].endswith(":function:leadflow-local-EchoFunction")
    assert context["log_group_name"] == "/aws/lambda/leadflow-local-EchoFunction"
    assert 0 < context["remaining_ms"] <= 2000


def test_the_worker_sees_its_code_its_layer_and_only_its_environment(stack, http):
    echoed = json.loads(http.request("GET", "/public/1")[2])
    env, path = echoed["env"], echoed["sys_path"]
    assert path[0].endswith("functions/echo") and path[1].endswith("stack_template/layer")
    assert echoed["layer"] == "shared_layer"
    assert env["ONLY_ECHO"] == "yes" and env["STAGE"] == "test"
    assert env["TABLE_NAME"] == "leadflow-local-EventsTable"
    assert env["WORK_QUEUE_URL"].endswith("/000000000000/leadflow-local-WorkQueue")
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "384"
    assert env["AWS_ENDPOINT_URL_DYNAMODB"] == stack.dynamodb_local.endpoint_url
    # SQS and SES go through the fault switch's proxy in front of moto (POST /_local/faults)
    assert env["AWS_ENDPOINT_URL_SESV2"] == stack.fault_proxy.url
    assert env["LEADFLOW_CLOCK_FILE"] == str(stack.data.clock_file)
    assert env["POWERTOOLS_TRACE_DISABLED"] == "true" and env["AWS_REGION"] == "us-east-1"
    assert "PYTEST_CURRENT_TEST" not in env and "VIRTUAL_ENV" not in env


def test_two_functions_with_the_same_module_name_do_not_collide(http):
    other = json.loads(http.request("GET", "/other")[2])
    assert other == {"function": "other", "only_echo": None}
    assert json.loads(http.request("GET", "/public/1")[2])["layer"] == "shared_layer"


def test_worker_output_is_forwarded_with_the_function_name(stack, http):
    http.request("GET", "/public/log")
    assert any(line.startswith('[EchoFunction] {"level": "INFO", "message": "echo"}') for line in stack.logs)


def test_api_gateway_errors(http):
    assert http.request("GET", "/nowhere")[::2] == (404, b'{"message": "Not Found"}')
    assert http.request("DELETE", "/other")[0] == 404
    assert http.request("GET", "/public/1?raise=1")[::2] == (500, b'{"message": "Internal Server Error"}')
    assert http.request("GET", "/public/1?malformed=1")[0] == 500
    big = http.request("POST", "/public/1", b"x" * (MAX_BODY_BYTES + 1), {"Content-Type": "text/plain"})
    assert big[0] == 413


@pytest.mark.parametrize("method", ["TRACE", "PROPFIND"])
def test_any_other_method_is_api_gateways_json_404_not_a_501_page(http, method):
    status, headers, body = http.request(method, "/nowhere")

    assert (status, body) == (404, b'{"message": "Not Found"}')
    assert headers["content-type"] == "application/json"


def test_a_timed_out_or_crashed_worker_is_replaced(http):
    # A warm worker first: on a loaded machine a cold start alone can eat the 2 s budget
    assert http.request("GET", "/public/1")[0] == 200
    assert http.request("GET", "/public/1?sleep=3")[::2] == (503, b'{"message": "Service Unavailable"}')
    assert http.request("GET", "/public/1")[0] == 200
    first_pid = json.loads(http.request("GET", "/public/1")[2])["pid"]
    assert http.request("GET", "/public/1?exit=1")[0] == 500  # the same (last used) worker crashes
    status, _, body = http.request("GET", "/public/1")
    assert status == 200 and json.loads(body)["pid"] != first_pid


def test_bare_results_and_binary_bodies(http):
    status, headers, body = http.request("GET", "/public/1?bare=1")
    assert (
        status == 200 and json.loads(body) == {"bare": True} and headers["content-type"] == "application/json"
    )
    assert http.request("GET", "/public/1?binary=1")[2] == b"\x00\x01binary"


def test_cookies_become_set_cookie_headers(http):
    _, headers, _ = http.request("GET", "/public/1")
    assert headers.get_all("set-cookie") == ["session=1; Path=/", "theme=dark"]


def test_protected_routes_need_a_valid_token(stack, http):
    assert http.request("GET", "/private/1")[::2] == (401, b'{"message": "Unauthorized"}')
    assert http.request("GET", "/private/1", headers={"Authorization": "Bearer nope"})[0] == 401
    status, _, body = http.request(
        "GET", "/private/1", headers={"Authorization": f"Bearer {stack.token('rep')}"}
    )
    assert status == 200
    claims = json.loads(body)["event"]["requestContext"]["authorizer"]["jwt"]["claims"]
    assert claims["email"] == "rep1@demo.leadflow.local" and claims["cognito:groups"] == "[rep]"
    rep2 = stack.token(user="rep2")
    claims = json.loads(http.request("GET", "/private/1", headers={"Authorization": f"Bearer {rep2}"})[2])
    assert claims["event"]["requestContext"]["authorizer"]["jwt"]["claims"]["cognito:username"] == "rep2"


def test_the_jwks_is_served(stack, http):
    status, _, body = http.request("GET", "/_local/jwks.json")
    assert status == 200 and json.loads(body)["keys"][0]["kty"] == "RSA"


def test_cors_preflight_and_response_headers(http):
    status, headers, _ = http.request(
        "OPTIONS",
        "/private/1",
        headers={"Origin": "https://app.example.com", "Access-Control-Request-Method": "GET"},
    )
    assert status == 204 and headers["access-control-allow-origin"] == "https://app.example.com"
    assert (
        headers["access-control-allow-methods"] == "GET,POST" and headers["access-control-max-age"] == "300"
    )
    status, headers, _ = http.request(
        "OPTIONS",
        "/private/1",
        headers={"Origin": "https://evil.test", "Access-Control-Request-Method": "GET"},
    )
    assert "access-control-allow-origin" not in headers
    _, headers, _ = http.request("GET", "/public/1", headers={"Origin": "http://localhost:8000"})
    # The function's own (wrong) CORS header is replaced by the configured one.
    assert headers.get_all("access-control-allow-origin") == ["http://localhost:8000"]
    assert headers["access-control-expose-headers"] == "x-request-id"
    _, headers, _ = http.request("GET", "/public/1", headers={"Origin": "https://evil.test"})
    assert headers.get("access-control-allow-origin") is None


def test_edited_code_reaches_the_next_request(http):
    source = Path(__file__).parent / "stack_template" / "functions" / "echo" / "app.py"
    before = json.loads(http.request("GET", "/public/1")[2])["pid"]
    later = time.time() + 5
    os.utime(source, (later, later))  # as an editor's save would
    time.sleep(1.1)
    after = json.loads(http.request("GET", "/public/1")[2])["pid"]
    assert after != before


def test_after_wait_warm_every_function_has_a_worker_up(stack):
    stack.wait_warm()
    assert {name for name, pool in stack.pools.items() if not pool.pids()} == set()
