"""Tasks: edits, who may work them, and the sparse index keys that make open tasks findable by a Query."""

from datetime import UTC, datetime, timedelta

import pytest
from crm.api.models.lifecycle import TaskQuery, UpdateTaskRequest
from crm.leads.model import Lead
from crm.leads.task_repository import TaskItem, TaskRepository, _after
from crm.leads.tasks import (
    Task,
    TaskChanges,
    TaskPriority,
    listable_owner,
    new_task,
    plan_task_update,
    task_owner_for,
    workable_task,
)
from crm.platform.auth import Principal
from crm.platform.cursor import encode_position
from crm.platform.errors import BadQuery, Forbidden, InvalidInput, NotFound

NOW = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)
ADMIN = Principal("admin", None, frozenset({"admin"}))
MANAGER = Principal("manager", None, frozenset({"manager"}), frozenset({"sales"}))
REP = Principal("rep-1", None, frozenset({"rep"}), frozenset({"sales"}))
OTHER_REP = Principal("rep-2", None, frozenset({"rep"}), frozenset({"sales"}))
NOBODY = Principal("x", None, frozenset())


def task(owner: str = "rep-1", **changes: object) -> Task:
    made = new_task(
        "lead-1", "Call back", due_at=NOW + timedelta(days=1), owner=owner, created_by="u", now=NOW
    )
    return made.model_copy(update=changes)


def lead(assigned_to: str | None) -> Lead:
    return Lead(
        id="lead-1",
        first_name="A",
        last_name="B",
        email="a@b.co",
        lead_source="api",
        assigned_to=assigned_to,
        team="sales",
        created_at=NOW,
        updated_at=NOW,
    )


def test_completing_a_task_stamps_done_at_and_reopening_clears_it() -> None:
    done = plan_task_update(task(), TaskChanges({"done": True}), NOW)
    assert (done.task.done, done.task.done_at, done.changes) == (True, NOW, {"done": (False, True)})

    reopened = plan_task_update(done.task, TaskChanges({"done": False}), NOW + timedelta(hours=1))
    assert (reopened.task.done, reopened.task.done_at) == (False, None)


def test_task_edits_record_json_ready_old_and_new_values() -> None:
    later = NOW + timedelta(days=3)
    plan = plan_task_update(task(), TaskChanges({"due_at": later, "priority": TaskPriority.HIGH}), NOW)
    assert plan.changes == {
        "due_at": ("2026-11-26T09:30:00.000000Z", "2026-11-28T09:30:00.000000Z"),
        "priority": ("normal", "high"),
    }


def test_an_edit_that_changes_nothing_is_not_a_change() -> None:
    assert not plan_task_update(task(), TaskChanges({"title": "Call back"}), NOW).changed


def test_only_editable_fields_change() -> None:
    with pytest.raises(InvalidInput, match="owner"):
        plan_task_update(task(), TaskChanges({"owner": "rep-2"}), NOW)


@pytest.mark.parametrize(
    ("principal", "owner", "assigned_to", "outcome"),
    [
        (REP, "rep-1", None, "ok"),  # their own task
        (REP, "rep-2", "rep-1", "ok"),  # a task on their lead
        (OTHER_REP, "rep-1", "rep-1", NotFound),  # not theirs, lead not visible
        (OTHER_REP, "rep-1", None, Forbidden),  # lead visible in the team queue, read-only
        (MANAGER, "rep-1", "rep-1", "ok"),
        (ADMIN, "rep-1", "rep-1", "ok"),
        (NOBODY, "x", "rep-1", NotFound),
    ],
)
def test_who_may_work_a_task(
    principal: Principal, owner: str, assigned_to: str | None, outcome: object
) -> None:
    subject = task(owner)
    if outcome == "ok":
        assert workable_task(principal, subject, lead(assigned_to), subject.id) == subject
    else:
        with pytest.raises(outcome):  # type: ignore[call-overload]
            workable_task(principal, subject, lead(assigned_to), subject.id)


def test_a_new_tasks_owner_defaults_to_the_leads_rep_and_reps_may_only_name_themselves() -> None:
    assert task_owner_for(MANAGER, lead("rep-1"), None) == "rep-1"
    assert task_owner_for(MANAGER, lead(None), None) == "manager"
    assert task_owner_for(MANAGER, lead("rep-1"), "rep-2") == "rep-2"
    assert task_owner_for(REP, lead("rep-1"), "me") == "rep-1"
    with pytest.raises(Forbidden, match="owner"):
        task_owner_for(REP, lead("rep-1"), "rep-2")


