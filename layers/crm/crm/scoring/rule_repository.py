"""Data access for scoring rules and the rule set (its revision): the only module that writes them.

Keys: `crm.scoring.repository` and docs/data-model.md.
"""

from collections.abc import Callable
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict

from crm.platform import clock
from crm.platform.audit import AuditEntry, audit_put
from crm.platform.dynamo import (
    cancellation_codes,
    error_code,
    marshal,
    translate,
    unmarshal,
)
from crm.platform.errors import Conflict, NotFound, RetryableError, VersionConflict
from crm.scoring.engine import DEFAULTS_VERSION, default_rule_upgrades, default_rules
from crm.scoring.repository import ScoringStore, attribute_value, plain_number
from crm.scoring.rescoring import (
    RULE_SET_ENTITY,
    RuleSet,
    StoredRule,
)

RULES_PK = "RULES#scoring"
META_SK = "META"
MAX_RULES = 500


def rule_key(rule_id: str) -> dict[str, str]:
    return {"PK": RULES_PK, "SK": f"RULE#{rule_id}"}


def meta_key() -> dict[str, str]:
    return {"PK": RULES_PK, "SK": META_SK}


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
        attributes["value"] = plain_number(attributes.get("value"))
        return StoredRule.model_validate(attributes)


class RuleSetItem(BaseModel):
    PK: str = RULES_PK
    SK: str = META_SK
    entity: str = RULE_SET_ENTITY
    revision: int
    rule_count: int
    updated_at: str
    seeded_at: str | None = None
    # The defaults (crm.scoring.engine.DEFAULTS_VERSION) the rules were seeded with or upgraded to.
    defaults_version: int = DEFAULTS_VERSION


