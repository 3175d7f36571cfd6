"""Rewrite the search items of leads indexed before `seen_by` existed (a one-off upgrade step).

    TABLE_NAME=<TableName output> PYTHONPATH=layers/crm python -m crm.tools.search_backfill

Search items used to be written once per scope (ALL, team, holder); they are now one per token, with the
scopes that may see the lead on the item (crm.queries.search_repository). A maintenance Scan (never a
request path) over lead items: each lead whose manifest is not that of the lead as stored is synced by the
stream handler's own `sync` (its per-scope items deleted, its token items rewritten, the manifest moved
under its version guard), so it is safe to run while the system is live, and to run again. Until it has
run, reps and managers do not find leads unchanged since the deploy by search (admins do).
"""

import argparse
import os
import sys
from dataclasses import dataclass
from typing import Any

from crm.leads.repository import LeadItem
from crm.platform import aws
from crm.queries.search_repository import DynamoSearchIndex
from crm.tools.scanning import entity_items


@dataclass
class SearchBackfillReport:
    leads: int = 0
    reindexed: int = 0


def backfill(table: str, client: Any = None) -> SearchBackfillReport:
    dynamodb = client or aws.dynamodb()
    index = DynamoSearchIndex(table, client=dynamodb)
    report = SearchBackfillReport()
    for image in entity_items(dynamodb, table, "lead", "LEAD"):
        lead = LeadItem.model_validate(image).to_lead()
        report.leads += 1
        if not index.holds(lead.id, lead) and index.sync(lead.id, lead, int(image.get("version", 0))):
            report.reindexed += 1
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m crm.tools.search_backfill", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--table", default=os.environ.get("TABLE_NAME"), help="default: $TABLE_NAME")
    args = parser.parse_args(argv)
    if not args.table:
        parser.error("give --table or set TABLE_NAME")
    report = backfill(args.table)
    print(f"leads: {report.leads}, search items rewritten: {report.reindexed}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
