"""Give leads written before the list indexes existed their list-index keys (a one-off upgrade step).

    TABLE_NAME=<TableName output> PYTHONPATH=layers/crm python -m crm.tools.list_backfill

A maintenance Scan (never a request path) over lead items; each lead whose keys differ from what
`crm.leads.index.list_index_attributes` derives is rewritten with the same conditional update as the
stream handler's repair (only if the lead is still in the state read), so it is safe to run while the
system is live, and to run again. Run it after the last list index is ACTIVE (README: upgrading).
Leads stored when they were still in GSI1-3 also lose those keys (GSI1PK ... GSI3SK), conditionally on
their version (docs/deploying-and-operating.md: upgrading).
"""

import argparse
import os
import sys
from dataclasses import dataclass
from typing import Any

from crm.leads.repository import LeadItem
from crm.platform import aws
from crm.queries.list_repository import LeadListRepository
from crm.tools.scanning import entity_items


@dataclass
class BackfillReport:
    leads: int = 0
    rewritten: int = 0
    out_of_gsi1_3: int = 0


def backfill(table: str, shards: int, client: Any = None) -> BackfillReport:
    dynamodb = client or aws.dynamodb()
    repository = LeadListRepository(table, client=dynamodb)
    report = BackfillReport()
    for image in entity_items(dynamodb, table, "lead", "LEAD"):
        report.leads += 1
        if repository.repair_index(image, LeadItem.model_validate(image).to_lead(), shards):
            report.rewritten += 1
        if repository.drop_legacy_keys(image):  # the repair leaves the version as it was
            report.out_of_gsi1_3 += 1
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m crm.tools.list_backfill", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--table", default=os.environ.get("TABLE_NAME"), help="default: $TABLE_NAME")
    parser.add_argument("--shards", type=int, default=int(os.environ.get("INDEX_SHARDS", "4")))
    args = parser.parse_args(argv)
    if not args.table:
        parser.error("give --table or set TABLE_NAME")
    report = backfill(args.table, args.shards)
    print(
        f"leads: {report.leads}, list-index keys rewritten: {report.rewritten}, "
        f"taken out of GSI1-3: {report.out_of_gsi1_3}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