class ScoringRuleRepository(ScoringStore):
    """Scoring rules. Every change bumps the rule set's revision, conditional on the revision read, so
    changes are serialised and each revision names exactly one rule set (and one rescore job)."""

    def rule_set(self, now: Callable[[], datetime] = clock.now) -> RuleSet:
        """Every rule; a fresh install is seeded with the defaults the first time rules are read, and an
        install seeded by an earlier release gets the defaults changed since (`_upgrade_defaults`)."""
        for _ in range(3):
            revision, defaults_version, rules = self._read()
            if revision is None:
                self._seed(now())
            elif defaults_version < DEFAULTS_VERSION:
                self._upgrade_defaults(revision, defaults_version, rules, now())
            else:
                return RuleSet(revision=revision, rules=rules)
        raise RetryableError("The scoring rules could not be read; try again")

    def _read(self) -> tuple[int | None, int, list[StoredRule]]:
        """The rule set's revision (None before seeding), its defaults version and every rule."""
        revision: int | None = None
        # A rule set from before defaults were versioned was seeded with the first defaults.
        defaults_version = 1
        rules: list[StoredRule] = []
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "PK = :pk",
            "ExpressionAttributeValues": {":pk": attribute_value(RULES_PK)},
            "ConsistentRead": True,
        }
        try:
            while True:
                response = self.client.query(**kwargs)
                for raw in response.get("Items", []):
                    item = unmarshal(raw)
                    if item.get("entity") == RULE_SET_ENTITY:
                        revision = int(item["revision"])
                        defaults_version = int(item.get("defaults_version", 1))
                    elif item.get("entity") == "scoring_rule":
                        rules.append(ScoringRuleItem.model_validate(item).to_rule())
                if "LastEvaluatedKey" not in response:
                    break
                kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        except ClientError as exc:
            raise translate(exc) from exc
        return revision, defaults_version, rules

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

    def _upgrade_defaults(
        self, revision: int, defaults_version: int, rules: list[StoredRule], now: datetime
    ) -> None:
        """Bring an earlier release's defaults up to date, in one transaction with the revision they
        make (so a rescore job applies them), conditional on the revision read: a concurrent rule change
        or upgrade makes this one a no-op, and the caller reads again."""
        current = {rule.id: rule for rule in rules}
        writes: list[Any] = []
        added = 0
        for default in default_rule_upgrades(rules, defaults_version, now):
            previous = current.get(default.id)
            put: dict[str, Any] = {"TableName": self.table_name}
            if previous is None:
                rule = StoredRule(**default.model_dump(), updated_at=now)
                put["ConditionExpression"] = "attribute_not_exists(PK)"
                added += 1
            else:
                rule = StoredRule(
                    **default.model_dump(exclude={"created_at"}),
                    created_at=previous.created_at,
                    updated_at=now,
                    version=previous.version + 1,
                )
                put["ConditionExpression"] = "#version = :expected"
                put["ExpressionAttributeNames"] = {"#version": "version"}
                put["ExpressionAttributeValues"] = {":expected": attribute_value(previous.version)}
            put["Item"] = marshal(ScoringRuleItem.from_rule(rule).model_dump())
            writes.append({"Put": put})
        sets = "defaults_version = :defaults, updated_at = :now"
        values: dict[str, Any] = {
            ":read": attribute_value(revision),
            ":defaults": attribute_value(DEFAULTS_VERSION),
            ":now": attribute_value(clock.isoformat(now)),
        }
        update_expression = f"SET {sets}"
        if writes:
            update_expression = f"SET {sets}, #revision = :new ADD rule_count :added"
            values |= {":new": attribute_value(revision + 1), ":added": attribute_value(added)}
        meta_update = {
            "Update": {
                "TableName": self.table_name,
                "Key": marshal(meta_key()),
                "UpdateExpression": update_expression,
                "ConditionExpression": "#revision = :read AND "
                "(attribute_not_exists(defaults_version) OR defaults_version < :defaults)",
                "ExpressionAttributeNames": {"#revision": "revision"},
                "ExpressionAttributeValues": values,
            }
        }
        try:
            self._transact([*writes, meta_update])
        except ClientError as exc:
            if error_code(exc) != "TransactionCanceledException":
                raise translate(exc) from exc
            # Changed or upgraded by someone else meanwhile: the caller reads again.

    def revision(self) -> int | None:
        item = self._get_item(meta_key())
        return int(item["revision"]) if item else None

    def save(
        self,
        rule: StoredRule,
        expected_version: int | None,
        rule_set: RuleSet,
        now: datetime,
        audit: AuditEntry | None = None,
    ) -> int:
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
            rule_put["ExpressionAttributeValues"] = {":expected": attribute_value(expected_version)}
        count_change = 1 if creating else 0
        return self._write_with_revision({"Put": rule_put}, rule.id, rule_set, count_change, now, audit)

    def delete(
        self,
        rule_id: str,
        expected_version: int | None,
        rule_set: RuleSet,
        now: datetime,
        audit: AuditEntry | None = None,
    ) -> int:
        delete: dict[str, Any] = {
            "TableName": self.table_name,
            "Key": marshal(rule_key(rule_id)),
            "ConditionExpression": "attribute_exists(PK)",
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
        if expected_version is not None:
            delete["ConditionExpression"] += " AND #version = :expected"
            delete["ExpressionAttributeNames"] = {"#version": "version"}
            delete["ExpressionAttributeValues"] = {":expected": attribute_value(expected_version)}
        return self._write_with_revision({"Delete": delete}, rule_id, rule_set, -1, now, audit)

    def _write_with_revision(  # noqa: PLR0917 - the one writer behind save and delete
        self,
        rule_write: dict[str, Any],
        rule_id: str,
        rule_set: RuleSet,
        count_change: int,
        now: datetime,
        audit: AuditEntry | None = None,
    ) -> int:
        new_revision = rule_set.revision + 1
        condition = "#revision = :read"
        values: dict[str, Any] = {
            ":read": attribute_value(rule_set.revision),
            ":new": attribute_value(new_revision),
            ":change": attribute_value(count_change),
            ":now": attribute_value(clock.isoformat(now)),
        }
        if count_change > 0:
            condition += " AND rule_count < :max"
            values[":max"] = attribute_value(MAX_RULES)
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
            self._transact([rule_write, meta_update, *([audit_put(self.table_name, audit)] if audit else [])])
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
