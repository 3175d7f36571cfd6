"""Data access for scoring: rules, scores (the ledger), behavioural activities and rescore jobs.

The only scoring module that talks to DynamoDB; it returns domain models and turns DynamoDB's error codes
into domain errors. Keys (see docs/data-model.md):

    rule set        PK=RULES#scoring       SK=META             revision, rule_count (seeded once)
    scoring rule    PK=RULES#scoring       SK=RULE#<id>
    score (ledger)  PK=LEAD#<id>           SK=SCORE            GSI1PK=DECAY#<shard> GSI1SK=<scored_at>#<id>
                                                               (only while behavioural points can decay)
    event claim     PK=LEAD#<id>           SK=EVENT#<event id> (idempotent POST /leads/{id}/activities)
    rescore job     PK=RESCORE#<job id>    SK=JOB              counters, ADDed atomically
    job page        PK=RESCORE#<job id>    SK=PAGE#<partition>#<page>   each page counted once
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict

from crm.leads.model import Activity, Lead, LeadStatus
from crm.leads.repository import ActivityItem, LeadItem, lead_key, shard_of
from crm.platform import clock
from crm.platform.dynamo import (
    TableRepository,
    cancellation_codes,
    deserializer,
    error_code,
    marshal,
    serializer,
    translate,
    unmarshal,
)
from crm.platform.errors import Conflict, NotFound, RetryableError, VersionConflict
from crm.scoring.engine import default_rules
from crm.scoring.rescoring import (
    RULE_SET_ENTITY,
    SCORE_ITEM_ENTITY,
    SCORING_WRITER,
    JobState,
    Partition,
    RescoreJob,
    RescorePage,
    RuleSet,
    ScoreUpdate,
    StoredRule,
    decay_partition_key,
    has_decaying_points,
)
from crm.scoring.rules import ScoreBreakdown

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

RULES_PK = "RULES#scoring"
META_SK = "META"
MAX_RULES = 500
JOB_TTL = timedelta(days=30)


def _storable(value: Any) -> Any:
    """A value DynamoDB accepts as it is: floats become Decimals, times fixed-width ISO text."""
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, datetime):
        return clock.isoformat(value)
    if isinstance(value, dict):
        return {str(key): _storable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_storable(item) for item in value]
    return value


def _plain_number(value: Any) -> Any:
    """Numbers read back as Decimal: whole ones become int again (rule values, matched values)."""
    if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        return int(value)
    if isinstance(value, list):
        return [_plain_number(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain_number(item) for key, item in value.items()}
    return value


def _value(value: Any) -> dict[str, Any]:
    serialized: dict[str, Any] = dict(serializer.serialize(value))
    return serialized


def stream_image(raw: dict[str, Any] | None) -> dict[str, Any]:
    """A stream record's image as plain values. An attribute that is not one typed value is left out:
    DynamoDB Local's stream (through botocore) renders an empty map as `{}` instead of `{"M": {}}`."""
    return {
        name: deserializer.deserialize(value)  # type: ignore[arg-type]
        for name, value in (raw or {}).items()
        if isinstance(value, dict) and len(value) == 1
    }


def rule_key(rule_id: str) -> dict[str, str]:
    return {"PK": RULES_PK, "SK": f"RULE#{rule_id}"}


def meta_key() -> dict[str, str]:
    return {"PK": RULES_PK, "SK": META_SK}


def score_key(lead_id: str) -> dict[str, str]:
    return {"PK": f"LEAD#{lead_id}", "SK": "SCORE"}


def event_key(lead_id: str, event_id: str) -> dict[str, str]:
    return {"PK": f"LEAD#{lead_id}", "SK": f"EVENT#{event_id}"}


def job_key(job_id: str) -> dict[str, str]:
    return {"PK": f"RESCORE#{job_id}", "SK": "JOB"}


def page_key(page: RescorePage) -> dict[str, str]:
    return {"PK": f"RESCORE#{page.job_id}", "SK": f"PAGE#{page.marker}"}


class _Store(TableRepository):
    def _transact(self, items: list[Any]) -> None:
        self.client.transact_write_items(TransactItems=items)


# ---------------------------------------------------------------- rules