def test_reps_list_only_their_own_tasks() -> None:
    assert listable_owner(REP, "me") == "rep-1"
    assert listable_owner(REP, "rep-1") == "rep-1"
    assert listable_owner(MANAGER, "rep-1") == "rep-1"
    with pytest.raises(Forbidden, match="owner=me"):
        listable_owner(REP, "rep-2")
    with pytest.raises(Forbidden):
        listable_owner(NOBODY, "me")


def test_the_task_query_reads_dates_and_times_in_utc() -> None:
    assert TaskQuery.model_validate({"due_before": "2026-12-01"}).due_before == datetime(
        2026, 12, 1, tzinfo=UTC
    )
    assert TaskQuery.model_validate({"due_before": "2026-12-01T10:00:00+02:00"}).due_before == datetime(
        2026, 12, 1, 8, tzinfo=UTC
    )
    with pytest.raises(ValueError, match="due_before"):
        TaskQuery.model_validate({"due_before": "next tuesday"})
    with pytest.raises(ValueError, match="limit"):
        TaskQuery.model_validate({"limit": "500"})


def test_a_task_edit_refuses_null_and_reads_naive_times_as_utc() -> None:
    with pytest.raises(ValueError, match="cannot be null"):
        UpdateTaskRequest.model_validate({"done": None})
    request = UpdateTaskRequest.model_validate({"due_at": "2026-12-01T10:00:00", "version": 2})
    assert request.to_changes().fields == {"due_at": datetime(2026, 12, 1, 10, tzinfo=UTC)}


# ---------------------------------------------------------------- stored items


def test_an_open_task_is_in_the_owner_and_due_day_indexes() -> None:
    item = TaskItem.from_task(task(), shards=4).model_dump()
    assert (item["PK"], item["SK"]) == (f"TASK#{item['id']}", "TASK")
    assert item["GSI1PK"] == "TASKS#rep-1"
    assert item["GSI1SK"] == f"2026-11-26T09:30:00.000000Z#{item['id']}"
    assert item["GSI2PK"].startswith("TASKDUE#2026-11-26#")
    assert item["GSI3PK"] == "LEADTASKS#lead-1"


def test_a_done_task_moves_to_the_owners_done_partition_and_leaves_the_due_index() -> None:
    item = TaskItem.from_task(task(done=True, done_at=NOW), shards=4).model_dump(exclude_none=True)
    assert not {"GSI2PK", "GSI2SK"} & item.keys()
    assert (item["GSI1PK"], item["GSI1SK"]) == (
        "TASKS#rep-1#done",
        f"2026-11-26T09:30:00.000000Z#{item['id']}",
    )
    assert item["GSI3PK"] == "LEADTASKS#lead-1"  # still listed under its lead


def test_a_cancelled_task_is_listed_under_the_owners_cancelled_partition() -> None:
    item = TaskItem.from_task(task(cancelled_at=NOW, cancel_reason="lead contacted"), shards=4).model_dump()
    assert item["GSI1PK"] == "TASKS#rep-1#cancelled"
    assert item["GSI2PK"] is None


def test_completing_removes_the_index_keys_in_the_same_update() -> None:
    repository = TaskRepository("table", shards=4, client=object())  # type: ignore[arg-type]
    update = repository.update_changed(task(done=True, done_at=NOW, version=2), expected_version=1)["Update"]
    removed = update["UpdateExpression"].split(" REMOVE ")[1].split(", ")
    names = update["ExpressionAttributeNames"]
    # The due-index keys go, and so do the attributes the task does not have (never cancelled or
    # reminded): nothing else is removed; the owner index key moves to the done partition.
    assert {names[placeholder] for placeholder in removed} == {
        "GSI2PK",
        "GSI2SK",
        "cancelled_at",
        "cancel_reason",
        "reminded_at",
    }
    assert update["ConditionExpression"] == "#version = :expected"


def test_a_cursor_is_a_task_sort_key_inside_the_range_read() -> None:
    sort_key = "2026-11-26T09:30:00.000000Z#t-1"
    cursor = encode_position(sort_key)
    assert _after(cursor, None) == sort_key
    assert _after(cursor, "2026-11-27T00:00:00.000000Z") == sort_key
    for garbage in ("not-a-cursor", "é" * 10, encode_position("no-due-time#t-1")):
        with pytest.raises(BadQuery, match="cursor"):
            _after(garbage, None)
    # Past the query's due_before: it belongs to another query, so it is the client's 400.
    with pytest.raises(BadQuery, match="cursor"):
        _after(cursor, "2026-11-26T00:00:00.000000Z")
