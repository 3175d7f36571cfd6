"""Lambda FilterCriteria patterns, matched the way Lambda matches them."""

import pytest

from devstack.event_filter import InvalidPattern, matches, matches_any, sqs_filter_view

LEAD_INSERT = {
    "eventName": "INSERT",
    "dynamodb": {
        "NewImage": {"entity": {"S": "lead"}, "status": {"S": "new"}, "score": {"N": "42"}},
        "Keys": {"PK": {"S": "LEAD#1"}},
    },
}


def test_exact_value_in_a_dynamodb_image_matches():
    assert matches({"dynamodb": {"NewImage": {"entity": {"S": ["lead"]}}}}, LEAD_INSERT)
    assert not matches({"dynamodb": {"NewImage": {"entity": {"S": ["contact"]}}}}, LEAD_INSERT)


def test_several_values_in_a_leaf_are_alternatives():
    assert matches({"eventName": ["MODIFY", "INSERT"]}, LEAD_INSERT)


def test_every_key_of_a_pattern_must_match():
    assert not matches(
        {"eventName": ["INSERT"], "dynamodb": {"NewImage": {"status": {"S": ["won"]}}}}, LEAD_INSERT
    )


def test_prefix_suffix_and_equals_ignore_case():
    assert matches({"dynamodb": {"Keys": {"PK": {"S": [{"prefix": "LEAD#"}]}}}}, LEAD_INSERT)
    assert matches({"dynamodb": {"Keys": {"PK": {"S": [{"suffix": "#1"}]}}}}, LEAD_INSERT)
    assert matches({"eventName": [{"equals-ignore-case": "insert"}]}, LEAD_INSERT)
    assert not matches({"dynamodb": {"Keys": {"PK": {"S": [{"prefix": "CONTACT#"}]}}}}, LEAD_INSERT)


def test_anything_but_values_and_prefix():
    assert matches({"eventName": [{"anything-but": ["REMOVE"]}]}, LEAD_INSERT)
    assert not matches({"eventName": [{"anything-but": "INSERT"}]}, LEAD_INSERT)
    assert not matches(
        {"dynamodb": {"Keys": {"PK": {"S": [{"anything-but": {"prefix": "LEAD"}}]}}}}, LEAD_INSERT
    )


def test_exists_true_and_false():
    assert matches({"dynamodb": {"NewImage": {"status": [{"exists": True}]}}}, LEAD_INSERT)
    assert matches({"dynamodb": {"OldImage": [{"exists": False}]}}, LEAD_INSERT)
    assert not matches({"dynamodb": {"OldImage": [{"exists": True}]}}, LEAD_INSERT)


def test_numeric_ranges_apply_to_numbers_only():
    event = {"body": {"score": 75, "label": "75"}}
    assert matches({"body": {"score": [{"numeric": [">", 50, "<=", 75]}]}}, event)
    assert not matches({"body": {"score": [{"numeric": [">", 75]}]}}, event)
    assert not matches({"body": {"label": [{"numeric": [">", 0]}]}}, event)


def test_or_combines_alternative_patterns():
    pattern = {"$or": [{"eventName": ["REMOVE"]}, {"dynamodb": {"NewImage": {"status": {"S": ["new"]}}}}]}
    assert matches(pattern, LEAD_INSERT)
    assert not matches({"$or": [{"eventName": ["REMOVE"]}, {"eventName": ["MODIFY"]}]}, LEAD_INSERT)


def test_array_values_match_when_any_element_matches():
    assert matches({"tags": ["vip"]}, {"tags": ["new", "vip"]})


def test_null_and_numbers_compare_by_value():
    assert matches({"a": [None]}, {"a": None})
    assert matches({"a": [5]}, {"a": 5.0})
    assert not matches({"a": ["5"]}, {"a": 5})


def test_no_filters_lets_everything_through_and_any_filter_suffices():
    assert matches_any([], LEAD_INSERT)
    assert matches_any([{"eventName": ["REMOVE"]}, {"eventName": ["INSERT"]}], LEAD_INSERT)
    assert not matches_any([{"eventName": ["REMOVE"]}], LEAD_INSERT)


def test_sqs_json_bodies_are_matched_as_objects_and_text_stays_text():
    assert matches(
        {"body": {"type": ["lead.created"]}}, sqs_filter_view({"body": '{"type": "lead.created"}'})
    )
    assert matches({"body": ["plain"]}, sqs_filter_view({"body": "plain"}))


def test_a_leaf_that_is_not_a_list_is_rejected():
    with pytest.raises(InvalidPattern):
        matches({"eventName": "INSERT"}, LEAD_INSERT)
