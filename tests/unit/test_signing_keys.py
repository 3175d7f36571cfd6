"""Signing keys given directly (tests, benchmarks): one per line, newest first; nothing configured is a 503.
Reading them from their Secrets Manager secret is tested in tests/integration/test_signing_keys.py."""

import pytest
from crm.platform.cursor import CursorCodec
from crm.platform.errors import BadQuery, RetryableError
from crm.platform.signing_keys import signing_keys


def test_a_direct_key_is_read_line_by_line_newest_first() -> None:
    keys = signing_keys("  new-key \n\n old-key\n", "arn:unused", "cursor signing key")

    assert keys == [b"new-key", b"old-key"]


def test_the_first_line_signs_and_every_line_verifies() -> None:
    rotated = CursorCodec(lambda: signing_keys("new-key\nold-key", "", "cursor signing key"))
    before = CursorCodec(lambda: signing_keys("old-key", "", "cursor signing key"))
    after = CursorCodec(lambda: signing_keys("new-key", "", "cursor signing key"))
    old_cursor = before.encode("LEAD#1", "query")

    new_cursor = rotated.encode("LEAD#1", "query")

    assert rotated.decode(old_cursor, "query") == "LEAD#1"
    assert new_cursor == after.encode("LEAD#1", "query") != old_cursor
    with pytest.raises(BadQuery):
        after.decode(old_cursor, "query")


@pytest.mark.parametrize("direct", ["", "  \n "])
def test_no_key_and_no_secret_is_a_retryable_error_naming_the_key(direct: str) -> None:
    with pytest.raises(RetryableError) as raised:
        signing_keys(direct, "", "unsubscribe signing key")

    assert raised.value.code == "temporarily_unavailable"
    assert "unsubscribe signing key" in raised.value.message
