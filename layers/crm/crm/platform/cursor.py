"""Opaque, tamper-proof page cursors, bound to the query that produced them.

A cursor is `<payload>.<signature>`: the payload (base64url JSON) holds the position to resume after (the
last sort key returned) and a fingerprint of the query (its filters, sort, page size, and who asked); the
signature is HMAC-SHA256 over the payload with the signing key. A cursor whose signature does not verify,
or whose fingerprint is not the current query's, is refused (400 naming `cursor`): a client can neither
forge a position nor replay a cursor on another query or as another user.

No AWS here: the codec is given a function that returns the signing keys, newest first
(`crm.platform.signing_keys`: in AWS a Secrets Manager secret the stack generates). New cursors are signed
with the
first key; cursors signed with any of them verify, so a rotation keeps old cursors working.

Lists whose functions hold no signing key (open tasks, the unassigned queue) use unsigned position cursors
(`encode_position`/`decode_position`): the same payload, checked by the caller's `valid` test instead of a
signature. Both kinds are read here only, so anything that is not a cursor this API wrote (non-ASCII,
garbage, too long) is the same 400 naming `cursor` on every route.
"""

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Callable
from typing import Any

from crm.platform.errors import BadQuery

_VERSION = 1
MAX_CURSOR_LENGTH = 4096


def _not_ours() -> BadQuery:
    return BadQuery.single("cursor", "is not a cursor this API returned")


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _ascii(cursor: str) -> bytes:
    """The cursor's bytes: every cursor this API writes is short ASCII text."""
    if not cursor or len(cursor) > MAX_CURSOR_LENGTH or not cursor.isascii():
        raise _not_ours()
    return cursor.encode("ascii")


def _read_payload(payload: bytes) -> dict[str, Any]:
    try:
        data = json.loads(base64.urlsafe_b64decode(payload + b"=" * (-len(payload) % 4)))
    except (ValueError, binascii.Error):
        raise _not_ours() from None
    if not isinstance(data, dict) or data.get("v") != _VERSION or not isinstance(data.get("p"), str):
        raise _not_ours()
    return data


def encode_position(position: str) -> str:
    """An unsigned cursor: where the next page starts (for lists whose function holds no signing key)."""
    return _b64encode(json.dumps({"v": _VERSION, "p": position}, separators=(",", ":")).encode())


def decode_position(cursor: str, valid: Callable[[str], bool]) -> str:
    """The position an unsigned cursor holds; BadQuery (400) unless it is one and `valid` accepts it."""
    position: str = _read_payload(_ascii(cursor))["p"]
    if not valid(position):
        raise _not_ours()
    return position


def fingerprint(**parts: Any) -> str:
    """A stable digest of everything that makes a query what it is (None values included)."""
    canonical = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


class CursorCodec:
    def __init__(self, keys: Callable[[], list[bytes]]) -> None:
        self._keys = keys

    def encode(self, position: str, query_fingerprint: str) -> str:
        payload = _b64encode(
            json.dumps({"v": _VERSION, "p": position, "f": query_fingerprint}, separators=(",", ":")).encode()
        )
        return f"{payload}.{self._sign(self._keys()[0], payload)}"

    def decode(self, cursor: str, query_fingerprint: str) -> str:
        """The position the cursor resumes after; BadQuery unless it is genuine and this query's."""
        payload, _, signature = _ascii(cursor).partition(b".")
        if not payload or not signature:
            raise _not_ours()
        # Compared as bytes: compare_digest refuses str holding anything but ASCII.
        signatures = (self._sign(key, payload.decode()).encode() for key in self._keys())
        if not any(hmac.compare_digest(expected, signature) for expected in signatures):
            raise _not_ours()
        data = _read_payload(payload)
        if data.get("f") != query_fingerprint:
            raise BadQuery.single(
                "cursor", "belongs to another query: keep the same filters, sort and limit while paging"
            )
        position: str = data["p"]
        return position

    @staticmethod
    def _sign(key: bytes, payload: str) -> str:
        return _b64encode(hmac.new(key, f"v{_VERSION}.{payload}".encode(), hashlib.sha256).digest())
