"""Search tokens, search scopes and page cursors: plain rules, no AWS."""

from datetime import UTC, datetime

import pytest
from crm.leads.permissions import can_view
from crm.platform.cursor import CursorCodec, fingerprint
from crm.platform.errors import BadQuery
from crm.queries.search import (
    caller_scopes,
    first_matching_token,
    lead_scopes,
    matches_prefix,
    normalize,
    tokens_for,
)

from tests.lead_data import PRINCIPALS, lead, varied_leads

DAY = datetime(2031, 3, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "normalized"),
    [
        ("Zoë", "zoe"),
        ("ÅNGSTRÖM", "angstrom"),
        ("  Straße  ", "strasse"),
        ("\uff26\uff55\uff4c\uff4c Width", "full width"),  # full-width letters
        ("İlkay", "ilkay"),
        ("François  Dupont", "francois dupont"),
    ],
)
def test_text_is_compared_without_case_accents_or_extra_spaces(text: str, normalized: str) -> None:
    assert normalize(text) == normalized


def test_a_lead_is_found_by_a_prefix_of_each_field_and_of_each_word() -> None:
    subject = lead(
        DAY,
        first_name="Zoë",
        last_name="Ångström-Lee",
        email="zoe.angstrom@Example.ORG".lower(),
        company="Société Générale",
    )
    tokens = tokens_for(subject)
    for prefix in ("zo", "zoe", "ang", "angstrom-l", "lee", "zoe.ang", "example.o", "soc", "gen", "zoe ang"):
        assert matches_prefix(tokens, prefix), prefix
    assert not matches_prefix(tokens, "ample")  # a prefix, not a substring
    assert len(tokens) <= 16


def test_a_lead_matching_through_several_tokens_is_listed_at_its_smallest_one() -> None:
    tokens = ["annabel", "annex ltd", "annex", "smith"]
    assert first_matching_token(tokens, "ann") == "annabel"
    assert first_matching_token(tokens, "zz") is None


def test_search_scopes_follow_the_permission_rules_exactly() -> None:
    for principal in PRINCIPALS.values():
        for subject in varied_leads(120, DAY, days=3):
            found = bool(set(lead_scopes(subject)) & set(caller_scopes(principal)))
            assert found == can_view(principal, subject), (
                principal.subject,
                subject.assigned_to,
                subject.team,
            )


def codec(*keys: str) -> CursorCodec:
    return CursorCodec(lambda: [key.encode() for key in keys])


def test_a_cursor_resumes_where_the_page_ended() -> None:
    query = fingerprint(kind="list", status="new", limit=25)
    cursor = codec("k1").encode("2031-03-01T00:00:00.000000Z#abc", query)
    assert codec("k1").decode(cursor, query) == "2031-03-01T00:00:00.000000Z#abc"


def test_a_forged_or_edited_cursor_is_refused() -> None:
    query = fingerprint(kind="list", limit=25)
    cursor = codec("k1").encode("position", query)
    payload, signature = cursor.split(".")
    for forged in (
        codec("another key").encode("position", query),
        f"{payload[:-2]}xx.{signature}",
        f"{payload}.{signature[:-2]}xx",
        "not-a-cursor",
        "",
    ):
        with pytest.raises(BadQuery) as refused:
            codec("k1").decode(forged, query)
        assert refused.value.problems[0].field == "cursor"


def test_a_cursor_cannot_be_replayed_on_another_query_or_by_another_caller() -> None:
    mine = fingerprint(kind="list", subject="rep-1", status="new", limit=25)
    cursor = codec("k1").encode("position", mine)
    for other in (
        fingerprint(kind="list", subject="rep-1", status="contacted", limit=25),
        fingerprint(kind="list", subject="rep-2", status="new", limit=25),
        fingerprint(kind="list", subject="rep-1", status="new", limit=50),
    ):
        with pytest.raises(BadQuery, match="another query"):
            codec("k1").decode(cursor, other)


def test_during_a_key_rotation_cursors_signed_with_the_previous_key_still_work() -> None:
    query = fingerprint(kind="activities", lead_id="l-1")
    old_cursor = codec("old").encode("position", query)
    rotated = codec("new", "old")
    assert rotated.decode(old_cursor, query) == "position"
    with pytest.raises(BadQuery):
        codec("old").decode(rotated.encode("next", query), query)
