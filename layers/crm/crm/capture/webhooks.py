"""Partner webhook authentication: HMAC-SHA256 over "{timestamp}.{raw body}".

Header: ``X-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>...]``. Several v1 values let a
partner sign with an old and a new secret while a rotation is under way.
"""

import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass

from crm.platform.errors import Unauthorized
from crm.platform.signatures import sign

PARTNER_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,49}$")
_HEX_SHA256 = re.compile(r"^[0-9a-f]{64}$")
# Unix seconds in ASCII digits; 12 of them reach past the year 33000 (a longer one would only overflow).
_UNIX_SECONDS = re.compile(r"^[0-9]{1,12}$")


@dataclass(frozen=True)
class SignatureHeader:
    timestamp: int
    signatures: tuple[str, ...]


def parse_signature_header(header: str | None) -> SignatureHeader:
    if not header:
        raise Unauthorized("Missing X-Signature header")
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        name, sep, value = part.strip().partition("=")
        if not sep:
            raise Unauthorized("Malformed X-Signature header: expected t=<unix seconds>,v1=<hex>")
        if name == "t":
            if not _UNIX_SECONDS.match(value) or timestamp is not None:
                raise Unauthorized("Malformed X-Signature header: t must be one unix timestamp")
            timestamp = int(value)
        elif name == "v1":
            if not _HEX_SHA256.match(value.lower()):  # also refuses non-ASCII before compare_digest
                raise Unauthorized("Malformed X-Signature header: v1 must be a hex SHA-256 HMAC")
            signatures.append(value.lower())
    if timestamp is None or not signatures:
        raise Unauthorized("Malformed X-Signature header: expected t=<unix seconds>,v1=<hex>")
    return SignatureHeader(timestamp, tuple(signatures))


def verify_signature(
    header: str | None, raw_body: bytes, secrets: Iterable[str], now: float, tolerance_seconds: int
) -> str:
    """The delivery's identity (`<t>.<the v1 that matched>`): the same bytes sent again carry the same one.
    Raise Unauthorized (saying why, for the logs) unless one v1 signature matches one of the secrets."""
    parsed = parse_signature_header(header)
    if abs(now - parsed.timestamp) > tolerance_seconds:
        raise Unauthorized(f"Stale signature: the timestamp is more than {tolerance_seconds} s from now")
    matched: str | None = None
    for secret in secrets:
        expected = sign(secret, parsed.timestamp, raw_body).encode()
        for candidate in parsed.signatures:
            # Compare all of them, constant-time, so timing says nothing about which one was close.
            if hmac.compare_digest(expected, candidate.encode()) and matched is None:
                matched = candidate
    if matched is None:
        raise Unauthorized("Invalid signature")
    return f"{parsed.timestamp}.{matched}"
