"""Data access for tasks: the only module that reads and writes task items.

Key design (docs/data-model.md):

    task            PK=TASK#<id>                      SK=TASK           (GetItem by id, no lead id needed)
    GSI1            GSI1PK=TASKS#<owner>              GSI1SK=<due_at>#<id>    open tasks
                    GSI1PK=TASKS#<owner>#done / #cancelled                   closed tasks, by how
    GSI2 (sparse)   GSI2PK=TASKDUE#<yyyy-mm-dd>#<shard> GSI2SK=<due_at>#<id>  open tasks only
    GSI3            GSI3PK=LEADTASKS#<lead id>        GSI3SK=<due_at>#<id>    every task of a lead

A task's GSI1 partition is its owner and state (open, done, cancelled), so "a rep's open tasks due before
X" is one Query on GSI1 (`GET /tasks?state=all` merges the three partitions by due time), and "every open
task due up to now" (the reminder scheduler's question) is one Query per due-day bucket and shard on GSI2,
whose keys are present only while a task is open and not yet reminded.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict

from crm.leads.model import Activity
from crm.leads.repository import ActivityItem, shard_of
from crm.leads.tasks import Task
from crm.platform import clock
from crm.platform.cursor import decode_position, encode_position
from crm.platform.dynamo import TableRepository, cancellation_codes, error_code, marshal, translate, unmarshal
from crm.platform.errors import BadQuery, NotFound, RetryableError, VersionConflict

OWNER_INDEX = "GSI1"
LEAD_INDEX = "GSI3"


def task_key(task_id: str) -> dict[str, str]:
    return {"PK": f"TASK#{task_id}", "SK": "TASK"}


TASK_STATES = ("open", "done", "cancelled")


def task_state(task: Task) -> str:
    if task.is_open:
        return "open"
    return "cancelled" if task.cancelled_at is not None else "done"


def owner_partition(owner: str, state: str = "open") -> str:
    """GSI1 partition of an owner's tasks in one state (owner ids hold no `#`, so these never collide)."""
    return f"TASKS#{owner}" if state == "open" else f"TASKS#{owner}#{state}"


def due_partition(due_at: datetime, shard: int) -> str:
    return f"TASKDUE#{clock.isoformat(due_at)[:10]}#{shard}"


class TaskItem(BaseModel):
    """A task as stored: its attributes plus the keys of the table and of its (sparse) indexes."""

    model_config = ConfigDict(extra="allow")

    PK: str
    SK: str
    entity: str = "task"
    GSI1PK: str | None = None
    GSI1SK: str | None = None
    GSI2PK: str | None = None
    GSI2SK: str | None = None
    GSI3PK: str
    GSI3SK: str

    @classmethod
    def from_task(cls, task: Task, shards: int) -> "TaskItem":
        attributes = task.model_dump(mode="json")
        due_sort = f"{attributes['due_at']}#{task.id}"
        open_keys = {"GSI1PK": owner_partition(task.owner, task_state(task)), "GSI1SK": due_sort}
        if task.awaits_reminder:
            open_keys |= {
                "GSI2PK": due_partition(task.due_at, shard_of(task.id, shards)),
                "GSI2SK": due_sort,
            }
        return cls(
            **task_key(task.id),
            **open_keys,
            GSI3PK=f"LEADTASKS#{task.lead_id}",
            GSI3SK=due_sort,
            **attributes,
        )

    def to_task(self) -> Task:
        return Task.model_validate(self.model_extra or {})


# The attributes a task change rewrites; anything else on the item is left as it is.
_MANAGED = (
    "title",
    "priority",
    "due_at",
    "owner",
    "done",
    "done_at",
    "cancelled_at",
    "cancel_reason",
    "reminded_at",
    "updated_at",
    "version",
)
_OPEN_INDEX_KEYS = ("GSI1PK", "GSI1SK", "GSI2PK", "GSI2SK")


@dataclass(frozen=True)
class TaskPage:
    tasks: list[Task]
    cursor: str | None


def _is_task_sort_key(position: str) -> bool:
    due, _, task_id = position.rpartition("#")
    try:
        return bool(task_id) and clock.isoformat(clock.parse(due)) == due
    except ValueError:
        return False


def _after(cursor: str, before: str | None) -> str:
    """The sort key a cursor resumes after; it must lie inside the range the query reads (a later
    due_before's cursor is the client's mistake: 400)."""
    sort_key = decode_position(cursor, _is_task_sort_key)
    if before is not None and sort_key >= before:
        raise BadQuery.single(
            "cursor", "belongs to another query (a later due_before): start again without it"
        )
    return sort_key


