"""Data access for nurture sequences and enrollments: the only module that reads and writes their items.

Key design (docs/data-model.md):

    sequence      PK=NURTURE#sequences   SK=SEQUENCE#<id>     (few: read whole, ordered in code)
    enrollment    PK=LEAD#<lead id>      SK=NURTURE           (one per lead, under the lead)
    GSI2 (sparse) GSI2PK=NURTUREDUE#<yyyy-mm-dd of next_due_at>#<shard>  GSI2SK=<next_due_at>#<lead id>
                  only while a step is pending (state active): stopping or finishing REMOVEs them
    email claim   PK=LEAD#<lead id>      SK=NOTIFY#nurture_step#nurture:<enrollment id>:<step>#lead

Every change is conditional: an enrollment is created only if the lead has none (and is still at the version
its eligibility was decided on), advanced only from the step it was at, stopped only while active. An email
is claimed in one transaction with checks that the lead is still at the version read (so not marked
do-not-email since) and the enrollment not stopped: an unsubscribe that commits first always wins.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict

from crm.leads.model import Activity
from crm.leads.repository import ActivityItem, lead_key, shard_of
from crm.notifications.repository import DeliveryKey
from crm.nurture.sequences import EnrollmentState, NurtureEnrollment, NurtureSequence
from crm.platform import clock
from crm.platform.audit import AuditEntry, audit_put
from crm.platform.dynamo import TableRepository, error_code, marshal, translate, unmarshal, versioned
from crm.platform.errors import Conflict, NotFound, RetryableError, VersionConflict

SEQUENCES_PK = "NURTURE#sequences"
DUE_PREFIX = "NURTUREDUE"
_DUE_KEYS = ("GSI2PK", "GSI2SK")


def sequence_key(sequence_id: str) -> dict[str, str]:
    return {"PK": SEQUENCES_PK, "SK": f"SEQUENCE#{sequence_id}"}


def enrollment_key(lead_id: str) -> dict[str, str]:
    return {"PK": f"LEAD#{lead_id}", "SK": "NURTURE"}


def due_partition(day: str, shard: int) -> str:
    return f"{DUE_PREFIX}#{day}#{shard}"


class EnrollmentItem(BaseModel):
    """An enrollment as stored: its attributes plus the sparse due-index keys (only while active)."""

    model_config = ConfigDict(extra="allow")

    PK: str
    SK: str
    entity: str = "nurture_enrollment"
    GSI2PK: str | None = None
    GSI2SK: str | None = None

    @classmethod
    def from_enrollment(cls, enrollment: NurtureEnrollment, shards: int) -> "EnrollmentItem":
        attributes = enrollment.model_dump(mode="json")
        due_keys: dict[str, str] = {}
        if enrollment.state is EnrollmentState.ACTIVE and enrollment.next_due_at is not None:
            due = attributes["next_due_at"]
            due_keys = {
                "GSI2PK": due_partition(due[:10], shard_of(enrollment.lead_id, shards)),
                "GSI2SK": f"{due}#{enrollment.lead_id}",
            }
        return cls(**enrollment_key(enrollment.lead_id), **due_keys, **attributes)

    def to_enrollment(self) -> NurtureEnrollment:
        return NurtureEnrollment.model_validate(self.model_extra or {})


class EnrollResult(StrEnum):
    ENROLLED = "enrolled"
    ALREADY_ENROLLED = "already_enrolled"
    LEAD_CHANGED = "lead_changed"  # the lead is not at the version read any more: decide again


class SendClaim(StrEnum):
    CLAIMED = "claimed"  # this worker sends the email
    ALREADY_SENT = "already_sent"
    IN_FLIGHT = "in_flight"  # another worker holds an unexpired lease
    LEAD_CHANGED = "lead_changed"  # read the lead again and decide again
    ENROLLMENT_ENDED = "enrollment_ended"  # stopped, or another enrollment


@dataclass(frozen=True)
class SendCheck:
    """What must hold when an email is claimed: the lead at the version read, its enrollment not stopped."""

    lead_id: str
    lead_version: int
    enrollment_id: str


def _sequence_condition_failed(exc: ClientError) -> bool:
    """The sequence's own condition failed: alone, or as the first item of its transaction."""
    if error_code(exc) == "ConditionalCheckFailedException":
        return True
    reasons: list[Any] = list(exc.response.get("CancellationReasons", []))
    return (
        error_code(exc) == "TransactionCanceledException"
        and bool(reasons)
        and (reasons[0].get("Code") == "ConditionalCheckFailed")
    )


