"""Data access for lead lists and timelines: Queries on the list indexes, merged, and the page's leads.

A plan's partitions (the caller's scopes x stages x write shards) are read in parallel, each with
`Limit = page size + 1` (no partition can contribute more to one page), and merged by the index's sort
key, which ends in the lead id and is therefore unique: equal keys are the same lead, kept once. The next
page restarts every partition strictly after the last key returned, so each lead appears exactly once
across pages. KEYS_ONLY indexes answer with keys; the page's leads are read with one BatchGetItem.
"""

import heapq
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from typing import Any

from botocore.exceptions import ClientError

from crm.leads.index import list_index_attributes
from crm.leads.model import Activity, Lead
from crm.leads.repository import ActivityItem, LeadItem, lead_key
from crm.platform.dynamo import TableRepository, key_condition, marshal, translate, unmarshal
from crm.platform.errors import RetryableError
from crm.queries.lists import ListPlan

MAX_PARALLEL_QUERIES = 16
BATCH_GET_LIMIT = 100
BATCH_GET_ATTEMPTS = 5
ACTIVITY_PREFIX = "ACTIVITY#"
ACTIVITY_END = "ACTIVITY$"  # '$' sorts right after '#': the end of the activity keys
# The keys leads had in GSI1-3 (projection ALL) before the status, source and unassigned indexes.
LEGACY_LEAD_KEYS = ("GSI1PK", "GSI1SK", "GSI2PK", "GSI2SK", "GSI3PK", "GSI3SK")
# The lead attributes the list-index keys are derived from (crm.leads.index.list_index_attributes).
_INDEX_SOURCE_FIELDS = (
    "version",
    "created_at",
    "lead_status",
    "qualified",
    "converted",
    "assigned_to",
    "team",
    "score",
    "grade",
)


@cache
def _executor() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=MAX_PARALLEL_QUERIES, thread_name_prefix="list-query")


@dataclass(frozen=True)
class IndexEntry:
    sort_key: str
    lead_id: str
    item: dict[str, Any] | None  # the whole lead when the index projects every attribute


def resume_bounds(
    lower: str | None, upper: str | None, descending: bool, after: str | None
) -> tuple[str | None, str | None] | None:
    """The sort-key bounds of the next page (`after` excluded by the caller); None: nothing is left."""
    if after is not None:
        if descending:
            upper = after if upper is None else min(upper, after)
        else:
            lower = after if lower is None else max(lower, after)
    if lower is not None and upper is not None and lower > upper:
        return None
    return lower, upper


def merge_sorted(
    streams: Iterable[list[IndexEntry]], descending: bool, after: str | None, count: int
) -> list[IndexEntry]:
    """Merge ordered partition results into one page: strictly after `after`, each key once."""
    merged: Iterator[IndexEntry] = heapq.merge(*streams, key=lambda e: e.sort_key, reverse=descending)
    page: list[IndexEntry] = []
    for entry in merged:
        if entry.sort_key == after or (page and page[-1].sort_key == entry.sort_key):
            continue
        page.append(entry)
        if len(page) == count:
            break
    return page


