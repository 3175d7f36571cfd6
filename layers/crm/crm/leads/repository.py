"""Data access for the single table: the only module that talks to DynamoDB.

It returns domain models, never raw items, and turns DynamoDB's error codes into domain errors.
Key design (see docs/data-model.md):

    lead            PK=LEAD#<id>        SK=LEAD
    activity        PK=LEAD#<id>        SK=ACTIVITY#<created_at>#<activity id>
    email claim     PK=EMAIL#<email>    SK=EMAIL          (uniqueness of a lead's email)

A lead's index keys are all derived in `crm.leads.index.list_index_attributes`: the list indexes, and
UnassignedByCreated (`UNASSIGNEDPK=UNASSIGNED#<shard>` while nobody owns it), StatusByCreated
(`STATUSPK=STATUS#<status>#<shard>`) and SourceByCreated (`SOURCEPK=SOURCE#<source>#<shard>`), each sorted
by `CREATEDSK=<created_at>#<id>`. Leads are not in GSI1-3, whose projection is ALL: every update of a lead
would be rewritten there.
"""

import zlib
from collections.abc import Iterable
from typing import Any

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict

from crm.leads.index import list_index_attributes
from crm.leads.model import Activity, Lead
from crm.platform.dynamo import TableRepository, error_code, marshal, translate, unmarshal, versioned
from crm.platform.errors import DuplicateEmail, RetryableError, VersionConflict
from crm.platform.observability import logger


def shard_of(identifier: str, shards: int) -> int:
    return zlib.crc32(identifier.encode()) % shards


def lead_key(lead_id: str) -> dict[str, str]:
    return {"PK": f"LEAD#{lead_id}", "SK": "LEAD"}


def email_key(email: str) -> dict[str, str]:
    return {"PK": f"EMAIL#{email}", "SK": "EMAIL"}


class LeadItem(BaseModel):
    """A lead as stored: its attributes plus the keys of the table and of its indexes."""

    model_config = ConfigDict(extra="allow")

    PK: str
    SK: str
    entity: str = "lead"
    # Who wrote the item last: the scoring function's score writes say "scoring", and its stream filter
    # skips exactly those (no loops). Every other write of a lead must say "lead" (this Put does).
    written_by: str = "lead"

    @classmethod
    def from_lead(cls, lead: Lead, shards: int) -> "LeadItem":
        keys = list_index_attributes(lead, shards)  # every index key (crm.leads.index)
        return cls(
            **lead_key(lead.id),
            **{name: value for name, value in keys.items() if value is not None},  # sparse keys: absent
            **_lead_attributes(lead),
        )

    def to_lead(self) -> Lead:
        return Lead.model_validate(self.model_extra or {})


class EmailClaimItem(BaseModel):
    PK: str
    SK: str
    entity: str = "email_claim"
    lead_id: str
    created_at: str


class ActivityItem(BaseModel):
    model_config = ConfigDict(extra="allow")

    PK: str
    SK: str
    entity: str = "activity"

    @classmethod
    def from_activity(cls, activity: Activity) -> "ActivityItem":
        attributes = activity.model_dump(mode="json", exclude={"data"})
        return cls(
            PK=f"LEAD#{activity.lead_id}",
            SK=f"ACTIVITY#{attributes['created_at']}#{activity.id}",
            data=activity.data,  # python mode: Decimals stay numbers
            **attributes,
        )

    def to_activity(self) -> Activity:
        return Activity.model_validate(self.model_extra or {})


def _lead_attributes(lead: Lead) -> dict[str, Any]:
    # JSON mode for timestamps and enums, but numbers must stay Decimal/int for DynamoDB.
    attributes = lead.model_dump(mode="json", exclude={"annual_revenue", "custom_fields"})
    attributes["annual_revenue"] = lead.annual_revenue
    attributes["custom_fields"] = lead.custom_fields
    return attributes


