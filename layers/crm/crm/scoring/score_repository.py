"""Data access for scores (the ledger) and behavioural activities: the only module that writes scores.

Keys: `crm.scoring.repository` and docs/data-model.md.
"""

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict

from crm.leads.index import status_pk
from crm.leads.model import Activity, Lead, LeadStatus
from crm.leads.repository import ActivityItem, LeadItem, lead_key, shard_of
from crm.platform import clock
from crm.platform.dynamo import (
    cancellation_codes,
    error_code,
    marshal,
    must_exist,
    put_new,
    translate,
    unmarshal,
)
from crm.platform.errors import NotFound, RetryableError, VersionConflict
from crm.scoring.repository import ScoringStore, attribute_value, plain_number, storable
from crm.scoring.rescoring import (
    SCORE_ITEM_ENTITY,
    SCORING_WRITER,
    ScoreUpdate,
    decay_partition_key,
    has_decaying_points,
)
from crm.scoring.rules import ScoreBreakdown


def score_key(lead_id: str) -> dict[str, str]:
    return {"PK": f"LEAD#{lead_id}", "SK": "SCORE"}


def event_key(lead_id: str, event_id: str) -> dict[str, str]:
    return {"PK": f"LEAD#{lead_id}", "SK": f"EVENT#{event_id}"}


if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


@dataclass(frozen=True)
class LeadScoreState:
    """Everything a rescore reads, from one consistent Query of the lead's partition."""

    lead: Lead
    activities: list[Activity]
    stored: ScoreBreakdown | None
    in_decay_index: bool
    # What the stored ledger was computed from (None before the first scoring): the reconciler's test
    # of a lead left behind (never scored, or scored against an older lead version or rule set).
    scored_lead_version: int | None = None
    scored_rules_revision: int | None = None


class ScoreItem(BaseModel):
    """A lead's score ledger (crm.scoring.rules.ScoreBreakdown) as stored beside the lead."""

    model_config = ConfigDict(extra="allow")

    PK: str
    SK: str
    entity: str = SCORE_ITEM_ENTITY
    lead_id: str
    lead_version: int
    rules_revision: int
    GSI1PK: str | None = None
    GSI1SK: str | None = None

    @classmethod
    def from_update(
        cls, update: ScoreUpdate, lead_version: int, rules_revision: int, shards: int
    ) -> "ScoreItem":
        breakdown = update.breakdown
        lead = update.lead
        decay_keys: dict[str, str] = {}
        # The decay pass reads this sparse index: open leads whose points can still decay.
        if has_decaying_points(breakdown) and lead.lead_status is not LeadStatus.CONVERTED:
            decay_keys = {
                "GSI1PK": decay_partition_key(shard_of(lead.id, shards)),
                "GSI1SK": f"{clock.isoformat(breakdown.scored_at)}#{lead.id}",
            }
        return cls(
            **score_key(lead.id),
            lead_id=lead.id,
            lead_version=lead_version,
            rules_revision=rules_revision,
            score=breakdown.score,
            grade=breakdown.grade,
            limit_adjustment=breakdown.limit_adjustment,
            scored_at=clock.isoformat(breakdown.scored_at),
            entries=[storable(entry.model_dump()) for entry in breakdown.entries],
            **decay_keys,
        )

    def to_breakdown(self) -> ScoreBreakdown:
        attributes = dict(self.model_extra or {})
        attributes["entries"] = [plain_number(entry) for entry in attributes.get("entries", [])]
        return ScoreBreakdown.model_validate(attributes)