class LeadListRepository(TableRepository):
    # ------------------------------------------------------------------ lists
    def read_page(self, plan: ListPlan, limit: int, after: str | None) -> list[IndexEntry]:
        """Up to `limit + 1` index entries of the plan, in order, strictly after `after`."""
        bounds = resume_bounds(plan.lower, plan.upper, plan.descending, after)
        if bounds is None or not plan.partitions:
            return []
        lower, upper = bounds

        # The bounds include `after` itself (skipped when merging): one more item per partition then.
        per_partition = limit + 1 if after is None else limit + 2

        def read(pk: str) -> list[IndexEntry]:
            return self._query_partition(plan, pk, lower, upper, per_partition)

        if len(plan.partitions) == 1:
            streams = [read(plan.partitions[0])]
        else:
            streams = list(_executor().map(read, plan.partitions))
        return merge_sorted(streams, plan.descending, after, limit + 1)

    def _query_partition(
        self, plan: ListPlan, pk: str, lower: str | None, upper: str | None, limit: int
    ) -> list[IndexEntry]:
        index = plan.index
        expression, names, values = key_condition(index.pk, index.sk, pk, lower, upper)
        try:
            response = self.client.query(
                TableName=self.table_name,
                IndexName=index.name,
                KeyConditionExpression=expression,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ScanIndexForward=not plan.descending,
                Limit=limit,
            )
        except ClientError as exc:
            raise translate(exc) from exc
        entries = []
        for raw in response.get("Items", []):
            item = unmarshal(raw)
            entries.append(
                IndexEntry(
                    sort_key=str(item[index.sk]),
                    lead_id=str(item["PK"]).removeprefix("LEAD#"),
                    item=None if index.keys_only else item,
                )
            )
        return entries

    def leads(self, entries: list[IndexEntry]) -> list[Lead]:
        """The leads of these entries, in the entries' order (read in one BatchGetItem when needed)."""
        missing = [entry.lead_id for entry in entries if entry.item is None]
        fetched = self.leads_by_id(missing) if missing else {}
        leads: list[Lead] = []
        for entry in entries:
            if entry.item is not None:
                leads.append(LeadItem.model_validate(entry.item).to_lead())
            elif entry.lead_id in fetched:  # a lead deleted since the index was read is simply gone
                leads.append(fetched[entry.lead_id])
        return leads

    def leads_by_id(self, lead_ids: list[str]) -> dict[str, Lead]:
        found: dict[str, Lead] = {}
        unique = list(dict.fromkeys(lead_ids))
        for start in range(0, len(unique), BATCH_GET_LIMIT):
            keys: list[Any] = [
                marshal(lead_key(lead_id)) for lead_id in unique[start : start + BATCH_GET_LIMIT]
            ]
            request: dict[str, Any] = {self.table_name: {"Keys": keys}}
            for attempt in range(BATCH_GET_ATTEMPTS):
                try:
                    response = self.client.batch_get_item(RequestItems=request)
                except ClientError as exc:
                    raise translate(exc) from exc
                for raw in response.get("Responses", {}).get(self.table_name, []):
                    lead = LeadItem.model_validate(unmarshal(raw)).to_lead()
                    found[lead.id] = lead
                request = dict(response.get("UnprocessedKeys") or {})
                if not request:
                    break
                time.sleep(0.02 * 2**attempt)
            else:
                raise RetryableError("The database is busy; try again")
        return found

    # ------------------------------------------------------------------ timeline
    def activities(self, lead_id: str, limit: int, after: str | None) -> list[tuple[str, Activity]]:
        """Up to `limit + 1` activities of a lead, newest first, strictly before the key `after`."""
        upper = after if after is not None else ACTIVITY_END
        expression, names, values = key_condition("PK", "SK", f"LEAD#{lead_id}", ACTIVITY_PREFIX, upper)
        try:
            response = self.client.query(
                TableName=self.table_name,
                KeyConditionExpression=expression,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ScanIndexForward=False,
                Limit=limit + 2,  # the cursor's own item may come first
            )
        except ClientError as exc:
            raise translate(exc) from exc
        page: list[tuple[str, Activity]] = []
        for raw in response.get("Items", []):
            item = unmarshal(raw)
            if item["SK"] == after:
                continue
            page.append((str(item["SK"]), ActivityItem.model_validate(item).to_activity()))
        return page[: limit + 1]

    # ------------------------------------------------------------------ index upkeep
    def drop_legacy_keys(self, image: dict[str, Any]) -> bool:
        """Take a lead stored before it left GSI1-3 out of them (REMOVE its GSI1PK ... GSI3SK), only if it is
        still at the version read; returns whether it wrote (crm.tools.list_backfill)."""
        present = [name for name in LEGACY_LEAD_KEYS if name in image]
        if not present or image.get("version") is None:
            return False
        names = {f"#k{index}": name for index, name in enumerate(present)}
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=marshal({"PK": image["PK"], "SK": image["SK"]}),
                UpdateExpression="REMOVE " + ", ".join(names),
                ConditionExpression="#version = :version",
                ExpressionAttributeNames={**names, "#version": "version"},
                ExpressionAttributeValues={":version": marshal({"v": image["version"]})["v"]},
            )
        except ClientError as exc:
            if str(exc.response.get("Error", {}).get("Code", "")) == "ConditionalCheckFailedException":
                return False  # changed meanwhile: run the tool again
            raise translate(exc) from exc
        return True

    def repair_index(self, image: dict[str, Any], lead: Lead, shards: int) -> bool:
        """Rewrite the list-index keys of a stored lead that differ from those its state calls for.

        Conditional on the lead still being exactly in the state of `image` (its version, every field a key
        is derived from, and the stale keys themselves), so a repair never overwrites a newer write nor
        rewrites keys a new lead's creator wrote after its insert; returns whether it wrote.
        """
        wanted = list_index_attributes(lead, shards)
        stale = {name: value for name, value in wanted.items() if image.get(name) != value}
        if not stale:
            return False
        names: dict[str, str] = {}
        values: dict[str, Any] = {}
        sets, removes, conditions = [], [], []
        for index, (name, value) in enumerate(stale.items()):
            names[f"#k{index}"] = name
            if value is None:
                removes.append(f"#k{index}")
            else:
                values[f":k{index}"] = {"S": value}
                sets.append(f"#k{index} = :k{index}")
            # Still as in the image: a new lead's keys written by its creator meanwhile are not rewritten.
            if image.get(name) is None:
                conditions.append(f"attribute_not_exists(#k{index})")
            else:
                values[f":o{index}"] = {"S": image[name]}
                conditions.append(f"#k{index} = :o{index}")
        for index, name in enumerate(_INDEX_SOURCE_FIELDS):
            names[f"#s{index}"] = name
            if image.get(name) is None:
                conditions.append(f"attribute_not_exists(#s{index})")
            else:
                values[f":s{index}"] = marshal({"v": image[name]})["v"]
                conditions.append(f"#s{index} = :s{index}")
        expression = (f"SET {', '.join(sets)} " if sets else "") + (
            f"REMOVE {', '.join(removes)}" if removes else ""
        )
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=marshal(lead_key(lead.id)),
                UpdateExpression=expression.strip(),
                ConditionExpression=" AND ".join(["attribute_exists(PK)", *conditions]),
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except ClientError as exc:
            if str(exc.response.get("Error", {}).get("Code", "")) == "ConditionalCheckFailedException":
                return False  # the lead moved on: the newer write's own record is repaired in turn
            raise translate(exc) from exc
        return True
