"""Data access for changes to a lead that carry more than the lead: one transaction each.

- An edit that moves the lead's email moves its uniqueness claim in the same transaction: the old claim is
  deleted (only if it is this lead's), the new one is created only if nobody holds it.
- A qualification writes the lead and the task it creates together.

The lead is written with the same optimistic lock as `LeadRepository.replace` (`version = :read`).
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from crm.leads.model import Activity, Lead
from crm.leads.repository import (
    ActivityItem,
    EmailClaimItem,
    LeadRepository,
    email_key,
)
from crm.leads.task_repository import TaskRepository
from crm.leads.tasks import Task
from crm.platform import clock
from crm.platform.dynamo import TableRepository, error_code, marshal, translate, unmarshal
from crm.platform.errors import EmailTaken, RetryableError, VersionConflict

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


@dataclass(frozen=True)
class EmailMove:
    old: str
    new: str


class LeadChangeRepository(TableRepository):
    def __init__(self, table_name: str, shards: int = 4, client: "DynamoDBClient | None" = None) -> None:
        super().__init__(table_name, shards, client=client)
        self._tasks = TaskRepository(table_name, shards, client=client)
        self._leads = LeadRepository(table_name, shards, client=client)

    def save(
        self,
        lead: Lead,
        expected_version: int,
        activities: Iterable[Activity],
        *,
        email_move: EmailMove | None = None,
        tasks: Sequence[Task] = (),
    ) -> Lead:
        """Store a changed lead (version + 1) with its activities, email claim move and new tasks, or
        nothing at all.

        Raises VersionConflict (with the current version) when the lead changed since it was read and
        EmailTaken when another lead holds the new email.
        """
        stored = lead.model_copy(update={"version": expected_version + 1})
        items: list[Any] = [self._leads.versioned_put(stored, expected_version)]
        new_claim_index: int | None = None
        if email_move is not None:
            claim = EmailClaimItem(
                **email_key(email_move.new), lead_id=lead.id, created_at=clock.isoformat(lead.updated_at)
            )
            items.append(
                {
                    "Delete": {
                        "TableName": self.table_name,
                        "Key": marshal(email_key(email_move.old)),
                        # Never remove a claim another lead holds.
                        "ConditionExpression": "attribute_not_exists(PK) OR lead_id = :me",
                        "ExpressionAttributeValues": {":me": {"S": lead.id}},
                    }
                }
            )
            new_claim_index = len(items)
            items.append(
                {
                    "Put": {
                        "TableName": self.table_name,
                        "Item": marshal(claim.model_dump()),
                        "ConditionExpression": "attribute_not_exists(PK)",
                    }
                }
            )
        items += [self._tasks.put_new(task) for task in tasks]
        items += [
            {
                "Put": {
                    "TableName": self.table_name,
                    "Item": marshal(ActivityItem.from_activity(a).model_dump()),
                }
            }
            for a in activities
        ]
        try:
            self.client.transact_write_items(TransactItems=items)
        except ClientError as exc:
            if error_code(exc) != "TransactionCanceledException":
                raise translate(exc) from exc
            reasons: list[Any] = list(exc.response.get("CancellationReasons", []))
            codes = [reason.get("Code") for reason in reasons]
            if codes and codes[0] == "ConditionalCheckFailed":
                current = unmarshal(reasons[0].get("Item") or {}).get("version")
                raise VersionConflict(
                    "The lead was changed by someone else",
                    current_version=int(current) if current is not None else None,
                ) from exc
            if new_claim_index is not None and codes[new_claim_index : new_claim_index + 1] == [
                "ConditionalCheckFailed"
            ]:
                raise EmailTaken("Another lead already uses this email (`email`)") from exc
            raise RetryableError("The lead could not be written; try again") from exc
        return stored
