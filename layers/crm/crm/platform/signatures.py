"""HMAC-SHA256 signatures over "{timestamp}.{raw body}": how partners sign what they send us
(crm.capture.webhooks verifies) and how we sign what we send to webhook subscribers (crm.integrations)."""

import hashlib
import hmac


def sign(secret: str, timestamp: int, raw_body: bytes) -> str:
    message = str(timestamp).encode() + b"." + raw_body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature_header(secret: str, timestamp: int, raw_body: bytes) -> str:
    """The `X-Signature` value: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "{t}.{body}">`."""
    return f"t={timestamp},v1={sign(secret, timestamp, raw_body)}"