class ScoringRuleItem(BaseModel):
    """A rule as stored: its definition, id, version and timestamps."""

    model_config = ConfigDict(extra="allow")

    PK: str
    SK: str
    entity: str = "scoring_rule"

    @classmethod
    def from_rule(cls, rule: StoredRule) -> "ScoringRuleItem":
        attributes = rule.model_dump(mode="json", exclude={"value"})
        return cls(**rule_key(rule.id), value=rule.value, **attributes)

    def to_rule(self) -> StoredRule:
        attributes = dict(self.model_extra or {})
        attributes["value"] = _plain_number(attributes.get("value"))
        return StoredRule.model_validate(attributes)


class RuleSetItem(BaseModel):
    PK: str = RULES_PK
    SK: str = META_SK
    entity: str = RULE_SET_ENTITY
    revision: int
    rule_count: int
    updated_at: str
    seeded_at: str | None = None


class ScoringRuleRepository(_Store):
    """Scoring rules. Every change bumps the rule set's revision, conditional on the revision read, so
    changes are serialised and each revision names exactly one rule set (and one rescore job)."""

    def rule_set(self, now: Callable[[], datetime] = clock.now) -> RuleSet:
        """Every rule; a fresh install is seeded with the defaults the first time rules are read."""
        for _ in range(3):
            revision, rules = self._read()
            if revision is not None:
                return RuleSet(revision=revision, rules=rules)
            self._seed(now())
        raise RetryableError("The scoring rules could not be read; try again")

    def _read(self) -> tuple[int | None, list[StoredRule]]:
        revision: int | None = None
        rules: list[StoredRule] = []
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "PK = :pk",
            "ExpressionAttributeValues": {":pk": _value(RULES_PK)},
            "ConsistentRead": True,
        }
        try:
            while True:
                response = self.client.query(**kwargs)
                for raw in response.get("Items", []):
                    item = unmarshal(raw)
                    if item.get("entity") == RULE_SET_ENTITY:
                        revision = int(item["revision"])
                    elif item.get("entity") == "scoring_rule":
                        rules.append(ScoringRuleItem.model_validate(item).to_rule())
                if "LastEvaluatedKey" not in response:
                    break
                kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        except ClientError as exc:
            raise translate(exc) from exc
        return revision, rules

    def _seed(self, now: datetime) -> None:
        """The defaults and revision 1, all or nothing; a concurrent seeding makes this one a no-op."""
        stamp = clock.isoformat(now)
        rules = [StoredRule(**rule.model_dump(), updated_at=now) for rule in default_rules(now)]
        meta = RuleSetItem(revision=1, rule_count=len(rules), updated_at=stamp, seeded_at=stamp)
        items: list[Any] = [
            {
                "Put": {
                    "TableName": self.table_name,
                    "Item": marshal(meta.model_dump()),
                    "ConditionExpression": "attribute_not_exists(PK)",
                }
            },
            *(
                {
                    "Put": {
                        "TableName": self.table_name,
                        "Item": marshal(ScoringRuleItem.from_rule(rule).model_dump()),
                        "ConditionExpression": "attribute_not_exists(PK)",
                    }
                }
                for rule in rules
            ),
        ]
        try:
            self._transact(items)
        except ClientError as exc:
            if error_code(exc) != "TransactionCanceledException":
                raise translate(exc) from exc
            # Seeded by someone else meanwhile (or a transient cancellation): the caller reads again.

    def revision(self) -> int | None:
        item = self._get_item(meta_key())
        return int(item["revision"]) if item else None

    def save(self, rule: StoredRule, expected_version: int | None, rule_set: RuleSet, now: datetime) -> int:
        """Create (expected_version None) or replace a rule; returns the rule set's new revision.

        Raises VersionConflict when the rule changed since `expected_version` (or already exists),
        NotFound when it is gone, Conflict when the rule set changed meanwhile (retry with a fresh read).
        """
        creating = expected_version is None
        rule_put: dict[str, Any] = {
            "TableName": self.table_name,
            "Item": marshal(ScoringRuleItem.from_rule(rule).model_dump()),
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
        if creating:
            rule_put["ConditionExpression"] = "attribute_not_exists(PK)"
        else:
            rule_put["ConditionExpression"] = "attribute_exists(PK) AND #version = :expected"
            rule_put["ExpressionAttributeNames"] = {"#version": "version"}
            rule_put["ExpressionAttributeValues"] = {":expected": _value(expected_version)}
        count_change = 1 if creating else 0
        return self._write_with_revision({"Put": rule_put}, rule.id, rule_set, count_change, now)

    def delete(self, rule_id: str, expected_version: int | None, rule_set: RuleSet, now: datetime) -> int:
        delete: dict[str, Any] = {
            "TableName": self.table_name,
            "Key": marshal(rule_key(rule_id)),
            "ConditionExpression": "attribute_exists(PK)",
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
        if expected_version is not None:
            delete["ConditionExpression"] += " AND #version = :expected"
            delete["ExpressionAttributeNames"] = {"#version": "version"}
            delete["ExpressionAttributeValues"] = {":expected": _value(expected_version)}
        return self._write_with_revision({"Delete": delete}, rule_id, rule_set, -1, now)

    def _write_with_revision(
        self, rule_write: dict[str, Any], rule_id: str, rule_set: RuleSet, count_change: int, now: datetime
    ) -> int:
        new_revision = rule_set.revision + 1
        condition = "#revision = :read"
        values: dict[str, Any] = {
            ":read": _value(rule_set.revision),
            ":new": _value(new_revision),
            ":change": _value(count_change),
            ":now": _value(clock.isoformat(now)),
        }
        if count_change > 0:
            condition += " AND rule_count < :max"
            values[":max"] = _value(MAX_RULES)
        meta_update = {
            "Update": {
                "TableName": self.table_name,
                "Key": marshal(meta_key()),
                "UpdateExpression": "SET #revision = :new, updated_at = :now ADD rule_count :change",
                "ConditionExpression": condition,
                "ExpressionAttributeNames": {"#revision": "revision"},
                "ExpressionAttributeValues": values,
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        }
        try:
            self._transact([rule_write, meta_update])
        except ClientError as exc:
            if error_code(exc) != "TransactionCanceledException":
                raise translate(exc) from exc
            rule_code, meta_code = [*cancellation_codes(exc), "None", "None"][:2]
            if rule_code == "ConditionalCheckFailed":
                raise self._rule_conflict(rule_id, "Put" in rule_write and count_change > 0) from exc
            if meta_code == "ConditionalCheckFailed":
                raise self._rule_set_conflict(count_change) from exc
            raise RetryableError("The scoring rules could not be changed; try again") from exc
        return new_revision

    def _rule_conflict(self, rule_id: str, creating: bool) -> Exception:
        current = self._get_item(rule_key(rule_id))
        if current is None:
            return NotFound(f"No scoring rule with id {rule_id}")
        if creating:
            return Conflict(f"A scoring rule with id {rule_id} already exists")
        return VersionConflict(
            "The scoring rule was changed by someone else", current_version=int(current["version"])
        )

    def _rule_set_conflict(self, count_change: int) -> Exception:
        meta = self._get_item(meta_key()) or {}
        if count_change > 0 and int(meta.get("rule_count", 0)) >= MAX_RULES:
            return Conflict(f"There are already {MAX_RULES} scoring rules; delete one first")
        return RuleSetChanged("The scoring rules changed meanwhile")


class RuleSetChanged(Conflict):
    """Another rule change committed first: read the rule set again and retry (never shown to clients)."""

    code = "rule_set_changed"


# ---------------------------------------------------------------- scores


@dataclass(frozen=True)
class LeadScoreState:
    """Everything a rescore reads, from one consistent Query of the lead's partition."""

    lead: Lead
    activities: list[Activity]
    stored: ScoreBreakdown | None
    in_decay_index: bool


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
            entries=[_storable(entry.model_dump()) for entry in breakdown.entries],
            **decay_keys,
        )

    def to_breakdown(self) -> ScoreBreakdown:
        attributes = dict(self.model_extra or {})
        attributes["entries"] = [_plain_number(entry) for entry in attributes.get("entries", [])]
        return ScoreBreakdown.model_validate(attributes)


class ScoreRepository(_Store):
    def __init__(self, table_name: str, shards: int = 4, client: "DynamoDBClient | None" = None) -> None:
        super().__init__(table_name, shards, client=client)

    def read(self, lead_id: str, with_activities: bool = True) -> LeadScoreState | None:
        """The lead, its activities (when rules read them) and its stored ledger, strongly consistent."""
        key_condition = "PK = :pk" if with_activities else "PK = :pk AND SK BETWEEN :lead AND :score"
        values = {":pk": _value(f"LEAD#{lead_id}")}
        if not with_activities:
            values |= {":lead": _value("LEAD"), ":score": _value("SCORE")}
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
        )

    def write(self, update: ScoreUpdate, expected_version: int, rules_revision: int) -> None:
        """The new score, ledger and activities in one transaction, only if the lead is still at
        `expected_version`; raises VersionConflict otherwise (read again, recompute, retry)."""
        lead = update.lead
        new_version = expected_version + 1 if update.lead_changed else expected_version
        names = {"#version": "version"}
        values: dict[str, Any] = {":expected": _value(expected_version)}
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
                    "GSI2PK": f"STATUS#{lead.lead_status.value}#{shard_of(lead.id, self.shards)}",
                    "updated_at": clock.isoformat(lead.updated_at),
                }
            assignments = []
            for index, (name, value) in enumerate(sets.items()):
                names[f"#a{index}"] = name
                values[f":a{index}"] = _value(value)
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
            {
                "ConditionCheck": {
                    "TableName": self.table_name,
                    "Key": marshal(lead_key(activity.lead_id)),
                    "ConditionExpression": "attribute_exists(PK)",
                }
            },
            {
                "Put": {
                    "TableName": self.table_name,
                    "Item": marshal(item),
                    "ConditionExpression": "attribute_not_exists(PK)",
                }
            },
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