class TaskRepository(TableRepository):
    # ------------------------------------------------------------------ transaction items
    def put_new(self, task: Task) -> dict[str, Any]:
        """A TransactWriteItems entry creating `task` (used alone or beside a lead change)."""
        return {
            "Put": {
                "TableName": self.table_name,
                "Item": marshal(TaskItem.from_task(task, self.shards).model_dump(exclude_none=True)),
                "ConditionExpression": "attribute_not_exists(PK)",
            }
        }

    def update_changed(self, task: Task, expected_version: int) -> dict[str, Any]:
        """An Update of the managed attributes and open-task index keys, if the version is still the one
        read; other attributes stay as they are."""
        item = TaskItem.from_task(task, self.shards).model_dump()
        names: dict[str, str] = {}
        values: dict[str, Any] = {":expected": expected_version}
        sets: list[str] = []
        removes: list[str] = []
        for index, name in enumerate((*_MANAGED, *_OPEN_INDEX_KEYS)):
            names[f"#a{index}"] = name
            if item.get(name) is None:
                removes.append(f"#a{index}")
            else:
                sets.append(f"#a{index} = :v{index}")
                values[f":v{index}"] = item[name]
        expression = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
        names["#version"] = "version"
        return {
            "Update": {
                "TableName": self.table_name,
                "Key": marshal(task_key(task.id)),
                "UpdateExpression": expression,
                "ConditionExpression": "#version = :expected",
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": marshal(values),
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        }

    # ------------------------------------------------------------------ writes
    def create(self, task: Task, activities: Iterable[Activity]) -> None:
        items = [self.put_new(task), *(_put_activity(self.table_name, a) for a in activities)]
        try:
            self.client.transact_write_items(TransactItems=items)  # type: ignore[arg-type]
        except ClientError as exc:
            if error_code(exc) == "TransactionCanceledException":
                raise RetryableError("The task could not be written; try again") from exc
            raise translate(exc) from exc

    def create_if_absent(self, task: Task, activities: Iterable[Activity]) -> bool:
        """Create a task whose id is derived from what caused it; False if it exists already (a retried
        cause creates nothing twice, and writes none of its activities)."""
        items = [self.put_new(task), *(_put_activity(self.table_name, a) for a in activities)]
        try:
            self.client.transact_write_items(TransactItems=items)  # type: ignore[arg-type]
        except ClientError as exc:
            if error_code(exc) == "TransactionCanceledException":
                if cancellation_codes(exc)[:1] == ["ConditionalCheckFailed"]:
                    return False
                raise RetryableError("The task could not be written; try again") from exc
            raise translate(exc) from exc
        return True

    def mark_reminded(self, task: Task, now: datetime) -> bool:
        """Record that the owner was reminded of the task as it is due now, which takes it off the
        reminder index. False if the task changed since it was read (read it again and decide again)."""
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=marshal(task_key(task.id)),
                UpdateExpression="SET reminded_at = :now, #version = :next REMOVE GSI2PK, GSI2SK",
                ConditionExpression="#version = :read",
                ExpressionAttributeNames={"#version": "version"},
                ExpressionAttributeValues=marshal(
                    {":now": clock.isoformat(now), ":read": task.version, ":next": task.version + 1}
                ),
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise translate(exc) from exc
        return True

    def save(self, task: Task, expected_version: int, activities: Iterable[Activity]) -> Task:
        """Store a changed task if nobody changed it since `expected_version`; version goes up by one."""
        stored = task.model_copy(update={"version": expected_version + 1})
        items = [
            self.update_changed(stored, expected_version),
            *(_put_activity(self.table_name, a) for a in activities),
        ]
        try:
            self.client.transact_write_items(TransactItems=items)  # type: ignore[arg-type]
        except ClientError as exc:
            if error_code(exc) == "TransactionCanceledException":
                reasons: list[Any] = list(exc.response.get("CancellationReasons", []))
                if reasons and reasons[0].get("Code") == "ConditionalCheckFailed":
                    old = unmarshal(reasons[0].get("Item") or {})
                    if not old:
                        raise NotFound(f"No task with id {task.id}") from exc
                    raise VersionConflict(
                        "The task was changed by someone else", current_version=int(old["version"])
                    ) from exc
                raise RetryableError("The task could not be written; try again") from exc
            raise translate(exc) from exc
        return stored

    def index_by_state(self, task: Task) -> bool:
        """Give a task its owner-index key for its state if it has none (a task closed before closed tasks
        were indexed), only while it is still the version read. False if there was nothing to do."""
        item = TaskItem.from_task(task, self.shards)
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=marshal(task_key(task.id)),
                UpdateExpression="SET GSI1PK = :pk, GSI1SK = :sk",
                ConditionExpression="#version = :read AND attribute_not_exists(GSI1PK)",
                ExpressionAttributeNames={"#version": "version"},
                ExpressionAttributeValues=marshal(
                    {":pk": item.GSI1PK, ":sk": item.GSI1SK, ":read": task.version}
                ),
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise translate(exc) from exc
        return True

    # ------------------------------------------------------------------ reads
    def get(self, task_id: str) -> Task | None:
        item = self._get_item(task_key(task_id))
        return TaskItem.model_validate(item).to_task() if item else None

    def open_tasks(
        self, owner: str, due_before: datetime | None, limit: int, cursor: str | None = None
    ) -> TaskPage:
        """An owner's open tasks, soonest due first, optionally only those due before a moment."""
        return self.owner_tasks(owner, ("open",), due_before, limit, cursor)

    def owner_tasks(
        self,
        owner: str,
        states: Iterable[str],
        due_before: datetime | None,
        limit: int,
        cursor: str | None = None,
    ) -> TaskPage:
        """An owner's tasks in the given states, soonest due first: one Query per state's partition,
        merged by the sort key (`<due_at>#<id>`, unique), resuming after the cursor's key."""
        before = clock.isoformat(due_before) if due_before is not None else None
        after = _after(cursor, before) if cursor else None
        found: list[dict[str, Any]] = []
        for state in states:
            found += self._owner_partition(owner_partition(owner, state), after, before, limit)
        found.sort(key=lambda item: str(item["GSI1SK"]))
        page = found[:limit]
        tasks = [TaskItem.model_validate(item).to_task() for item in page]
        more = len(found) > limit
        return TaskPage(tasks=tasks, cursor=encode_position(str(page[-1]["GSI1SK"])) if more else None)

    def _owner_partition(
        self, partition: str, after: str | None, before: str | None, limit: int
    ) -> list[dict[str, Any]]:
        """Up to limit + 1 items of one GSI1 partition strictly between `after` and `before`."""
        values: dict[str, Any] = {":pk": partition}
        condition = "GSI1PK = :pk"
        if after is not None and before is not None:
            condition += " AND GSI1SK BETWEEN :after AND :before"  # inclusive: `after` itself is dropped
            values |= {":after": after, ":before": before}
        elif after is not None:
            condition += " AND GSI1SK > :after"
            values[":after"] = after
        elif before is not None:
            condition += " AND GSI1SK < :before"
            values[":before"] = before
        try:
            response = self.client.query(
                TableName=self.table_name,
                IndexName=OWNER_INDEX,
                KeyConditionExpression=condition,
                ExpressionAttributeValues=marshal(values),
                Limit=limit + 2,
            )
        except ClientError as exc:
            raise translate(exc) from exc
        items = [unmarshal(raw) for raw in response.get("Items", [])]
        return [
            item
            for item in items
            if (after is None or item["GSI1SK"] > after) and (before is None or item["GSI1SK"] < before)
        ]

    def lead_tasks(self, lead_id: str) -> list[Task]:
        """Every task of a lead, open or not, soonest due first."""
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": LEAD_INDEX,
            "KeyConditionExpression": "GSI3PK = :pk",
            "ExpressionAttributeValues": marshal({":pk": f"LEADTASKS#{lead_id}"}),
        }
        tasks: list[Task] = []
        try:
            while True:
                response = self.client.query(**kwargs)
                tasks += [
                    TaskItem.model_validate(unmarshal(raw)).to_task() for raw in response.get("Items", [])
                ]
                if "LastEvaluatedKey" not in response:
                    return tasks
                kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        except ClientError as exc:
            raise translate(exc) from exc

    def open_tasks_due(self, since: datetime, until: datetime, limit: int | None = None) -> list[Task]:
        """Open tasks not yet reminded, due in [since, until], soonest first: one Query per due-day bucket
        and shard (the reminder scheduler's read, crm.platform.scheduler)."""
        items = self.query_due("TASKDUE", since, until, limit)
        return [TaskItem.model_validate(item).to_task() for item in items]


def _put_activity(table_name: str, activity: Activity) -> dict[str, Any]:
    return {
        "Put": {"TableName": table_name, "Item": marshal(ActivityItem.from_activity(activity).model_dump())}
    }
