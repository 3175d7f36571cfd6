"""One-click unsubscribe: signed links, the headers that carry them, and why a lead stops getting email.

No AWS here. A link is `<PUBLIC_BASE_URL>/unsubscribe?token=<lead id>.<signature>`; the signature is
HMAC-SHA256 over a purpose string and the lead id, base64url, with the unsubscribe signing key (configured
like the page-cursor key, `crm.platform.signing_keys`: a direct setting, or in AWS a Secrets Manager secret
the stack
generates, whose first line signs and whose every line verifies, for rotations). Without the key nobody can
make a token for another lead; checks run in constant time (`hmac.compare_digest`).

Every nurture email carries the link twice (RFC 2369 / RFC 8058): `List-Unsubscribe: <https://…>` and
`List-Unsubscribe-Post: List-Unsubscribe=One-Click`, so mail clients offer a one-click button that POSTs to
the link; the email's footer links to it as well (GET).
"""

import base64
import hashlib
import hmac
from collections.abc import Callable
from enum import StrEnum
from urllib.parse import quote

from crm.leads.model import Activity
from crm.platform.errors import BadQuery, InvalidInput
from crm.platform.ids import RECORD_ID

_PURPOSE = b"leadflow:unsubscribe:v1:"
MAX_TOKEN_LENGTH = 200


class DoNotEmailReason(StrEnum):
    UNSUBSCRIBED = "unsubscribed"  # the lead used the unsubscribe link
    BOUNCED = "bounced"  # SES: a permanent bounce of an email to the lead
    COMPLAINED = "complained"  # SES: the lead marked an email as spam


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _invalid() -> InvalidInput:
    return BadQuery.single("token", "is not a valid unsubscribe link: use the link from the email")


class UnsubscribeTokens:
    def __init__(self, keys: Callable[[], list[bytes]]) -> None:
        self._keys = keys

    def token_for(self, lead_id: str) -> str:
        return f"{lead_id}.{self._sign(self._keys()[0], lead_id)}"

    def lead_id_from(self, token: str | None) -> str:
        """The lead a genuine token names; BadQuery (400 naming `token`) if missing, malformed or forged."""
        if not token or not token.strip():
            raise BadQuery.single("token", "is required: use the link from the email")
        if len(token) > MAX_TOKEN_LENGTH:
            raise _invalid()
        lead_id, _, signature = token.strip().rpartition(".")
        if not RECORD_ID.match(lead_id) or not signature:
            raise _invalid()
        if not signature.isascii():  # a genuine signature is base64url; compare_digest takes ASCII only
            raise _invalid()
        genuine = False
        for key in self._keys():  # every key is tried, so the time taken says nothing about which matched
            genuine |= hmac.compare_digest(self._sign(key, lead_id).encode(), signature.encode())
        if not genuine:
            raise _invalid()
        return lead_id

    @staticmethod
    def _sign(key: bytes, lead_id: str) -> str:
        return _b64(hmac.new(key, _PURPOSE + lead_id.encode("ascii"), hashlib.sha256).digest())


def unsubscribe_url(public_base_url: str, token: str) -> str:
    return f"{public_base_url.rstrip('/')}/unsubscribe?token={quote(token, safe='')}"


def list_unsubscribe_headers(url: str) -> dict[str, str]:
    """RFC 8058 one-click unsubscribe: an HTTPS URI (no mailto: nobody reads such a mailbox here)."""
    return {"List-Unsubscribe": f"<{url}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}


def suppression_reason(activity: Activity) -> DoNotEmailReason | None:
    """Whether an SES event about an email to the lead (`crm.notifications.ses_events` activity) means the
    address must not
    be emailed again: a permanent bounce, or a complaint. Transient bounces and staff notifications do not."""
    if activity.type == "email_complained":
        return DoNotEmailReason.COMPLAINED
    if activity.type == "email_bounced" and activity.data.get("bounce_type") == "Permanent":
        return DoNotEmailReason.BOUNCED
    return None