# ---------------------------------------------------------------- rescore jobs


@dataclass(frozen=True)
class PageMarker:
    count: int
    state: str  # "listed": counted in leads_found; "done": counted in leads_done too
    next_sent: bool


class RescoreJobItem(BaseModel):
    model_config = ConfigDict(extra="allow")

    PK: str
    SK: str = "JOB"
    entity: str = "rescore_job"
    ttl: int

    @classmethod
    def from_job(cls, job: RescoreJob) -> "RescoreJobItem":
        expires = int((job.started_at + JOB_TTL).timestamp())
        return cls(**job_key(job.job_id), ttl=expires, **job.model_dump(mode="json", exclude_none=True))

    def to_job(self) -> RescoreJob:
        return RescoreJob.model_validate(self.model_extra or {})


class RescoreJobRepository(_Store):
    def create(self, job: RescoreJob) -> tuple[RescoreJob, bool]:
        """Write a new job, or return the one with this id (a job id is written once)."""
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item=marshal(RescoreJobItem.from_job(job).model_dump()),
                ConditionExpression="attribute_not_exists(PK)",
            )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise translate(exc) from exc
            existing = self.get(job.job_id)
            if existing is None:
                raise RetryableError("The rescore job could not be read; try again") from exc
            return existing, False
        return job, True

    def get(self, job_id: str) -> RescoreJob | None:
        item = self._get_item(job_key(job_id))
        return RescoreJobItem.model_validate(item).to_job() if item else None

    def move(self, job_id: str, from_state: JobState, to_state: JobState) -> None:
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=marshal(job_key(job_id)),
                UpdateExpression="SET #state = :to",
                ConditionExpression="#state = :from",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues={":to": _value(to_state.value), ":from": _value(from_state.value)},
            )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise translate(exc) from exc

    def list_page(
        self, partition: Partition, start_key: dict[str, Any] | None, limit: int
    ) -> tuple[list[str], Any]:
        """One page of lead ids from an index partition, and the key to continue from (None: the end)."""
        is_status = partition.index == "GSI2"
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": partition.index,
            "Limit": limit,
            "ProjectionExpression": "#id" if is_status else "lead_id",
            "ExpressionAttributeValues": {":pk": _value(partition.key)},
        }
        if is_status:
            kwargs["KeyConditionExpression"] = "GSI2PK = :pk"
            kwargs["ExpressionAttributeNames"] = {"#id": "id"}
        elif partition.before is not None:
            kwargs["KeyConditionExpression"] = "GSI1PK = :pk AND GSI1SK < :before"
            kwargs["ExpressionAttributeValues"][":before"] = _value(partition.before)
        else:
            kwargs["KeyConditionExpression"] = "GSI1PK = :pk"
        if start_key:
            kwargs["ExclusiveStartKey"] = start_key
        try:
            response = self.client.query(**kwargs)
        except ClientError as exc:
            raise translate(exc) from exc
        attribute = "id" if is_status else "lead_id"
        ids = [str(unmarshal(item)[attribute]) for item in response.get("Items", []) if attribute in item]
        return ids, response.get("LastEvaluatedKey")

    def claim_page(self, page: RescorePage, count: int, last: bool, now: datetime) -> PageMarker:
        """Count a listed page into the job once: the first delivery adds its leads to the total (and, for
        a partition's last page, marks the partition listed); a redelivery finds the marker instead."""
        expires = int((now + JOB_TTL).timestamp())
        marker = {
            **page_key(page),
            "entity": "rescore_page",
            "count": count,
            "state": "listed",
            "ttl": expires,
        }
        update = "ADD leads_found :count" + (", partitions_listed :one" if last else "")
        values: dict[str, Any] = {":count": _value(count)}
        if last:
            values[":one"] = _value(1)
        try:
            self._transact(
                [
                    {
                        "Put": {
                            "TableName": self.table_name,
                            "Item": marshal({**marker, "next_sent": False}),
                            "ConditionExpression": "attribute_not_exists(PK)",
                        }
                    },
                    {
                        "Update": {
                            "TableName": self.table_name,
                            "Key": marshal(job_key(page.job_id)),
                            "UpdateExpression": update,
                            "ConditionExpression": "attribute_exists(PK)",
                            "ExpressionAttributeValues": values,
                        }
                    },
                ]
            )
        except ClientError as exc:
            if error_code(exc) != "TransactionCanceledException":
                raise translate(exc) from exc
            codes = cancellation_codes(exc)
            if codes[1:2] == ["ConditionalCheckFailed"]:
                raise NotFound(f"No rescore job {page.job_id}") from exc
            existing = self._get_item(page_key(page))
            if codes[:1] != ["ConditionalCheckFailed"] or existing is None:
                raise RetryableError("The rescore page could not be counted; try again") from exc
            return PageMarker(int(existing["count"]), str(existing["state"]), bool(existing.get("next_sent")))
        return PageMarker(count, "listed", False)

    def mark_next_sent(self, page: RescorePage) -> None:
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=marshal(page_key(page)),
                UpdateExpression="SET next_sent = :yes",
                ExpressionAttributeValues={":yes": _value(True)},
            )
        except ClientError as exc:
            raise translate(exc) from exc

    def finish_page(self, page: RescorePage, count: int, changed: int) -> bool:
        """Count a rescored page into leads_done once; False when a duplicate delivery already did."""
        try:
            self._transact(
                [
                    {
                        "Update": {
                            "TableName": self.table_name,
                            "Key": marshal(page_key(page)),
                            "UpdateExpression": "SET #state = :done",
                            "ConditionExpression": "#state = :listed",
                            "ExpressionAttributeNames": {"#state": "state"},
                            "ExpressionAttributeValues": {
                                ":done": _value("done"),
                                ":listed": _value("listed"),
                            },
                        }
                    },
                    {
                        "Update": {
                            "TableName": self.table_name,
                            "Key": marshal(job_key(page.job_id)),
                            "UpdateExpression": "ADD leads_done :count, leads_changed :changed",
                            "ExpressionAttributeValues": {
                                ":count": _value(count),
                                ":changed": _value(changed),
                            },
                        }
                    },
                ]
            )
        except ClientError as exc:
            if error_code(exc) != "TransactionCanceledException":
                raise translate(exc) from exc
            if cancellation_codes(exc)[:1] == ["ConditionalCheckFailed"]:
                return False
            raise RetryableError("The rescore page could not be counted; try again") from exc
        return True

    def finish_if_complete(self, job_id: str, now: datetime) -> bool:
        """Stamp finished_at once every partition is listed and every listed lead rescored."""
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=marshal(job_key(job_id)),
                UpdateExpression="SET finished_at = :now, #state = :completed",
                ConditionExpression=(
                    "attribute_exists(PK) AND attribute_not_exists(finished_at) AND #state = :running "
                    "AND #listed >= #partitions AND #done >= #found"
                ),
                ExpressionAttributeNames={
                    "#state": "state",
                    "#listed": "partitions_listed",
                    "#partitions": "partitions",
                    "#done": "leads_done",
                    "#found": "leads_found",
                },
                ExpressionAttributeValues={
                    ":now": _value(clock.isoformat(now)),
                    ":completed": _value(JobState.COMPLETED.value),
                    ":running": _value(JobState.RUNNING.value),
                },
            )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise translate(exc) from exc
            return False
        return True