class ScoreRepository(ScoringStore):
    def __init__(self, table_name: str, shards: int = 4, client: "DynamoDBClient | None" = None) -> None:
        super().__init__(table_name, shards, client=client)

    def read(self, lead_id: str, with_activities: bool = True) -> LeadScoreState | None:
        """The lead, its activities (when rules read them) and its stored ledger, strongly consistent."""
        key_condition = "PK = :pk" if with_activities else "PK = :pk AND SK BETWEEN :lead AND :score"
        values = {":pk": attribute_value(f"LEAD#{lead_id}")}
        if not with_activities:
            values |= {":lead": attribute_value("LEAD"), ":score": attribute_value("SCORE")}
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": key_condition,
            "ExpressionAttributeValues": values,
            "ConsistentRead": True,
        }
        lead: Lead | None = None
        activities: list[Activity] = []
        score_item: ScoreItem | None = None
        try:
            while True:
                response = self.client.query(**kwargs)
                for raw in response.get("Items", []):
                    item = unmarshal(raw)
                    entity = item.get("entity")
                    if entity == "lead":
                        lead = LeadItem.model_validate(item).to_lead()
                    elif entity == "activity":
                        activities.append(ActivityItem.model_validate(item).to_activity())
                    elif entity == SCORE_ITEM_ENTITY:
                        score_item = ScoreItem.model_validate(item)
                if "LastEvaluatedKey" not in response:
                    break
                kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        except ClientError as exc:
            raise translate(exc) from exc
        if lead is None:
            return None
        return LeadScoreState(
            lead=lead,
            activities=activities,
            stored=score_item.to_breakdown() if score_item else None,
            in_decay_index=bool(score_item and score_item.GSI1PK),
            scored_lead_version=score_item.lead_version if score_item else None,
            scored_rules_revision=score_item.rules_revision if score_item else None,
        )

    def write(self, update: ScoreUpdate, expected_version: int, rules_revision: int) -> None:
        """The new score, ledger and activities in one transaction, only if the lead is still at
        `expected_version`; raises VersionConflict otherwise (read again, recompute, retry)."""
        lead = update.lead
        new_version = expected_version + 1 if update.lead_changed else expected_version
        names = {"#version": "version"}
        values: dict[str, Any] = {":expected": attribute_value(expected_version)}
        lead_write: dict[str, Any]
        if update.lead_changed:
            sets = {
                "score": lead.score,
                "grade": lead.grade,
                "version": new_version,
                "scored_version": new_version,
                "written_by": SCORING_WRITER,
            }
            if update.qualified:
                sets |= {
                    "qualified": True,
                    "qualified_at": clock.isoformat(lead.qualified_at or lead.updated_at),
                    "lead_status": lead.lead_status.value,
                    "STATUSPK": status_pk(lead.lead_status.value, shard_of(lead.id, self.shards)),
                    "updated_at": clock.isoformat(lead.updated_at),
                }
            assignments = []
            for index, (name, value) in enumerate(sets.items()):
                names[f"#a{index}"] = name
                values[f":a{index}"] = attribute_value(value)
                assignments.append(f"#a{index} = :a{index}")
            lead_write = {
                "Update": {
                    "TableName": self.table_name,
                    "Key": marshal(lead_key(lead.id)),
                    "UpdateExpression": "SET " + ", ".join(assignments),
                    "ConditionExpression": "#version = :expected",
                    "ExpressionAttributeNames": names,
                    "ExpressionAttributeValues": values,
                }
            }
        else:
            lead_write = {
                "ConditionCheck": {
                    "TableName": self.table_name,
                    "Key": marshal(lead_key(lead.id)),
                    "ConditionExpression": "#version = :expected",
                    "ExpressionAttributeNames": names,
                    "ExpressionAttributeValues": values,
                }
            }
        score_item = ScoreItem.from_update(update, new_version, rules_revision, self.shards)
        items: list[Any] = [
            lead_write,
            {
                "Put": {
                    "TableName": self.table_name,
                    "Item": marshal(score_item.model_dump(exclude_none=True)),
                }
            },
            *(
                {
                    "Put": {
                        "TableName": self.table_name,
                        "Item": marshal(ActivityItem.from_activity(activity).model_dump()),
                    }
                }
                for activity in update.activities
            ),
        ]
        try:
            self._transact(items)
        except ClientError as exc:
            if error_code(exc) == "TransactionCanceledException":
                if cancellation_codes(exc)[:1] == ["ConditionalCheckFailed"]:
                    raise VersionConflict("The lead was changed while it was being scored") from exc
                raise RetryableError("The score could not be written; try again") from exc
            raise translate(exc) from exc

    def leave_decay_index(self, lead_id: str) -> None:
        """A converted lead's score is final: take it out of the decay pass."""
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=marshal(score_key(lead_id)),
                UpdateExpression="REMOVE GSI1PK, GSI1SK",
                ConditionExpression="attribute_exists(PK)",
            )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise translate(exc) from exc

    def lead_and_score(self, lead_id: str) -> tuple[Lead | None, ScoreBreakdown | None]:
        """The lead and its ledger as one snapshot: the ledger always adds up to the lead's score."""
        lead_item, score_item = self.get_together(
            [lead_key(lead_id), score_key(lead_id)], "The score is being written; try again"
        )
        lead = LeadItem.model_validate(lead_item).to_lead() if lead_item else None
        breakdown = ScoreItem.model_validate(score_item).to_breakdown() if score_item else None
        return lead, breakdown

    # ------------------------------------------------------------ behavioural activities
    def record_activity(self, activity: Activity, event_id: str | None) -> tuple[Activity, bool]:
        """Store an activity of an existing lead; with an event id, at most once: a replay writes
        nothing and returns the activity the first delivery stored (and False)."""
        item = ActivityItem.from_activity(activity).model_dump()
        items: list[Any] = [
            must_exist(self.table_name, lead_key(activity.lead_id)),
            put_new(self.table_name, item),
        ]
        if event_id is not None:
            claim = {
                **event_key(activity.lead_id, event_id),
                "entity": "activity_event",
                "event_id": event_id,
                "activity_sk": item["SK"],
                "activity_id": activity.id,
                "created_at": clock.isoformat(activity.created_at),
            }
            items.append(
                {
                    "Put": {
                        "TableName": self.table_name,
                        "Item": marshal(claim),
                        "ConditionExpression": "attribute_not_exists(PK)",
                    }
                }
            )
        try:
            self._transact(items)
        except ClientError as exc:
            if error_code(exc) != "TransactionCanceledException":
                raise translate(exc) from exc
            codes = cancellation_codes(exc)
            if codes[:1] == ["ConditionalCheckFailed"]:
                raise NotFound(f"No lead with id {activity.lead_id}") from exc
            if event_id is not None and codes[2:3] == ["ConditionalCheckFailed"]:
                return self._first_delivery(activity.lead_id, event_id), False
            raise RetryableError("The activity could not be stored; try again") from exc
        return activity, True

    def _first_delivery(self, lead_id: str, event_id: str) -> Activity:
        claim = self._get_item(event_key(lead_id, event_id))
        first = self._get_item({"PK": f"LEAD#{lead_id}", "SK": str(claim["activity_sk"])}) if claim else None
        if first is None:
            raise RetryableError("The first delivery of this event is still being stored; try again")
        return ActivityItem.model_validate(first).to_activity()