def _sequence_from(item: dict[str, Any]) -> NurtureSequence:
    return NurtureSequence.model_validate(
        {key: value for key, value in item.items() if key not in ("PK", "SK", "entity")}
    )


class NurtureRepository(TableRepository):
    # ------------------------------------------------------------------ sequences
    def list_sequences(self) -> list[NurtureSequence]:
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "PK = :pk AND begins_with(SK, :sequence)",
            "ExpressionAttributeValues": {":pk": {"S": SEQUENCES_PK}, ":sequence": {"S": "SEQUENCE#"}},
            "ConsistentRead": True,
        }
        sequences: list[NurtureSequence] = []
        try:
            while True:
                response = self.client.query(**kwargs)
                sequences += [_sequence_from(unmarshal(raw)) for raw in response.get("Items", [])]
                if "LastEvaluatedKey" not in response:
                    break
                kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        except ClientError as exc:
            raise translate(exc) from exc
        return sorted(sequences, key=lambda s: (s.priority, s.created_at, s.id))

    def get_sequence(self, sequence_id: str) -> NurtureSequence | None:
        item = self._get_item(sequence_key(sequence_id))
        return _sequence_from(item) if item else None

    def put_sequence(
        self, sequence: NurtureSequence, expected_version: int | None, audit: AuditEntry | None = None
    ) -> NurtureSequence:
        """Create (`expected_version=None`: only if new) or replace a sequence at `expected_version`, with
        its audit entry in the same transaction."""
        stored = (
            sequence
            if expected_version is None
            else sequence.model_copy(update={"version": expected_version + 1})
        )
        put: dict[str, Any] = {
            "TableName": self.table_name,
            "Item": marshal(
                {
                    **sequence_key(sequence.id),
                    "entity": "nurture_sequence",
                    **stored.model_dump(mode="python"),
                }
                | {
                    "created_at": clock.isoformat(stored.created_at),
                    "updated_at": clock.isoformat(stored.updated_at),
                }
            ),
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
        try:
            if audit is None:
                self.client.put_item(**versioned(put, expected_version))
            else:
                items = [{"Put": versioned(put, expected_version)}, audit_put(self.table_name, audit)]
                self.client.transact_write_items(TransactItems=items)  # type: ignore[arg-type]
        except ClientError as exc:
            if _sequence_condition_failed(exc):
                if expected_version is None:
                    raise Conflict(f"A nurture sequence with id {sequence.id} already exists") from exc
                raise self._sequence_conflict(exc, sequence.id) from exc
            raise translate(exc) from exc
        return stored

    def delete_sequence(
        self, sequence_id: str, expected_version: int | None, audit: AuditEntry | None = None
    ) -> None:
        condition = "attribute_exists(PK)"
        extra: dict[str, Any] = {}
        if expected_version is not None:
            condition += " AND #version = :expected"
            extra = {
                "ExpressionAttributeNames": {"#version": "version"},
                "ExpressionAttributeValues": {":expected": {"N": str(expected_version)}},
            }
        delete: dict[str, Any] = {
            "TableName": self.table_name,
            "Key": marshal(sequence_key(sequence_id)),
            "ConditionExpression": condition,
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            **extra,
        }
        try:
            if audit is None:
                self.client.delete_item(**delete)
            else:
                items = [{"Delete": delete}, audit_put(self.table_name, audit)]
                self.client.transact_write_items(TransactItems=items)  # type: ignore[arg-type]
        except ClientError as exc:
            if _sequence_condition_failed(exc):
                raise self._sequence_conflict(exc, sequence_id) from exc
            raise translate(exc) from exc

    @staticmethod
    def _sequence_conflict(exc: ClientError, sequence_id: str) -> Exception:
        reasons: list[Any] = list(exc.response.get("CancellationReasons", []))
        raw: Any = exc.response.get("Item") or (reasons[0].get("Item") if reasons else None)
        if not raw:
            return NotFound(f"No nurture sequence with id {sequence_id}")
        current = unmarshal(raw).get("version")
        return VersionConflict(
            "The sequence was changed by someone else",
            current_version=int(current) if current is not None else None,
        )

    # ------------------------------------------------------------------ enrollments
    def get_enrollment(self, lead_id: str) -> NurtureEnrollment | None:
        item = self._get_item(enrollment_key(lead_id))
        return EnrollmentItem.model_validate(item).to_enrollment() if item else None

    def enroll(self, enrollment: NurtureEnrollment, lead_version: int, activity: Activity) -> EnrollResult:
        """Create the lead's enrollment if it has none and the lead is still at `lead_version`; with its
        activity, in one transaction."""
        item = EnrollmentItem.from_enrollment(enrollment, self.shards).model_dump(exclude_none=True)
        items: list[Any] = [
            {
                "Put": {
                    "TableName": self.table_name,
                    "Item": marshal(item),
                    "ConditionExpression": "attribute_not_exists(PK)",
                }
            },
            self._lead_at(enrollment.lead_id, lead_version),
            self._put_activity(activity),
        ]
        failed = self._transact(items)
        if failed is None:
            return EnrollResult.ENROLLED
        return EnrollResult.ALREADY_ENROLLED if failed == 0 else EnrollResult.LEAD_CHANGED

    def advance(self, before: NurtureEnrollment, after: NurtureEnrollment) -> bool:
        """Store the enrollment after its pending step was fired, if it is still at that step and active."""
        return self._update(
            before,
            after,
            "#state = :active AND next_step = :step AND #id = :id",
            {":active": EnrollmentState.ACTIVE.value, ":step": before.next_step, ":id": before.id},
            activity=None,
        )

    def stop(self, before: NurtureEnrollment, after: NurtureEnrollment, activity: Activity) -> bool:
        """Store the stopped enrollment with its activity, if it is still as read (active, the same one, at
        the same step): False otherwise, and the caller reads it again."""
        return self._update(
            before,
            after,
            "#state = :active AND #id = :id AND next_step = :step",
            {":active": EnrollmentState.ACTIVE.value, ":id": before.id, ":step": before.next_step},
            activity=activity,
        )

    def due(self, since: datetime, until: datetime, limit: int) -> list[NurtureEnrollment]:
        """Active enrollments whose next step is due in [since, until], soonest first, at most `limit`: one
        Query per due day and shard of the sparse due index (`TableRepository.query_due`)."""
        items = self.query_due(DUE_PREFIX, since, until, limit)
        return [EnrollmentItem.model_validate(item).to_enrollment() for item in items]

    # ------------------------------------------------------------------ emails
    def claim_send(
        self, delivery: DeliveryKey, check: SendCheck, now: datetime, lease: timedelta
    ) -> SendClaim:
        """Claim one email in one transaction with the checks that make a racing unsubscribe win: the lead
        still at the version read, the enrollment still this one and not stopped. The delivery item is the
        notification deliveries' (`crm.notifications.repository`): `complete`/`release` finish it."""
        moment = clock.isoformat(now)
        items: list[Any] = [
            self._lead_at(check.lead_id, check.lead_version),
            {
                "ConditionCheck": {
                    "TableName": self.table_name,
                    "Key": marshal(enrollment_key(check.lead_id)),
                    "ConditionExpression": "#id = :id AND #state <> :stopped",
                    "ExpressionAttributeNames": {"#id": "id", "#state": "state"},
                    "ExpressionAttributeValues": marshal(
                        {":id": check.enrollment_id, ":stopped": EnrollmentState.STOPPED.value}
                    ),
                }
            },
            {
                "Update": {
                    "TableName": self.table_name,
                    "Key": marshal(delivery.key()),
                    "UpdateExpression": (
                        "SET entity = :entity, lead_id = :lead, kind = :kind, event_id = :event, "
                        "recipient = :recipient, #status = :sending, lease_until = :lease, "
                        "updated_at = :now, lead_version = :version ADD attempts :one"
                    ),
                    "ConditionExpression": (
                        "attribute_not_exists(PK) OR #status = :failed "
                        "OR (#status = :sending AND lease_until < :now)"
                    ),
                    "ExpressionAttributeNames": {"#status": "status"},
                    "ExpressionAttributeValues": marshal(
                        {
                            ":entity": "notification",
                            ":lead": delivery.lead_id,
                            ":kind": delivery.kind,
                            ":event": delivery.event_id,
                            ":recipient": delivery.recipient,
                            ":sending": "sending",
                            ":failed": "failed",
                            ":lease": clock.isoformat(now + lease),
                            ":now": moment,
                            ":version": check.lead_version,
                            ":one": 1,
                        }
                    ),
                }
            },
        ]
        failed = self._transact(items)
        if failed is None:
            return SendClaim.CLAIMED
        if failed == 0:
            return SendClaim.LEAD_CHANGED
        if failed == 1:
            return SendClaim.ENROLLMENT_ENDED
        status = (self._get_item(delivery.key()) or {}).get("status")
        return SendClaim.ALREADY_SENT if status == "sent" else SendClaim.IN_FLIGHT

    # ------------------------------------------------------------------ helpers
    def _update(
        self,
        before: NurtureEnrollment,
        after: NurtureEnrollment,
        condition: str,
        condition_values: dict[str, Any],
        activity: Activity | None,
    ) -> bool:
        """An UpdateItem of every enrollment attribute (REMOVE for those now absent, due keys included)."""
        item = EnrollmentItem.from_enrollment(after, self.shards).model_dump()
        names: dict[str, str] = {"#state": "state", "#id": "id"}
        values: dict[str, Any] = dict(condition_values)
        sets: list[str] = []
        removes: list[str] = []
        managed = [name for name in item if name not in ("PK", "SK")]
        for name in (*_DUE_KEYS, "stop_reason", "next_due_at", "last_sent_at", "ended_at"):
            if name not in managed:
                managed.append(name)
        for index, name in enumerate(managed):
            names[f"#a{index}"] = name
            if item.get(name) is None:
                removes.append(f"#a{index}")
            else:
                sets.append(f"#a{index} = :v{index}")
                values[f":v{index}"] = item[name]
        expression = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
        update = {
            "TableName": self.table_name,
            "Key": marshal(enrollment_key(before.lead_id)),
            "UpdateExpression": expression,
            "ConditionExpression": condition,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": marshal(values),
        }
        items: list[Any] = [{"Update": update}]
        if activity is not None:
            items.append(self._put_activity(activity))
        return self._transact(items) is None

    def _transact(self, items: list[Any]) -> int | None:
        """Run a transaction; None if it committed, else the index of the item whose condition failed.
        Any other cancellation (a conflicting transaction) is a RetryableError."""
        try:
            self.client.transact_write_items(TransactItems=items)
        except ClientError as exc:
            if error_code(exc) == "TransactionCanceledException":
                reasons: list[Any] = list(exc.response.get("CancellationReasons", []))
                for index, reason in enumerate(reasons):
                    if reason.get("Code") == "ConditionalCheckFailed":
                        return index
                raise RetryableError("The nurture change could not be written; try again") from exc
            raise translate(exc) from exc
        return None

    def _lead_at(self, lead_id: str, version: int) -> dict[str, Any]:
        return {
            "ConditionCheck": {
                "TableName": self.table_name,
                "Key": marshal(lead_key(lead_id)),
                "ConditionExpression": "#version = :version",
                "ExpressionAttributeNames": {"#version": "version"},
                "ExpressionAttributeValues": {":version": {"N": str(version)}},
            }
        }

    def _put_activity(self, activity: Activity) -> dict[str, Any]:
        return {
            "Put": {
                "TableName": self.table_name,
                "Item": marshal(ActivityItem.from_activity(activity).model_dump()),
            }
        }
