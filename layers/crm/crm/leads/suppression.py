"""The suppression list: people whose data was erased (crm.privacy), kept only as a keyed hash of their email.

    suppression   PK=SUPPRESSION#<hash>   SK=SUPPRESSION
                  (email_hash, suppressed_at, last_job, active_job while an erasure runs, fresh_consent)

The hash is HMAC-SHA256 of the normalised email (lower case, as `crm.platform.fields.Email` stores it) under
the privacy hash key (the Secrets Manager secret `PrivacyHashKey` the stack generates, or
`PRIVACY_HASH_KEY`; its first line). It names a person without holding their address, so the nurture and
notification senders can refuse to mail someone erased, even when a partner sync sends them again.

A new submission through a public form (website form or live chat) with marketing consent given after the
erasure is new consent: it creates a fresh lead (the erasure deleted the email claim), that lead may be
mailed (`blocks` says no), and the first sender check that meets it records it in the suppression item
(`fresh_consent`: lead id, channel, time). A partner or API submission never lifts the suppression.
"""

import hashlib
import hmac
from collections.abc import Callable
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict

from crm.leads.model import Channel, Lead, UtcDatetime
from crm.platform import clock
from crm.platform.dynamo import TableRepository, error_code, marshal, translate

ENTITY = "suppression"
PUBLIC_FORM_CHANNELS = frozenset({Channel.WEBSITE_FORM.value, Channel.LIVE_CHAT.value})


def normalised_email(email: str) -> str:
    return email.strip().lower()


def email_hash(email: str, key: bytes) -> str:
    """The keyed hash that stands for a person's email wherever the email itself may not be kept."""
    return hmac.new(key, normalised_email(email).encode(), hashlib.sha256).hexdigest()


def suppression_key(hashed: str) -> dict[str, str]:
    return {"PK": f"SUPPRESSION#{hashed}", "SK": "SUPPRESSION"}


class FreshConsent(BaseModel):
    lead_id: str
    channel: str
    at: UtcDatetime


class Suppression(BaseModel):
    model_config = ConfigDict(extra="ignore")

    email_hash: str
    suppressed_at: UtcDatetime
    last_job: str | None = None
    active_job: str | None = None
    fresh_consent: FreshConsent | None = None


def renews_consent(suppression: Suppression, lead: Lead) -> bool:
    """A lead made after the erasure through a public form, with marketing consent given after it."""
    consent = lead.marketing_consent
    return (
        lead.created_at > suppression.suppressed_at
        and consent is not None
        and consent.given
        and consent.at > suppression.suppressed_at
        and consent.channel in PUBLIC_FORM_CHANNELS
    )


def blocks(suppression: Suppression | None, lead: Lead) -> bool:
    """True when no email may go to this lead because its person was erased and has not consented anew."""
    return suppression is not None and not renews_consent(suppression, lead)


class SuppressionRepository(TableRepository):
    def get(self, hashed: str) -> Suppression | None:
        item = self._get_item(suppression_key(hashed))
        return Suppression.model_validate(item) if item else None

    def record_fresh_consent(self, hashed: str, consent: FreshConsent) -> bool:
        """Write the renewed consent into the suppression item once (False: already recorded, or none)."""
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=marshal(suppression_key(hashed)),
                UpdateExpression="SET fresh_consent = :consent",
                ConditionExpression=(
                    "attribute_exists(PK) AND (attribute_not_exists(fresh_consent) "
                    "OR fresh_consent.lead_id <> :lead)"
                ),
                ExpressionAttributeValues=marshal(
                    {":consent": consent.model_dump(mode="json"), ":lead": consent.lead_id}
                ),
            )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise translate(exc) from exc
            return False
        return True


class SuppressionList:
    """What the senders ask: may this lead be mailed? The key is read on first use (Secrets Manager)."""

    def __init__(self, repository: SuppressionRepository, key: Callable[[], bytes]) -> None:
        self.repository = repository
        self._key = key

    def hash_of(self, email: str) -> str:
        return email_hash(email, self._key())

    def find(self, email: str) -> Suppression | None:
        return self.repository.get(self.hash_of(email))

    def blocks(self, lead: Lead) -> bool:
        """The senders' check. A lead that renews the person's consent is recorded in the suppression
        item the first time a sender meets it (once: a conditional write)."""
        hashed = self.hash_of(lead.email)
        suppression = self.repository.get(hashed)
        if suppression is None:
            return False
        if not renews_consent(suppression, lead):
            return True
        consent = lead.marketing_consent
        if consent is not None and (
            suppression.fresh_consent is None or suppression.fresh_consent.lead_id != lead.id
        ):
            self.repository.record_fresh_consent(
                hashed, FreshConsent(lead_id=lead.id, channel=consent.channel, at=consent.at)
            )
        return False


def stored_suppression(hashed: str, job_id: str, now: datetime) -> dict[str, Any]:
    """The attributes an erasure request sets (crm.privacy.repository); fresh consent starts over."""
    return {"entity": ENTITY, "email_hash": hashed, "suppressed_at": clock.isoformat(now), "last_job": job_id}