class LeadRepository(TableRepository):
    # ------------------------------------------------------------------ writes
    def create(self, lead: Lead, activities: Iterable[Activity]) -> None:
        """Write a new lead, its email claim and its first activities in one transaction, then the lead's
        index keys with a plain update.

        Raises DuplicateEmail (with the owner's id) when the email already belongs to a lead.
        """
        lead_item = LeadItem.from_lead(lead, self.shards).model_dump()
        # Out of the transaction, where each of the ten index writes they cause would cost twice: written
        # right after it (lists show the lead at once), and by the stream's list-key repair should this
        # function stop in between (crm.queries.reactions.repair_list_index).
        index_keys = {
            name: lead_item.pop(name)
            for name, value in list_index_attributes(lead, self.shards).items()
            if value is not None  # sparse keys are absent from the item
        }
        claim = EmailClaimItem(**email_key(lead.email), lead_id=lead.id, created_at=lead_item["created_at"])
        transact_items: list[Any] = [
            {
                "Put": {
                    "TableName": self.table_name,
                    "Item": marshal(lead_item),
                    "ConditionExpression": "attribute_not_exists(PK)",
                }
            },
            {
                "Put": {
                    "TableName": self.table_name,
                    "Item": marshal(claim.model_dump()),
                    "ConditionExpression": "attribute_not_exists(PK)",
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }
            },
            *(self._put_activity(activity) for activity in activities),
        ]
        try:
            self.client.transact_write_items(TransactItems=transact_items)
        except ClientError as exc:
            if error_code(exc) == "TransactionCanceledException":
                reasons: list[Any] = list(exc.response.get("CancellationReasons", []))
                if len(reasons) > 1 and reasons[1].get("Code") == "ConditionalCheckFailed":
                    owner = unmarshal(reasons[1].get("Item") or {}).get("lead_id")
                    raise DuplicateEmail(owner) from exc
                raise RetryableError("The lead could not be written; try again") from exc
            raise translate(exc) from exc
        self._add_index_keys(lead, index_keys)

    def _add_index_keys(self, lead: Lead, index_keys: dict[str, str]) -> None:
        """The new lead's index keys, unless it was written again meanwhile (that write carries its own
        keys). A failure here leaves the lead to the stream's list-key repair, so the capture stands."""
        names = {f"#k{index}": name for index, name in enumerate(index_keys)}
        values = {f":k{index}": {"S": value} for index, value in enumerate(index_keys.values())}
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=marshal(lead_key(lead.id)),
                UpdateExpression="SET " + ", ".join(f"#k{index} = :k{index}" for index in range(len(names))),
                ConditionExpression="#version = :version AND attribute_not_exists(#k0)",
                ExpressionAttributeNames={**names, "#version": "version"},
                ExpressionAttributeValues={**values, ":version": {"N": str(lead.version)}},
            )
        except ClientError as exc:
            logger.info(
                "A new lead's index keys are left to the stream's repair",
                extra={"lead_id": lead.id, "reason": error_code(exc)},
            )

    def replace(self, lead: Lead, expected_version: int, activities: Iterable[Activity]) -> Lead:
        """Store a changed lead if nobody changed it since `expected_version`; version goes up by one."""
        stored = lead.model_copy(update={"version": expected_version + 1})
        transact_items: list[Any] = [
            self.versioned_put(stored, expected_version),
            *(self._put_activity(activity) for activity in activities),
        ]
        try:
            self.client.transact_write_items(TransactItems=transact_items)
        except ClientError as exc:
            if error_code(exc) == "TransactionCanceledException":
                reasons: list[Any] = list(exc.response.get("CancellationReasons", []))
                if reasons and reasons[0].get("Code") == "ConditionalCheckFailed":
                    current = unmarshal(reasons[0].get("Item") or {}).get("version")
                    raise VersionConflict(
                        "The lead was changed by someone else",
                        current_version=int(current) if current is not None else None,
                    ) from exc
                raise RetryableError("The lead could not be written; try again") from exc
            raise translate(exc) from exc
        return stored

    def add_activities(self, activities: list[Activity]) -> None:
        if not activities:
            return
        try:
            if len(activities) == 1:
                self.client.put_item(**self._put_activity(activities[0])["Put"])
            else:
                self.client.transact_write_items(TransactItems=[self._put_activity(a) for a in activities])  # type: ignore[misc]
        except ClientError as exc:
            raise translate(exc) from exc

    # ------------------------------------------------------------------ reads
    def get(self, lead_id: str) -> Lead | None:
        item = self._get_item(lead_key(lead_id))
        return LeadItem.model_validate(item).to_lead() if item else None

    def get_with_activities(self, lead_id: str) -> tuple[Lead, list[Activity]] | None:
        """The lead and its timeline, newest first, in one Query of its partition."""
        lead: Lead | None = None
        activities: list[Activity] = []
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "PK = :pk",
            "ExpressionAttributeValues": {":pk": {"S": f"LEAD#{lead_id}"}},
            "ScanIndexForward": False,
        }
        try:
            while True:
                response = self.client.query(**kwargs)
                for raw in response.get("Items", []):
                    item = unmarshal(raw)
                    if item.get("entity") == "lead":
                        lead = LeadItem.model_validate(item).to_lead()
                    elif item.get("entity") == "activity":
                        activities.append(ActivityItem.model_validate(item).to_activity())
                if "LastEvaluatedKey" not in response:
                    break
                kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        except ClientError as exc:
            raise translate(exc) from exc
        return (lead, activities) if lead else None

    def find_id_by_email(self, email: str) -> str | None:
        item = self._get_item(email_key(email))
        return str(item["lead_id"]) if item else None

    # ------------------------------------------------------------------ helpers
    def versioned_put(self, stored: Lead, expected_version: int) -> dict[str, Any]:
        """The transaction item that writes `stored` only if the lead is still at `expected_version`
        (the old item comes back on a conflict, to tell the caller the current version)."""
        put = versioned(
            {
                "TableName": self.table_name,
                "Item": marshal(LeadItem.from_lead(stored, self.shards).model_dump()),
            },
            expected_version,
        )
        return {"Put": {**put, "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}}

    def _put_activity(self, activity: Activity) -> dict[str, Any]:
        return {
            "Put": {
                "TableName": self.table_name,
                "Item": marshal(ActivityItem.from_activity(activity).model_dump()),
            }
        }


def lead_from_image(image: dict[str, Any]) -> Lead | None:
    return LeadItem.model_validate(image).to_lead() if image else None
