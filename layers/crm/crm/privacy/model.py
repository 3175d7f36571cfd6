"""A person's data on request: erasure jobs and their pages, exports, audit records (plain Python).

An erasure job names the person only by the keyed hash of their email (crm.leads.suppression); its pages
name leads by id. Nothing here holds an email, a name or a phone number.
"""

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from crm.leads.model import UtcDatetime


class ErasureState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


class ErasureJob(BaseModel):
    id: str
    state: ErasureState = ErasureState.QUEUED
    email_hash: str
    reason: str
    include_converted: bool = False
    requested_by: str
    requested_at: UtcDatetime
    completed_at: UtcDatetime | None = None
    lead_ids: list[str] = []
    pages_done: int = 0
    leads_erased: int = 0
    contacts_kept: int = 0
    erased: dict[str, int] = {}  # items erased (or, for deals, stripped of the person) by kind


class ErasurePage(BaseModel):
    """One SQS message: erase one lead of the job (None: the job found no lead and only completes)."""

    job_id: str = Field(min_length=1, max_length=64)
    lead_id: str | None = Field(default=None, max_length=64)


class PageMarker(BaseModel):
    """What a page found before erasing (counted into the job once, when the page is done)."""

    state: str  # "listed" | "done"
    counts: dict[str, int]
    contact_id: str | None = None
    deal_id: str | None = None
    contact_kept: bool = False


class Inventory(BaseModel):
    """Every item that holds something of one lead's person, by key and kind."""

    lead: dict[str, Any] | None = None
    keys: list[tuple[dict[str, str], str]] = []  # (key, kind): deleted
    contact_id: str | None = None
    deal_id: str | None = None
    contact_kept: bool = False

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for _, kind in self.keys:
            counts[kind] = counts.get(kind, 0) + 1
        return counts


def sum_counts(total: dict[str, int], more: dict[str, int]) -> dict[str, int]:
    return {kind: total.get(kind, 0) + more.get(kind, 0) for kind in sorted({*total, *more})}


def audit_record(action: str, actor: str, at: datetime, **details: Any) -> dict[str, Any]:
    return {"action": action, "actor": actor, "at": at, **details}
