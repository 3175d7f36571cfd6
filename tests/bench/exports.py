"""CSV export: rows per second beside GET /leads paging the same leads, and peak memory at two sizes.

    python -m tests.bench.exports [--small 2000] [--large 8000] [--part-kib 256]

Two tables shaped like LeadsTable (template.yaml) in one DynamoDB Local, loaded in the stored shape; moto's
S3 in server mode (multipart uploads, its minimum part size lowered to `--part-kib` so small files have
several parts, as 5 MiB parts would for real exports). On each table, as an admin (every lead):

- baseline: the list service of `GET /leads` pages through every lead, 100 a page (what a client paging
  the API would make the database do, without HTTP);
- export: `ExportService` runs the whole job (request, then every SQS message in turn) and writes the file;
- memory: the same export again under tracemalloc, its peak (Python allocations).

Printed: export rows/s as a ratio of the list's rows/s (aim >= 0.8: writing the CSV and uploading it costs
little beside reading), and peak memory of the large export as a ratio of the small one's (aim: near 1,
flat: one part in memory, whatever the file's size).
"""

import argparse
import os
import sys
import time
import tracemalloc
import uuid
from datetime import UTC, datetime
from typing import Any

os.environ.update(
    AWS_ACCESS_KEY_ID="bench",
    AWS_SECRET_ACCESS_KEY="bench",
    AWS_DEFAULT_REGION="us-east-1",
    AWS_REGION="us-east-1",
    POWERTOOLS_TRACE_DISABLED="true",
    POWERTOOLS_METRICS_DISABLED="true",
    POWERTOOLS_LOG_LEVEL="WARNING",
    CURSOR_SIGNING_KEY="bench-cursor-key",
)

import boto3
from crm import bootstrap
from crm.exports.model import ExportFilters, ExportPage, ExportState
from crm.platform import aws
from crm.platform.auth import Principal
from crm.platform.settings import get_settings
from crm.queries.lists import LeadListQuery

from devstack.dynamodb_local import DynamoDBLocal
from devstack.moto_server import MotoServer
from devstack.provision import table_definition
from devstack.template import load_template
from tests.lead_data import item_of, store, varied_leads

FIRST_DAY = datetime(2031, 3, 1, tzinfo=UTC)
DAYS = 30
ADMIN = Principal("bench-admin", None, frozenset({"admin"}))
BUCKET = "bench-exports"


class Queue:
    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []

    def send(self, queue_url: str, body: dict[str, Any]) -> None:
        self.bodies.append(body)

    def send_many(self, queue_url: str, bodies: list[dict[str, Any]]) -> None:
        self.bodies.extend(bodies)


def create_table(client: Any, template: Any) -> str:
    table = next(t for t in template.tables if t.logical_id == "LeadsTable")
    definition = table_definition(table)
    definition["TableName"] = f"bench-{uuid.uuid4().hex[:8]}"
    definition.pop("StreamSpecification", None)  # loaded directly: no stream consumer runs here
    client.create_table(**definition)
    client.get_waiter("table_exists").wait(TableName=definition["TableName"])
    return str(definition["TableName"])


def use_table(table: str) -> None:
    os.environ["TABLE_NAME"] = table
    get_settings.cache_clear()
    bootstrap.reset()
    aws.reset()


def list_everything() -> tuple[int, float]:
    service = bootstrap.lead_query_service()
    started = time.perf_counter()
    rows, cursor = 0, None
    while True:
        page = service.list_leads(ADMIN, LeadListQuery(limit=100), cursor)
        rows += len(page.leads)
        cursor = page.next_cursor
        if cursor is None:
            return rows, time.perf_counter() - started


def export_everything() -> tuple[int, int, float]:
    service = bootstrap.export_service()
    queue = Queue()
    service.publisher = queue
    started = time.perf_counter()
    job = service.request(ADMIN, ExportFilters(), [])
    while queue.bodies:
        service.process_page(ExportPage.model_validate(queue.bodies.pop(0)))
    elapsed = time.perf_counter() - started
    done = service.get(ADMIN, job.id)
    assert done.state is ExportState.COMPLETED, done
    return done.rows_written, len(done.parts), elapsed


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--small", type=int, default=2_000)
    parser.add_argument("--large", type=int, default=8_000)
    parser.add_argument("--part-kib", type=int, default=256)
    args = parser.parse_args()
    part_bytes = args.part_kib * 1024
    template = load_template()
    os.environ["S3_UPLOAD_PART_MIN_SIZE"] = str(part_bytes)  # read by the moto server at its start
    with DynamoDBLocal() as database, MotoServer() as moto:
        os.environ.update(
            AWS_ENDPOINT_URL_DYNAMODB=database.endpoint_url,
            AWS_ENDPOINT_URL_S3=moto.endpoint_url,
            EXPORTS_BUCKET=BUCKET,
            EXPORT_PART_BYTES=str(part_bytes),
            EXPORT_PAGE_SIZE="100",
        )
        boto3.client("s3", region_name="us-east-1", endpoint_url=moto.endpoint_url).create_bucket(
            Bucket=BUCKET
        )
        client = boto3.client("dynamodb", region_name="us-east-1", endpoint_url=database.endpoint_url)
        results: dict[int, dict[str, float]] = {}
        for count in (args.small, args.large):
            table = create_table(client, template)
            store(
                client, table, (item_of(lead, 4) for lead in varied_leads(count, FIRST_DAY, DAYS, seed=count))
            )
            use_table(table)
            list_everything()  # untimed warm-up: clients, keys
            listed, list_seconds = list_everything()
            rows, parts, export_seconds = export_everything()
            assert rows == listed == count, (rows, listed, count)
            tracemalloc.start()
            export_everything()
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            results[count] = {
                "list_rate": listed / list_seconds,
                "export_rate": rows / export_seconds,
                "peak": peak,
                "parts": parts,
            }
            print(
                f"{count:>7} leads: list {listed / list_seconds:8.0f} rows/s   "
                f"export {rows / export_seconds:8.0f} rows/s ({parts} parts of {args.part_kib} KiB)   "
                f"export peak memory {peak / 2**20:6.2f} MiB"
            )
    small, large = results[args.small], results[args.large]
    print(
        "export rows/s as a share of the list's, same run: "
        f"{small['export_rate'] / small['list_rate']:.2f} ({args.small} leads), "
        f"{large['export_rate'] / large['list_rate']:.2f} ({args.large} leads); aim >= 0.8"
    )
    print(
        f"peak memory, {args.large} vs {args.small} leads ({args.large / args.small:.0f}x the rows): "
        f"{large['peak'] / small['peak']:.2f}x; aim ~1 (flat)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
