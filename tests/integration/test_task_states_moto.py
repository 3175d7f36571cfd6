"""An owner's tasks by state on the table built from template.yaml (moto): the partitions a task moves
between as it closes, `all` merged by due time across pages, and the upgrade step that indexes tasks closed
before closed tasks were listed."""

from datetime import UTC, datetime, timedelta
from typing import Any

from crm.leads.task_repository import TaskRepository, task_key
from crm.leads.tasks import Task, new_task
from crm.platform.dynamo import marshal
from crm.tools.task_backfill import backfill

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


def stored(repository: TaskRepository, owner: str, hours: int, **closed: Any) -> Task:
    made = new_task(
        "lead-1", f"Task {hours}", due_at=NOW + timedelta(hours=hours), owner=owner, created_by="u", now=NOW
    )
    repository.create(made, [])
    if closed:
        repository.save(made.model_copy(update=closed), made.version, [])
        return made.model_copy(update={**closed, "version": made.version + 1})
    return made


def every_page(repository: TaskRepository, owner: str, states: tuple[str, ...], limit: int) -> list[str]:
    ids: list[str] = []
    cursor = None
    while True:
        page = repository.owner_tasks(owner, states, None, limit, cursor)
        ids += [t.id for t in page.tasks]
        if page.cursor is None:
            return ids
        cursor = page.cursor


def test_tasks_are_listed_by_state_and_all_of_them_soonest_first(moto_stack: dict[str, Any]) -> None:
    repository = TaskRepository(moto_stack["table"], client=moto_stack["dynamodb"])
    tasks = [
        stored(repository, "rep-1", 5, done=True, done_at=NOW),
        stored(repository, "rep-1", 1),
        stored(repository, "rep-1", 3, cancelled_at=NOW, cancel_reason="lead contacted"),
        stored(repository, "rep-1", 2, done=True, done_at=NOW),
        stored(repository, "rep-1", 4),
        stored(repository, "rep-2", 0),
    ]
    by_hours = {int(t.title.split()[1]): t.id for t in tasks if t.owner == "rep-1"}

    assert every_page(repository, "rep-1", ("open",), 50) == [by_hours[1], by_hours[4]]
    assert every_page(repository, "rep-1", ("done",), 50) == [by_hours[2], by_hours[5]]
    assert every_page(repository, "rep-1", ("cancelled",), 50) == [by_hours[3]]
    everything = [by_hours[h] for h in range(1, 6)]
    for limit in (1, 2, 3, 50):
        assert every_page(repository, "rep-1", ("open", "done", "cancelled"), limit) == everything
    before = repository.owner_tasks("rep-1", ("open", "done", "cancelled"), NOW + timedelta(hours=3), 1)
    rest = repository.owner_tasks(
        "rep-1", ("open", "done", "cancelled"), NOW + timedelta(hours=3), 5, before.cursor
    )
    assert [t.id for t in before.tasks + rest.tasks] == [by_hours[1], by_hours[2]] and rest.cursor is None


def test_the_backfill_indexes_tasks_closed_before_the_upgrade_once(moto_stack: dict[str, Any]) -> None:
    repository = TaskRepository(moto_stack["table"], client=moto_stack["dynamodb"])
    done = stored(repository, "rep-1", 1, done=True, done_at=NOW)
    still_open = stored(repository, "rep-1", 2)
    # As an earlier release stored a closed task: no owner-index key at all.
    moto_stack["dynamodb"].update_item(
        TableName=moto_stack["table"],
        Key=marshal(task_key(done.id)),
        UpdateExpression="REMOVE GSI1PK, GSI1SK",
    )
    assert every_page(repository, "rep-1", ("done",), 50) == []

    first = backfill(moto_stack["table"], shards=4, client=moto_stack["dynamodb"])
    again = backfill(moto_stack["table"], shards=4, client=moto_stack["dynamodb"])

    assert (first.tasks, first.indexed, again.indexed) == (2, 1, 0)
    assert every_page(repository, "rep-1", ("done",), 50) == [done.id]
    assert every_page(repository, "rep-1", ("open",), 50) == [still_open.id]
