"""Data access for the rule preview: the open leads, read in bulk and never written.

- Which leads are open: a Query of each open-status shard of StatusByCreated (`STATUS#<status>#<n>`), all in
  parallel, projecting only the id.
- Each lead with its activities (when some rule reads activities): one Query of its partition from the
  first activity to the lead item (`SK BETWEEN ACTIVITY# AND LEAD`), in parallel; else the lead items
  alone by BatchGetItem, 100 a call. Reads are eventually consistent: a preview is an estimate of now.
"""

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

from botocore.exceptions import ClientError

from crm.leads.index import STATUS_BY_CREATED
from crm.leads.model import Activity, Lead
from crm.leads.repository import ActivityItem, LeadItem, lead_key
from crm.platform.dynamo import TableRepository, marshal, translate, unmarshal
from crm.scoring.repository import attribute_value
from crm.scoring.rescoring import status_partitions

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

# Concurrent DynamoDB calls: below the client's connection pool (crm.platform.aws, 25).
READERS = 16
BATCH_GET_LIMIT = 100
Item = TypeVar("Item")
Result = TypeVar("Result")


class PreviewRepository(TableRepository):
    def __init__(
        self,
        table_name: str,
        shards: int = 4,
        *,
        readers: int = READERS,
        client: "DynamoDBClient | None" = None,
    ) -> None:
        super().__init__(table_name, shards, client=client)
        self.readers = readers

    def open_lead_ids(self) -> list[str]:
        """The id of every open lead (every status but converted)."""
        keys = [partition.key for partition in status_partitions(self.shards)]
        return [lead_id for ids in self._parallel(self._ids_in, keys) for lead_id in ids]

    def _ids_in(self, partition_key: str) -> list[str]:
        items = self._query_pages(
            {
                "IndexName": STATUS_BY_CREATED.name,
                "KeyConditionExpression": f"{STATUS_BY_CREATED.pk} = :pk",
                "ProjectionExpression": "#id",
                "ExpressionAttributeNames": {"#id": "id"},
                "ExpressionAttributeValues": {":pk": attribute_value(partition_key)},
            }
        )
        return [str(item["id"]) for item in items if item.get("id")]

    def leads_with_activities(self, lead_ids: list[str]) -> Iterator[tuple[Lead, list[Activity]]]:
        """Each lead with its activities (a lead gone meanwhile is left out), in no particular order."""
        for found in self._parallel(self._lead_with_activities, lead_ids):
            if found is not None:
                yield found

    def _lead_with_activities(self, lead_id: str) -> tuple[Lead, list[Activity]] | None:
        items = self._query_pages(
            {
                "KeyConditionExpression": "PK = :pk AND SK BETWEEN :first AND :lead",
                "ExpressionAttributeValues": {
                    ":pk": attribute_value(f"LEAD#{lead_id}"),
                    ":first": attribute_value("ACTIVITY#"),
                    ":lead": attribute_value("LEAD"),
                },
            }
        )
        lead: Lead | None = None
        activities: list[Activity] = []
        for item in items:
            entity = item.get("entity")
            if entity == "lead":
                lead = LeadItem.model_validate(item).to_lead()
            elif entity == "activity":
                activities.append(ActivityItem.model_validate(item).to_activity())
        return (lead, activities) if lead is not None else None

    def leads(self, lead_ids: list[str]) -> Iterator[tuple[Lead, list[Activity]]]:
        """The lead items alone (no rule reads activities), each with an empty activity list."""
        batches = [
            lead_ids[start : start + BATCH_GET_LIMIT] for start in range(0, len(lead_ids), BATCH_GET_LIMIT)
        ]
        for leads in self._parallel(self._batch_get, batches):
            for lead in leads:
                yield lead, []

    def _batch_get(self, lead_ids: list[str]) -> list[Lead]:
        request: dict[str, Any] = {
            self.table_name: {"Keys": [marshal(lead_key(lead_id)) for lead_id in lead_ids]}
        }
        leads: list[Lead] = []
        try:
            while request:
                response = self.client.batch_get_item(RequestItems=request)
                raw_items = response.get("Responses", {}).get(self.table_name, [])
                leads.extend(LeadItem.model_validate(unmarshal(raw)).to_lead() for raw in raw_items)
                request = dict(response.get("UnprocessedKeys") or {})
        except ClientError as exc:
            raise translate(exc) from exc
        return leads

    def _parallel(self, read: Callable[[Item], Result], inputs: list[Item]) -> Iterator[Result]:
        if len(inputs) <= 1:
            yield from map(read, inputs)
            return
        with ThreadPoolExecutor(max_workers=min(self.readers, len(inputs))) as pool:
            yield from pool.map(read, inputs)
