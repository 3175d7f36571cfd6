"""Data access for routing and assignment: the only module that writes assignments.

    routing marker  PK=LEAD#<id>             SK=ROUTING    state nurture|requested|waiting|assigned;
                    while waiting: GSI2PK=ROUTING#waiting#<shard>  GSI2SK=<waiting since>#<id>
    load claim      PK=LEAD#<id>             SK=LOAD       which rep's open-lead counter counts this lead
    rep load        PK=USER#<sub>            SK=LOAD       open_leads (atomic ADD)
    team cursor     PK=TEAM#<team>           SK=CURSOR     ticket (atomic ADD): round-robin tie-breaks
    assignment rule PK=RULES#assignment      SK=RULE#<id>

An assignment is one TransactWriteItems: the lead (only if still unassigned and open), the rep's counter
(only if it still holds the load the choice was made on), the load claim (only if none), the routing
marker and the activity. So concurrent workers never assign a lead twice, never push a rep past the
load they saw (hence never past capacity), and a counter always equals the claims that point at it.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict

from crm.assignment.rules import AssignmentRule
from crm.leads.index import UNASSIGNED_BY_CREATED, list_index_attributes, unassigned_owner_pk
from crm.leads.model import Activity, Lead, LeadStatus
from crm.leads.repository import ActivityItem, LeadItem, lead_key, shard_of
from crm.platform import clock
from crm.platform.audit import AuditEntry, audit_put
from crm.platform.dynamo import (
    TableRepository,
    cancellation_codes,
    error_code,
    marshal,
    translate,
    unmarshal,
    versioned,
)
from crm.platform.errors import Conflict, NotFound, RetryableError, VersionConflict

OPEN_STATUSES = (LeadStatus.NEW, LeadStatus.CONTACTED, LeadStatus.QUALIFIED)
RULES_PK = "RULES#assignment"
_OPEN_LEAD = (
    "attribute_exists(PK) AND lead_status IN (:new, :contacted, :qualified) "
    "AND (attribute_not_exists(converted) OR converted = :false)"
)
_OPEN_VALUES = {
    ":new": {"S": LeadStatus.NEW.value},
    ":contacted": {"S": LeadStatus.CONTACTED.value},
    ":qualified": {"S": LeadStatus.QUALIFIED.value},
    ":false": {"BOOL": False},
}


class RoutingState(StrEnum):
    NURTURE = "nurture"
    REQUESTED = "requested"
    WAITING = "waiting"
    ASSIGNED = "assigned"
    WITHDRAWN = "withdrawn"  # a request whose message could not be sent: as if there were no marker


class RoutingMarker(BaseModel):
    model_config = ConfigDict(extra="ignore")

    lead_id: str
    state: RoutingState
    trigger: str | None = None
    team: str | None = None
    requested_at: str | None = None
    waiting_since: str | None = None
    manager_alerted: bool = False
    updated_at: str


def routing_key(lead_id: str) -> dict[str, str]:
    return {"PK": f"LEAD#{lead_id}", "SK": "ROUTING"}


def claim_key(lead_id: str) -> dict[str, str]:
    return {"PK": f"LEAD#{lead_id}", "SK": "LOAD"}


def load_key(sub: str) -> dict[str, str]:
    return {"PK": f"USER#{sub}", "SK": "LOAD"}


def cursor_key(team: str) -> dict[str, str]:
    return {"PK": f"TEAM#{team}", "SK": "CURSOR"}


def rule_key(rule_id: str) -> dict[str, str]:
    return {"PK": RULES_PK, "SK": f"RULE#{rule_id}"}


def lead_update(
    table_name: str, shards: int, after: Lead, expected_version: int, condition: str = ""
) -> dict[str, Any]:
    """An UpdateItem of the lead to `after`, only if it is still at `expected_version` (and `condition`).

    It sets what assignment changes (owner, team, nurture) and every index key derived from the lead, as
    `LeadItem.from_lead` would, so the owner and list indexes never lag; other attributes are left alone.
    """
    attributes: dict[str, Any] = {
        "assigned_to": after.assigned_to,
        "assigned_at": clock.isoformat(after.assigned_at) if after.assigned_at else None,
        "team": after.team,
        "nurture": after.nurture,
        "updated_at": clock.isoformat(after.updated_at),
        "version": expected_version + 1,
        "written_by": "lead",  # not the scoring function's own write: its stream filter must see this one
        **list_index_attributes(after, shards),
    }
    names: dict[str, str] = {"#version": "version"}
    values: dict[str, Any] = {":expected": {"N": str(expected_version)}}
    sets, removes = [], []
    for index, (name, value) in enumerate(attributes.items()):
        names[f"#a{index}"] = name
        if value is None:
            removes.append(f"#a{index}")
        else:
            values[f":v{index}"] = marshal({"v": value})["v"]
            sets.append(f"#a{index} = :v{index}")
    expression = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
    full_condition = "#version = :expected" + (f" AND {condition}" if condition else "")
    return {
        "TableName": table_name,
        "Key": marshal(lead_key(after.id)),
        "UpdateExpression": expression,
        "ConditionExpression": full_condition,
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": values,
    }


class LeadNotAssignable(Conflict):
    """The lead is already assigned, closed or gone: the assignment did not happen."""

    code = "lead_not_assignable"


class LoadChanged(Conflict):
    """The chosen rep's counter moved since it was read (choose again), or a stale load claim is in the
    way (`stale_claim`: reconcile the lead's load first)."""

    code = "load_changed"

    def __init__(self, message: str, stale_claim: bool = False) -> None:
        super().__init__(message)
        self.stale_claim = stale_claim


@dataclass(frozen=True)
class AssignmentPlan:
    lead: Lead  # as read: the assignment is conditional on its version
    rep: str
    team: str
    seen_load: int
    capacity: int | None  # enforced again in the condition; None: no limit
    activity: Activity
    now: datetime
    trigger: str


@dataclass(frozen=True)
class LoadSnapshot:
    lead: Lead | None
    claimed_by: str | None


class AssignmentRepository(TableRepository):
    # ------------------------------------------------------------------ rules
    def list_rules(self) -> list[AssignmentRule]:
        items = self._query_pages(
            {
                "KeyConditionExpression": "PK = :pk AND begins_with(SK, :rule)",
                "ExpressionAttributeValues": {":pk": {"S": RULES_PK}, ":rule": {"S": "RULE#"}},
                "ConsistentRead": True,
            }
        )
        rules = [_rule_from(item) for item in items]
        return sorted(rules, key=lambda r: (r.priority, r.created_at, r.id))

    def get_rule(self, rule_id: str) -> AssignmentRule | None:
        item = self._get_item(rule_key(rule_id))
        return _rule_from(item) if item else None

    def put_rule(
        self, rule: AssignmentRule, expected_version: int | None, audit: AuditEntry | None = None
    ) -> AssignmentRule:
        """Create (`expected_version=None`: only if new) or replace a rule at `expected_version`, with its
        audit entry in the same transaction."""
        stored = (
            rule if expected_version is None else rule.model_copy(update={"version": expected_version + 1})
        )
        put: dict[str, Any] = {
            "TableName": self.table_name,
            "Item": marshal(
                {**rule_key(rule.id), "entity": "assignment_rule", **stored.model_dump(mode="python")}
                | {
                    "created_at": clock.isoformat(stored.created_at),
                    "updated_at": clock.isoformat(stored.updated_at),
                }
            ),
        }
        try:
            if audit is None:
                self.client.put_item(**versioned(put, expected_version))
            else:
                items = [{"Put": versioned(put, expected_version)}, audit_put(self.table_name, audit)]
                self.client.transact_write_items(TransactItems=items)  # type: ignore[arg-type]
        except ClientError as exc:
            if _rule_condition_failed(exc):
                if expected_version is None:
                    raise Conflict(f"An assignment rule with id {rule.id} already exists") from exc
                raise VersionConflict("The rule was changed by someone else") from exc
            raise translate(exc) from exc
        return stored

    def delete_rule(self, rule_id: str, audit: AuditEntry | None = None) -> None:
        delete = {
            "TableName": self.table_name,
            "Key": marshal(rule_key(rule_id)),
            "ConditionExpression": "attribute_exists(PK)",
        }
        try:
            if audit is None:
                self.client.delete_item(**delete)  # type: ignore[arg-type]
            else:
                items = [{"Delete": delete}, audit_put(self.table_name, audit)]
                self.client.transact_write_items(TransactItems=items)  # type: ignore[arg-type]
        except ClientError as exc:
            if _rule_condition_failed(exc):
                raise NotFound(f"No assignment rule with id {rule_id}") from exc
            raise translate(exc) from exc

    # ------------------------------------------------------------------ routing marker
    def get_marker(self, lead_id: str) -> RoutingMarker | None:
        item = self._get_item(routing_key(lead_id))
        if not item or item.get("state") == RoutingState.WITHDRAWN.value:
            return None
        return RoutingMarker.model_validate(item)

    def request_routing(self, lead_id: str, trigger: str, now: datetime) -> bool:
        """Mark the lead as sent for assignment, once: False if it already was (or is assigned/waiting)."""
        moment = clock.isoformat(now)
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item=marshal(
                    {
                        **routing_key(lead_id),
                        "entity": "routing",
                        "lead_id": lead_id,
                        "state": RoutingState.REQUESTED.value,
                        "trigger": trigger,
                        "requested_at": moment,
                        "updated_at": moment,
                    }
                ),
                ConditionExpression="attribute_not_exists(PK) OR #state IN (:nurture, :withdrawn)",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues={
                    ":nurture": {"S": RoutingState.NURTURE.value},
                    ":withdrawn": {"S": RoutingState.WITHDRAWN.value},
                },
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise translate(exc) from exc
        return True

    def withdraw_request(self, lead_id: str, requested_at: datetime) -> None:
        """Undo `request_routing` when the message could not be sent, so a retry requests it again. An
        update, not a delete: the capture role may not delete items (its policy has no DeleteItem)."""
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=marshal(routing_key(lead_id)),
                UpdateExpression="SET #state = :withdrawn",
                ConditionExpression="#state = :requested AND requested_at = :at",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues={
                    ":requested": {"S": RoutingState.REQUESTED.value},
                    ":withdrawn": {"S": RoutingState.WITHDRAWN.value},
                    ":at": {"S": clock.isoformat(requested_at)},
                },
            )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise translate(exc) from exc

    def mark_nurture(self, lead: Lead, activity: Activity, now: datetime) -> bool:
        """Flag a scored lead below the threshold for nurture; False if it changed meanwhile."""
        moment = clock.isoformat(now)
        after = lead.model_copy(update={"nurture": True, "updated_at": now})
        items: list[Any] = [
            {
                "Update": lead_update(
                    self.table_name, self.shards, after, lead.version, "attribute_not_exists(assigned_to)"
                )
            },
            {
                "Put": {
                    "TableName": self.table_name,
                    "Item": marshal(
                        {
                            **routing_key(lead.id),
                            "entity": "routing",
                            "lead_id": lead.id,
                            "state": RoutingState.NURTURE.value,
                            "updated_at": moment,
                        }
                    ),
                    "ConditionExpression": "attribute_not_exists(PK) OR #state = :nurture",
                    "ExpressionAttributeNames": {"#state": "state"},
                    "ExpressionAttributeValues": {":nurture": {"S": RoutingState.NURTURE.value}},
                }
            },
            self._put_activity(activity),
        ]
        return self._transact_or_false(items)

    def mark_waiting(
        self,
        lead: Lead,
        team: str,
        *,
        set_lead_team: bool,
        trigger: str,
        activity: Activity | None,
        now: datetime,
        since: datetime,
        manager_alerted: bool,
    ) -> bool:
        """Put the lead in the waiting index for `team` (and, with `set_lead_team`, give the lead that team);
        False if it got assigned or closed meanwhile."""
        moment = clock.isoformat(now)
        waiting_since = clock.isoformat(since)
        shard = shard_of(lead.id, self.shards)
        items: list[Any] = []
        lead_condition = {
            "TableName": self.table_name,
            "Key": marshal(lead_key(lead.id)),
            "ConditionExpression": f"attribute_not_exists(assigned_to) AND {_OPEN_LEAD}",
            "ExpressionAttributeValues": dict(_OPEN_VALUES),
        }
        if set_lead_team and lead.team != team:
            after = lead.model_copy(update={"team": team, "updated_at": now})
            update = lead_update(
                self.table_name,
                self.shards,
                after,
                lead.version,
                f"attribute_not_exists(assigned_to) AND {_OPEN_LEAD}",
            )
            update["ExpressionAttributeValues"].update(_OPEN_VALUES)
            items.append({"Update": update})
        else:
            items.append({"ConditionCheck": lead_condition})
        items.append(
            {
                "Put": {
                    "TableName": self.table_name,
                    "Item": marshal(
                        {
                            **routing_key(lead.id),
                            "entity": "routing",
                            "lead_id": lead.id,
                            "state": RoutingState.WAITING.value,
                            "trigger": trigger,
                            "team": team,
                            "waiting_since": waiting_since,
                            "manager_alerted": manager_alerted,
                            "updated_at": moment,
                            "GSI2PK": f"ROUTING#waiting#{shard}",
                            "GSI2SK": f"{waiting_since}#{lead.id}",
                        }
                    ),
                }
            }
        )
        if activity is not None:
            items.append(self._put_activity(activity))
        return self._transact_or_false(items)

    def mark_alerted(self, lead_id: str) -> None:
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=marshal(routing_key(lead_id)),
                UpdateExpression="SET manager_alerted = :true",
                ConditionExpression="#state = :waiting",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues={
                    ":true": {"BOOL": True},
                    ":waiting": {"S": RoutingState.WAITING.value},
                },
            )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise translate(exc) from exc

    def settle_marker(self, lead_id: str, team: str | None, why: str, now: datetime) -> None:
        """Take a lead found assigned, closed or gone out of the waiting index (`why` is kept as trigger)."""
        self._client_put(self._assigned_marker(lead_id, team, why, clock.isoformat(now)))

    def waiting_lead_ids(self, team: str | None = None) -> list[tuple[str, str | None]]:
        """(lead id, team) of every lead waiting for a rep, oldest first (all index shards)."""
        found: list[tuple[str, str, str | None]] = []
        for shard in range(self.shards):
            request: dict[str, Any] = {
                "IndexName": "GSI2",
                "KeyConditionExpression": "GSI2PK = :pk",
                "ExpressionAttributeValues": {":pk": {"S": f"ROUTING#waiting#{shard}"}},
            }
            if team is not None:
                request["FilterExpression"] = "team = :team"
                request["ExpressionAttributeValues"][":team"] = {"S": team}
            for item in self._query_pages(request):
                found.append((str(item["GSI2SK"]), str(item["lead_id"]), item.get("team")))
        return [(lead_id, lead_team) for _, lead_id, lead_team in sorted(found)]

    # ------------------------------------------------------------------ loads and cursor
    def loads(self, subs: Iterable[str]) -> dict[str, int]:
        """Open-lead counters of these users (strongly consistent); absent counters are 0."""
        wanted = sorted(set(subs))
        loads = dict.fromkeys(wanted, 0)
        for start in range(0, len(wanted), 100):
            keys = [marshal(load_key(sub)) for sub in wanted[start : start + 100]]
            request: dict[str, Any] = {self.table_name: {"Keys": keys, "ConsistentRead": True}}
            try:
                while request:
                    response = self.client.batch_get_item(RequestItems=request)
                    for raw in response.get("Responses", {}).get(self.table_name, []):
                        item = unmarshal(raw)
                        loads[str(item["user"])] = int(item.get("open_leads", 0))
                    request = dict(response.get("UnprocessedKeys") or {})
            except ClientError as exc:
                raise translate(exc) from exc
        return loads

    def next_ticket(self, team: str) -> int:
        """Advance the team's round-robin cursor atomically and return the new ticket."""
        try:
            response = self.client.update_item(
                TableName=self.table_name,
                Key=marshal(cursor_key(team)),
                UpdateExpression="SET entity = :entity, team = :team ADD ticket :one",
                ExpressionAttributeValues={
                    ":entity": {"S": "team_cursor"},
                    ":team": {"S": team},
                    ":one": {"N": "1"},
                },
                ReturnValues="UPDATED_NEW",
            )
        except ClientError as exc:
            raise translate(exc) from exc
        return int(unmarshal(response.get("Attributes", {})).get("ticket", 0))

    # ------------------------------------------------------------------ assignment
    def commit_assignment(self, plan: AssignmentPlan) -> None:
        """Assign the lead to `plan.rep` in one transaction (see the module docstring).

        Raises LeadNotAssignable (assigned, closed or gone), LoadChanged (the rep's counter moved, or a
        stale claim exists) or RetryableError (a conflicting transaction: try again).
        """
        moment = clock.isoformat(plan.now)
        counter_condition = "(attribute_not_exists(open_leads) AND :seen = :zero) OR open_leads = :seen"
        counter_values: dict[str, Any] = {
            ":one": {"N": "1"},
            ":seen": {"N": str(plan.seen_load)},
            ":zero": {"N": "0"},
            ":entity": {"S": "rep_load"},
            ":user": {"S": plan.rep},
        }
        if plan.capacity is not None:
            counter_condition = f"({counter_condition}) AND :seen < :capacity"
            counter_values[":capacity"] = {"N": str(plan.capacity)}
        after = plan.lead.model_copy(
            update={
                "assigned_to": plan.rep,
                "assigned_at": plan.now,
                "team": plan.team,
                "nurture": False,
                "updated_at": plan.now,
            }
        )
        update = lead_update(
            self.table_name,
            self.shards,
            after,
            plan.lead.version,
            f"attribute_not_exists(assigned_to) AND {_OPEN_LEAD}",
        )
        update["ExpressionAttributeValues"].update(_OPEN_VALUES)
        items: list[Any] = [
            {"Update": update},
            {
                "Update": {
                    "TableName": self.table_name,
                    "Key": marshal(load_key(plan.rep)),
                    "UpdateExpression": "SET entity = :entity, #user = :user ADD open_leads :one",
                    "ConditionExpression": counter_condition,
                    "ExpressionAttributeNames": {"#user": "user"},
                    "ExpressionAttributeValues": counter_values,
                }
            },
            {
                "Put": {
                    "TableName": self.table_name,
                    "Item": marshal(
                        {
                            **claim_key(plan.lead.id),
                            "entity": "load_claim",
                            "lead_id": plan.lead.id,
                            "user": plan.rep,
                            "since": moment,
                        }
                    ),
                    "ConditionExpression": "attribute_not_exists(PK)",
                }
            },
            {"Put": self._assigned_marker(plan.lead.id, plan.team, plan.trigger, moment)},
            self._put_activity(plan.activity),
        ]
        try:
            self.client.transact_write_items(TransactItems=items)
        except ClientError as exc:
            codes = cancellation_codes(exc)
            if codes and codes[0] == "ConditionalCheckFailed":
                raise LeadNotAssignable("The lead changed, or is no longer unassigned and open") from exc
            if len(codes) > 2 and codes[1] == "ConditionalCheckFailed":
                raise LoadChanged("The rep's open leads changed; choose again") from exc
            if len(codes) > 2 and codes[2] == "ConditionalCheckFailed":
                raise LoadChanged(
                    "A load claim from an earlier owner is in the way", stale_claim=True
                ) from exc
            if error_code(exc) == "TransactionCanceledException" or error_code(exc) in (
                "TransactionConflictException",
                "TransactionInProgressException",
            ):
                raise RetryableError("Another assignment touched the same items; try again") from exc
            raise translate(exc) from exc

    def commit_manual(
        self,
        lead: Lead,
        rep: str,
        team: str,
        *,
        previous_claim: str | None,
        activity: Activity,
        now: datetime,
    ) -> None:
        """Reassign an open lead at its read version; counters move from the old claim to the new rep."""
        moment = clock.isoformat(now)
        after = lead.model_copy(
            update={"assigned_to": rep, "assigned_at": now, "team": team, "nurture": False, "updated_at": now}
        )
        update = lead_update(self.table_name, self.shards, after, lead.version, _OPEN_LEAD)
        update["ExpressionAttributeValues"].update(_OPEN_VALUES)
        items: list[Any] = [
            {"Update": update},
            *self._move_claim(lead.id, previous_claim, rep, moment),
            {"Put": self._assigned_marker(lead.id, team, "manual", moment)},
            self._put_activity(activity),
        ]
        try:
            self.client.transact_write_items(TransactItems=items)
        except ClientError as exc:
            codes = cancellation_codes(exc)
            if codes and codes[0] == "ConditionalCheckFailed":
                raise VersionConflict("The lead was changed by someone else") from exc
            if error_code(exc) == "TransactionCanceledException":
                raise RetryableError("The lead could not be reassigned; try again") from exc
            raise translate(exc) from exc

    # ------------------------------------------------------------------ load keeping
    def load_snapshot(self, lead_id: str) -> LoadSnapshot:
        """The lead and its load claim, read together (one serializable TransactGetItems)."""
        lead_item, claim_item = self.get_together(
            [lead_key(lead_id), claim_key(lead_id)], "The lead is being written; try again"
        )
        lead = LeadItem.model_validate(lead_item).to_lead() if lead_item else None
        claimed_by = str(claim_item["user"]) if claim_item else None
        return LoadSnapshot(lead, claimed_by)

    def move_load(self, lead: Lead | None, lead_id: str, current: str | None, desired: str | None) -> bool:
        """Make the claim (and counters) match `desired`, if the lead is still at its read version."""
        moment = clock.isoformat(clock.now())
        items: list[Any] = []
        if lead is not None:
            items.append(
                {
                    "ConditionCheck": {
                        "TableName": self.table_name,
                        "Key": marshal(lead_key(lead_id)),
                        "ConditionExpression": "#version = :expected",
                        "ExpressionAttributeNames": {"#version": "version"},
                        "ExpressionAttributeValues": {":expected": {"N": str(lead.version)}},
                    }
                }
            )
        else:
            items.append(
                {
                    "ConditionCheck": {
                        "TableName": self.table_name,
                        "Key": marshal(lead_key(lead_id)),
                        "ConditionExpression": "attribute_not_exists(PK)",
                    }
                }
            )
        items.extend(self._move_claim(lead_id, current, desired, moment))
        return self._transact_or_false(items)

    # ------------------------------------------------------------------ the unassigned queue
    def unassigned_page(
        self, limit: int, before: str | None, team: str | None, include_nurture: bool
    ) -> tuple[list[Lead], str | None]:
        """Unassigned leads, newest first, merged over the index shards; the cursor is the last CREATEDSK."""
        collected: list[tuple[str, Lead]] = []
        for shard in range(self.shards):
            collected.extend(self._unassigned_shard(shard, limit, before, team, include_nurture))
        collected.sort(key=lambda pair: pair[0], reverse=True)
        page = collected[:limit]
        cursor = page[-1][0] if len(collected) > limit else None
        return [lead for _, lead in page], cursor

    def _unassigned_shard(
        self, shard: int, limit: int, before: str | None, team: str | None, include_nurture: bool
    ) -> list[tuple[str, Lead]]:
        # UnassignedByCreated projects the attributes filtered on here (template.yaml); the leads themselves
        # are then read by key, and one that changed meanwhile is checked again.
        condition = "UNASSIGNEDPK = :pk"
        values: dict[str, Any] = {":pk": {"S": unassigned_owner_pk(shard)}}
        if before is not None:
            condition += " AND CREATEDSK < :before"
            values[":before"] = {"S": before}
        filters = ["entity = :lead", "lead_status IN (:new, :contacted, :qualified)"]
        values.update({":lead": {"S": "lead"}, **{k: v for k, v in _OPEN_VALUES.items() if k != ":false"}})
        if team is not None:
            filters.append("team = :team")
            values[":team"] = {"S": team}
        if not include_nurture:
            filters.append("(attribute_not_exists(nurture) OR nurture = :false)")
            values[":false"] = {"BOOL": False}
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": UNASSIGNED_BY_CREATED.name,
            "KeyConditionExpression": condition,
            "FilterExpression": " AND ".join(filters),
            "ExpressionAttributeValues": values,
            "ScanIndexForward": False,
            "Limit": limit + 1,
        }
        entries: list[tuple[str, str]] = []  # (CREATEDSK, PK)
        try:
            while len(entries) <= limit:
                response = self.client.query(**request)
                for raw in response.get("Items", []):
                    entry = unmarshal(raw)
                    entries.append((str(entry["CREATEDSK"]), str(entry["PK"])))
                if "LastEvaluatedKey" not in response:
                    break
                request["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        except ClientError as exc:
            raise translate(exc) from exc
        stored = {
            str(item["PK"]): LeadItem.model_validate(item).to_lead()
            for item in self._get_many([{"PK": pk, "SK": "LEAD"} for _, pk in entries])
        }
        found: list[tuple[str, Lead]] = []
        for sort_key, pk in entries:
            lead = stored.get(pk)
            if lead is not None and _still_unassigned(lead, team, include_nurture):
                found.append((sort_key, lead))
        return found

    # ------------------------------------------------------------------ helpers
    def _move_claim(self, lead_id: str, current: str | None, desired: str | None, moment: str) -> list[Any]:
        if current == desired:
            return []
        items: list[Any] = []
        if current is not None and desired is not None:
            items.append(
                {
                    "Update": {
                        "TableName": self.table_name,
                        "Key": marshal(claim_key(lead_id)),
                        "UpdateExpression": "SET #user = :desired, since = :now",
                        "ConditionExpression": "#user = :current",
                        "ExpressionAttributeNames": {"#user": "user"},
                        "ExpressionAttributeValues": {
                            ":desired": {"S": desired},
                            ":current": {"S": current},
                            ":now": {"S": moment},
                        },
                    }
                }
            )
        elif current is not None:
            items.append(
                {
                    "Delete": {
                        "TableName": self.table_name,
                        "Key": marshal(claim_key(lead_id)),
                        "ConditionExpression": "#user = :current",
                        "ExpressionAttributeNames": {"#user": "user"},
                        "ExpressionAttributeValues": {":current": {"S": current}},
                    }
                }
            )
        else:
            assert desired is not None
            items.append(
                {
                    "Put": {
                        "TableName": self.table_name,
                        "Item": marshal(
                            {
                                **claim_key(lead_id),
                                "entity": "load_claim",
                                "lead_id": lead_id,
                                "user": desired,
                                "since": moment,
                            }
                        ),
                        "ConditionExpression": "attribute_not_exists(PK)",
                    }
                }
            )
        if current is not None:
            items.append(self._add_load(current, -1))
        if desired is not None:
            items.append(self._add_load(desired, 1))
        return items

    def _add_load(self, sub: str, delta: int) -> dict[str, Any]:
        return {
            "Update": {
                "TableName": self.table_name,
                "Key": marshal(load_key(sub)),
                "UpdateExpression": "SET entity = :entity, #user = :user ADD open_leads :delta",
                "ExpressionAttributeNames": {"#user": "user"},
                "ExpressionAttributeValues": {
                    ":entity": {"S": "rep_load"},
                    ":user": {"S": sub},
                    ":delta": {"N": str(delta)},
                },
            }
        }

    def _assigned_marker(self, lead_id: str, team: str | None, trigger: str, moment: str) -> dict[str, Any]:
        return {
            "TableName": self.table_name,
            "Item": marshal(
                {
                    **routing_key(lead_id),
                    "entity": "routing",
                    "lead_id": lead_id,
                    "state": RoutingState.ASSIGNED.value,
                    "trigger": trigger,
                    "team": team,
                    "updated_at": moment,
                }
            ),
        }

    def _client_put(self, put: dict[str, Any]) -> None:
        try:
            self.client.put_item(**put)
        except ClientError as exc:
            raise translate(exc) from exc

    def _put_activity(self, activity: Activity) -> dict[str, Any]:
        return {
            "Put": {
                "TableName": self.table_name,
                "Item": marshal(ActivityItem.from_activity(activity).model_dump()),
            }
        }

    def _transact_or_false(self, items: list[Any]) -> bool:
        """Run a transaction; False when one of its conditions failed, RetryableError on conflicts."""
        try:
            self.client.transact_write_items(TransactItems=items)
        except ClientError as exc:
            if "ConditionalCheckFailed" in cancellation_codes(exc):
                return False
            if error_code(exc) == "TransactionCanceledException":
                raise RetryableError("Another writer touched the same items; try again") from exc
            raise translate(exc) from exc
        return True


def _still_unassigned(lead: Lead, team: str | None, include_nurture: bool) -> bool:
    """What the unassigned queue's index filter asked, asked again of the lead as read by its key."""
    return (
        lead.assigned_to is None
        and lead.lead_status in (LeadStatus.NEW, LeadStatus.CONTACTED, LeadStatus.QUALIFIED)
        and (team is None or lead.team == team)
        and (include_nurture or not lead.nurture)
    )


def _rule_condition_failed(exc: ClientError) -> bool:
    """The rule's own condition failed: alone, or as the first item of its transaction."""
    if error_code(exc) == "ConditionalCheckFailedException":
        return True
    return error_code(exc) == "TransactionCanceledException" and cancellation_codes(exc)[:1] == [
        "ConditionalCheckFailed"
    ]


def _rule_from(item: dict[str, Any]) -> AssignmentRule:
    return AssignmentRule.model_validate(
        {key: value for key, value in item.items() if key not in ("PK", "SK", "entity")}
    )
