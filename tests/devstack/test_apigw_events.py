"""Payload format 2.0: the event shape and the response conversion."""

import base64
import json
from datetime import UTC, datetime

import pytest

from devstack.apigw_events import (
    HttpRequest,
    MalformedResponse,
    build_event,
    convert_response,
    is_text_content,
)
from devstack.auth import Authorization


def request(body=b"", content_type=None, query="", extra=()):
    headers = [
        ("Host", "127.0.0.1:3000"),
        ("User-Agent", "curl/8"),
        ("X-Multi", "a"),
        ("X-Multi", "b"),
        *extra,
    ]
    if content_type:
        headers.append(("Content-Type", content_type))
    return HttpRequest("POST", "/leads/42", query, headers, body, "127.0.0.1")


def event_for(req, authorization=None):
    return build_event(
        req,
        route_key="POST /leads/{id}",
        path_parameters={"id": "42"},
        api_id="httpapi",
        request_id="rid=",
        authorization=authorization,
        now=datetime(2025, 3, 1, 12, 30, 5, tzinfo=UTC),
    )


def test_event_has_the_http_api_v2_shape():
    event = event_for(request(b'{"a": 1}', "application/json", "x=1&y=2&x=3", [("Cookie", "a=1; b=2")]))
    assert event["version"] == "2.0"
    assert event["routeKey"] == "POST /leads/{id}"
    assert event["rawPath"] == "/leads/42" and event["rawQueryString"] == "x=1&y=2&x=3"
    assert event["cookies"] == ["a=1", "b=2"]
    assert "cookie" not in event["headers"]
    assert event["headers"]["x-multi"] == "a,b" and event["headers"]["user-agent"] == "curl/8"
    assert event["queryStringParameters"] == {"x": "1,3", "y": "2"}
    assert event["pathParameters"] == {"id": "42"}
    context = event["requestContext"]
    assert context["http"] == {
        "method": "POST",
        "path": "/leads/42",
        "protocol": "HTTP/1.1",
        "sourceIp": "127.0.0.1",
        "userAgent": "curl/8",
    }
    assert context["stage"] == "$default" and context["requestId"] == "rid="
    assert context["time"] == "01/Mar/2025:12:30:05 +0000" and context["timeEpoch"] == 1740832205000
    assert event["body"] == '{"a": 1}' and event["isBase64Encoded"] is False


def test_form_posts_arrive_base64_encoded_like_on_aws():
    event = event_for(request(b"first_name=Ada&email=a%40b.c", "application/x-www-form-urlencoded"))
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == b"first_name=Ada&email=a%40b.c"


def test_a_json_body_that_is_not_utf8_arrives_as_sent_not_with_replacement_characters():
    sent = b'{"first_name": "\xff\xfe"}'

    event = event_for(request(sent, "application/json"))

    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == sent


def test_text_types():
    assert is_text_content("text/plain; charset=utf-8")
    assert is_text_content("application/vnd.api+json")
    assert not is_text_content("application/x-www-form-urlencoded")
    assert not is_text_content("image/png")
    assert not is_text_content(None)


def test_no_body_means_no_body_key():
    event = event_for(request())
    assert "body" not in event and event["isBase64Encoded"] is False and "queryStringParameters" not in event


def test_authorizer_claims_are_passed_on():
    event = event_for(request(), Authorization({"sub": "u1", "cognito:groups": "[rep]"}, None))
    assert event["requestContext"]["authorizer"] == {
        "jwt": {"claims": {"sub": "u1", "cognito:groups": "[rep]"}, "scopes": None}
    }


def test_a_full_response_becomes_http():
    response = convert_response(
        {
            "statusCode": 201,
            "headers": {"content-type": "application/json", "x-n": 1},
            "multiValueHeaders": {"x-m": ["1", "2"]},
            "cookies": ["a=1", "b=2"],
            "body": '{"id": "x"}',
        }
    )
    assert response.status == 201 and response.body == b'{"id": "x"}'
    assert ("x-n", "1") in response.headers and ("x-m", "2") in response.headers
    assert [v for k, v in response.headers if k == "set-cookie"] == ["a=1", "b=2"]


def test_base64_bodies_are_decoded():
    response = convert_response(
        {"statusCode": 200, "body": base64.b64encode(b"\x00\x01").decode(), "isBase64Encoded": True}
    )
    assert response.body == b"\x00\x01"


def test_a_bare_dict_or_string_is_200_json():
    bare = convert_response({"ok": True})
    assert bare.status == 200 and json.loads(bare.body) == {"ok": True}
    assert ("content-type", "application/json") in bare.headers
    assert convert_response("hello").body == b"hello"


def test_malformed_responses_are_rejected():
    with pytest.raises(MalformedResponse):
        convert_response({"statusCode": "teapot"})
    with pytest.raises(MalformedResponse):
        convert_response({"statusCode": 200, "body": {"not": "a string"}})
