"""Give tasks closed before closed tasks were indexed their owner-index key (a one-off upgrade step).

    TABLE_NAME=<TableName output> PYTHONPATH=layers/crm python -m crm.tools.task_backfill

A maintenance Scan (never a request path) over task items; each done or cancelled task without a GSI1 key
gets `TASKS#<owner>#done` / `#cancelled`, with a conditional update (only if the task is still the version
read and still has no key), so it is safe to run while the system is live, and to run again. Until it has
run, such tasks are read by id and under their lead but not in `GET /tasks?state=done|cancelled|all`.
"""

import argparse
import os
import sys
from dataclasses import dataclass
from typing import Any

from crm.leads.task_repository import TaskItem, TaskRepository
from crm.platform import aws
from crm.tools.scanning import entity_items


@dataclass
class TaskBackfillReport:
    tasks: int = 0
    indexed: int = 0


def backfill(table: str, shards: int, client: Any = None) -> TaskBackfillReport:
    dynamodb = client or aws.dynamodb()
    repository = TaskRepository(table, shards=shards, client=dynamodb)
    report = TaskBackfillReport()
    for image in entity_items(dynamodb, table, "task", "TASK"):
        report.tasks += 1
        if "GSI1PK" not in image and repository.index_by_state(TaskItem.model_validate(image).to_task()):
            report.indexed += 1
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m crm.tools.task_backfill", description=(__doc__ or "").split("\n\n")[0]
    )
    parser.add_argument("--table", default=os.environ.get("TABLE_NAME"), help="default: $TABLE_NAME")
    parser.add_argument("--shards", type=int, default=int(os.environ.get("INDEX_SHARDS", "4")))
    args = parser.parse_args(argv)
    if not args.table:
        parser.error("give --table or set TABLE_NAME")
    report = backfill(args.table, args.shards)
    print(f"tasks: {report.tasks}, closed tasks indexed: {report.indexed}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
