"""Where each class of hostile input enters, one check refuses it with a 4xx naming what is wrong: the JSON
body reader (nesting, UTF-8), DynamoDB's number range (rule values), the timestamp type (years 1900-9999)
and the cursor reader (anything not a cursor this API wrote). These inputs used to reach a 500 or be stored
corrupted. No AWS."""

from decimal import Decimal
from typing import Any

import pytest
from crm.api.models.leads import ChatCaptureRequest
from crm.api.models.lifecycle import CreateTaskRequest, TaskQuery, UpdateTaskRequest
from crm.api.models.queries import AnalyticsRangeParams, LeadListParams
from crm.api.models.scoring import RecordActivityRequest
from crm.platform.cursor import CursorCodec, decode_position, encode_position, fingerprint
from crm.platform.errors import BadQuery, InvalidInput, MalformedBody
from crm.platform.http import MAX_JSON_DEPTH, model_from, parse_json_object, raw_body
from crm.scoring.rules import ScoringRuleInput


def refused(model: type, data: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(InvalidInput) as raised:
        model_from(model, data)
    return {problem.field: problem.message for problem in raised.value.problems}


# ---------------------------------------------------------------- the JSON body reader


@pytest.mark.parametrize("levels", [MAX_JSON_DEPTH + 1, 990, 100_000])
def test_a_body_nested_past_the_limit_is_malformed_not_a_crash(levels: int) -> None:
    body = b'{"custom_fields": {"x": ' + b"[" * levels + b"]" * levels + b"}}"

    with pytest.raises(MalformedBody, match="deeper than 32 levels"):
        parse_json_object(body)


def test_a_body_at_the_nesting_limit_is_read() -> None:
    levels = MAX_JSON_DEPTH - 1  # plus the object around it
    body = b'{"x": ' + b"[" * levels + b"]" * levels + b"}"

    assert (
        parse_json_object(body)["x"] == [] if levels == 1 else isinstance(parse_json_object(body)["x"], list)
    )


@pytest.mark.parametrize(
    "event",
    [
        {"body": '{"first_name": "\udcff\udcfe"}', "isBase64Encoded": False},  # raw bytes smuggled as text
        {"body": "eyJmaXJzdF9uYW1lIjogIv/+In0=", "isBase64Encoded": True},  # {"first_name": "\xff\xfe"}
        {"body": "//57fQ==", "isBase64Encoded": True},  # a UTF-16 byte-order mark, then {}
    ],
)
def test_a_body_that_is_not_utf8_is_malformed_not_stored_with_replacement_characters(event: dict) -> None:
    with pytest.raises(MalformedBody, match="not UTF-8"):
        parse_json_object(raw_body(event, 1024))


# ---------------------------------------------------------------- numbers DynamoDB can store


@pytest.mark.parametrize("value", [Decimal("1e-308"), Decimal("1e126"), 10**40])
def test_a_rule_number_dynamodb_cannot_store_is_refused_naming_value(value: Any) -> None:
    rule = {"name": "n", "category": "firmographic", "field": "employee_count", "points": 5}

    for operator, sent in [("gt", value), ("equals", value), ("between", [0, value]), ("in", [1, value])]:
        problems = refused(ScoringRuleInput, rule | {"operator": operator, "value": sent})
        assert list(problems) == ["value"], (operator, problems)


# ---------------------------------------------------------------- timestamps


@pytest.mark.parametrize(
    "moment",
    [
        "0999-01-01T00:00:00Z",
        "1899-12-31T23:59:59Z",
        "1900-01-01T03:00:00+05:00",
        "9999-12-31T23:00:00-05:00",
    ],
)
def test_a_time_outside_the_years_1900_to_9999_is_refused_naming_the_field(moment: str) -> None:
    assert list(refused(CreateTaskRequest, {"title": "Call", "due_at": moment})) == ["due_at"]
    assert list(refused(UpdateTaskRequest, {"due_at": moment})) == ["due_at"]
    assert list(refused(TaskQuery, {"due_before": moment})) == ["due_before"]
    assert list(refused(RecordActivityRequest, {"type": "demo_requested", "occurred_at": moment})) == [
        "occurred_at"
    ]
    chat = {"email": "a@example.com", "transcript": [{"author": "a", "text": "hi", "sent_at": moment}]}
    assert any(field.endswith("0.sent_at") for field in refused(ChatCaptureRequest, chat))


def test_times_within_the_years_are_kept_in_utc() -> None:
    task = model_from(CreateTaskRequest, {"title": "Call", "due_at": "9999-12-31T18:00:00-05:00"})
    naive = model_from(CreateTaskRequest, {"title": "Call", "due_at": "1900-01-01T00:00:00"})

    assert task.due_at.isoformat() == "9999-12-31T23:00:00+00:00"
    assert naive.due_at.isoformat() == "1900-01-01T00:00:00+00:00"


@pytest.mark.parametrize("day", ["0999-01-01", "1899-12-31"])
def test_query_days_outside_the_years_are_refused(day: str) -> None:
    assert list(refused(AnalyticsRangeParams, {"from": day, "to": "2026-01-01"})) == ["from"]
    assert list(refused(LeadListParams, {"created_from": day})) == ["created_from"]


def test_a_created_to_at_the_end_of_time_is_refused_not_overflowed() -> None:
    assert list(refused(LeadListParams, {"created_to": "9999-12-31"})) == ["created_to"]


# ---------------------------------------------------------------- cursors

GARBAGE_CURSORS = ["é", "ñ.ñ", "abc", "a.b", "x" * 5000, "\x00.\x00", "eyJ2IjoxfQ.é"]


@pytest.mark.parametrize("cursor", GARBAGE_CURSORS)
def test_a_signed_cursor_that_is_not_ours_is_400_naming_cursor(cursor: str) -> None:
    codec = CursorCodec(lambda: [b"key"])

    with pytest.raises(BadQuery) as raised:
        codec.decode(cursor, fingerprint(kind="list"))

    assert [problem.field for problem in raised.value.problems] == ["cursor"]


@pytest.mark.parametrize("cursor", [*GARBAGE_CURSORS, encode_position("not a position")])
def test_a_position_cursor_that_is_not_ours_is_400_naming_cursor(cursor: str) -> None:
    with pytest.raises(BadQuery) as raised:
        decode_position(cursor, lambda position: position.startswith("2026"))

    assert [problem.field for problem in raised.value.problems] == ["cursor"]


def test_cursors_round_trip() -> None:
    codec = CursorCodec(lambda: [b"key"])
    query = fingerprint(kind="list")

    assert codec.decode(codec.encode("2026#a", query), query) == "2026#a"
    assert decode_position(encode_position("2026#a"), lambda position: True) == "2026#a"
