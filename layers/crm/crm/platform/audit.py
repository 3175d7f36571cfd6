"""Who changed the system's rules and records: an audit entry per change of a rule set, the user directory or
the nurture sequences, written in the same transaction as the change (plain data and its stored item).

    audit entry   PK=AUDIT#<subject>   SK=<at>#<id>   record_id, action, actor, at, changes

`subject` names the set (`assignment_rules`, `scoring_rules`, `users`, `nurture_sequences`); one Query reads
a set's history, oldest first.
"""

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel

from crm.platform import clock
from crm.platform.dynamo import marshal

AuditAction = Literal["created", "updated", "deleted"]


class AuditEntry(BaseModel):
    id: str
    subject: str
    record_id: str
    action: AuditAction
    actor: str
    at: datetime
    changes: dict[str, dict[str, Any]] = {}


def audit_entry(
    subject: str,
    record_id: str,
    action: AuditAction,
    *,
    actor: str,
    at: datetime,
    old: dict[str, Any] | None = None,
    new: dict[str, Any] | None = None,
) -> AuditEntry:
    """An entry; `changes` holds each field whose JSON value differs between `old` and `new`."""
    before, after = old or {}, new or {}
    changes = {
        name: {"old": before.get(name), "new": after.get(name)}
        for name in sorted(before.keys() | after.keys())
        if before.get(name) != after.get(name)
    }
    return AuditEntry(
        id=str(uuid.uuid4()),
        subject=subject,
        record_id=record_id,
        action=action,
        actor=actor,
        at=at,
        changes=changes,
    )


def audit_partition(subject: str) -> str:
    return f"AUDIT#{subject}"


def audit_put(table_name: str, entry: AuditEntry) -> dict[str, Any]:
    """A TransactWriteItems entry storing `entry` beside the change it records."""
    at = clock.isoformat(entry.at)
    item = {
        "PK": audit_partition(entry.subject),
        "SK": f"{at}#{entry.id}",
        "entity": "audit",
        **entry.model_dump(mode="json"),
        "at": at,
    }
    return {"Put": {"TableName": table_name, "Item": marshal(item)}}
