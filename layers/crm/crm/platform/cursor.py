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


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


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
        payload, _, signature = cursor.partition(".")
        if not payload or not signature or len(cursor) > 4096:
            raise BadQuery.single("cursor", "is not a cursor this API returned")
        if not any(hmac.compare_digest(self._sign(key, payload), signature) for key in self._keys()):
            raise BadQuery.single("cursor", "is not a cursor this API returned")
        try:
            data = json.loads(_b64decode(payload))
        except (ValueError, binascii.Error):
            raise BadQuery.single("cursor", "is not a cursor this API returned") from None
        if not isinstance(data, dict) or data.get("v") != _VERSION or not isinstance(data.get("p"), str):
            raise BadQuery.single("cursor", "is not a cursor this API returned")
        if data.get("f") != query_fingerprint:
            raise BadQuery.single(
                "cursor", "belongs to another query: keep the same filters, sort and limit while paging"
            )
        position: str = data["p"]
        return position

    @staticmethod
    def _sign(key: bytes, payload: str) -> str:
        return _b64encode(hmac.new(key, f"v{_VERSION}.{payload}".encode(), hashlib.sha256).digest())
