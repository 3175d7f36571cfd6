"""CSV import benchmark: rows imported per second beside the capture handler's own rate, and the import's
peak memory at two file sizes, measured in the same run.

    python -m tests.bench.csv_import [--rows 2000] [--memory-rows 10000 100000] [--workers 8]
    (make bench ROWS=5000 sets --rows)

1. The capture handler (the capture function's handler, website-form JSON, `--workers` threads) on DynamoDB
   Local for as long as the import below takes, as captures per second: the baseline.
2. An import of `--rows` rows of fresh people through the real ImportService (the same capture service,
   row markers, chunk checkpoints, the file read by ranged reads of a file on disk as S3 would serve it) into
   the same DynamoDB Local, as rows per second, and the ratio to (1). Aim: >= 80%.
3. Peak memory (tracemalloc) of importing each of `--memory-rows` rows files, the capture itself replaced by
   a stand-in that answers at once (what is measured is the import's own streaming, batching, markers and
   checkpoints, still written to DynamoDB Local), and the ratio of the largest to the smallest. Aim: flat
   (about 1x): the file is never held in memory.
"""

import argparse
import csv
import os
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import boto3

from devstack.dynamodb_local import DynamoDBLocal
from devstack.provision import create_tables
from devstack.template import load_template
from tests.bench.capture import capture_throughput  # sets the AWS variables first

HEADER = ["First Name", "Last Name", "Email", "Company", "Lead Source", "Plan"]


def write_file(path: Path, rows: int) -> int:
    tag = uuid.uuid4().hex[:8]
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\r\n")
        writer.writerow(HEADER)
        for n in range(rows):
            writer.writerow(
                [f"Ada{n}", f"Lovelace{n}", f"ada{n}.{tag}@bench.example", f"Engines {n % 97}", "", "gold"]
            )
    return path.stat().st_size


class FileStorage:
    """The upload as S3 would serve it: ranged reads of a file, 64 KB at a time; nothing kept in memory."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.written: dict[str, int] = {}

    def upload_url(self, key: str, seconds: int) -> str:
        return f"file://{self.path}"

    def download_url(self, key: str, file_name: str, seconds: int) -> str:
        return f"file://{self.path}.rejects"

    def read_from(self, key: str, offset: int) -> Iterator[bytes]:
        with self.path.open("rb") as handle:
            handle.seek(offset)
            while chunk := handle.read(64 * 1024):
                yield chunk

    def put_file(self, key: str, file: IO[bytes], file_name: str) -> None:
        self.written[key] = len(file.read())


class Queue:
    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []

    def send(self, queue_url: str, body: dict[str, Any]) -> None:
        self.bodies.append(body)

    def send_many(self, queue_url: str, bodies: list[dict[str, Any]]) -> None:
        self.bodies.extend(bodies)


class InstantCapture:
    """Answers every capture at once as a new lead (the memory figure measures the import, not capture)."""

    def capture(self, submission: Any) -> Any:
        from crm.capture.service import CaptureResult

        return CaptureResult(lead_id=str(uuid.uuid4()), created=True, lead=None)  # type: ignore[arg-type]


def run_import(path: Path, capture: Any = None) -> tuple[float, Any]:
    """Import the file at `path` to its end; (seconds, the finished job)."""
    from crm import bootstrap
    from crm.imports.model import ImportChunk, object_key
    from crm.platform.auth import Principal

    bootstrap.reset()
    service = bootstrap.import_service()
    service.storage = FileStorage(path)
    service.queue = queue = Queue()
    if capture is not None:
        service.capture = capture
    manager = Principal(str(uuid.uuid4()), None, frozenset({"manager"}))
    started = time.perf_counter()
    job, _ = service.request(manager, "bench.csv", "bench")
    service.on_upload(object_key(job.id), path.stat().st_size)
    while queue.bodies:
        service.process_chunk(ImportChunk.model_validate(queue.bodies.pop(0)), lambda: 10**9)
    elapsed = time.perf_counter() - started
    return elapsed, service.get(manager, job.id)


def peak_memory(path: Path) -> tuple[int, Any]:
    tracemalloc.start()
    try:
        _, job = run_import(path, InstantCapture())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak, job


def rate_figures(template: Any, path: Path, rows: int, workers: int) -> None:
    size = write_file(path, rows)
    seconds, job = run_import(path)
    assert (job.state.value, job.created) == ("completed", rows), job
    import_rate = rows / seconds
    capture_rate, p50, p99 = capture_throughput(template, max(5.0, min(seconds, 60.0)), workers)
    print(
        f"  capture handler:        {capture_rate:8.1f} captures/s  p50 {p50:.1f} ms  "
        f"p99 {p99:.1f} ms  (baseline)"
    )
    print(
        f"  CSV import:             {import_rate:8.1f} rows/s      {rows:,} rows, "
        f"{size / 1e6:.1f} MB, "
        f"{job.chunks_done} chunks   ratio {import_rate / capture_rate:.0%} of capture (aim >= 80%)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=int(os.environ.get("ROWS") or 2000))
    parser.add_argument(
        "--memory-rows",
        type=int,
        nargs="+",
        default=[int(n) for n in (os.environ.get("MEMORY_ROWS") or "10000 100000").split()],
        help="file sizes of the memory figure (MEMORY_ROWS='10000 100000'); --rows 0 skips the rate figure",
    )
    parser.add_argument("--workers", type=int, default=8, help="capture handler threads (the import's: 8)")
    args = parser.parse_args()

    template = load_template()
    function_env = dict(template.function("ImportsFunction").environment)
    with DynamoDBLocal() as database, tempfile.TemporaryDirectory() as folder:
        os.environ.update(function_env)
        os.environ.update(POWERTOOLS_LOG_LEVEL="WARNING", POWERTOOLS_METRICS_DISABLED="true")
        os.environ["AWS_ENDPOINT_URL_DYNAMODB"] = database.endpoint_url
        create_tables(boto3.client("dynamodb", endpoint_url=database.endpoint_url), template)
        print(
            f"DynamoDB Local {database.endpoint_url}; import of {args.rows:,} rows, "
            f"capture with {args.workers} workers"
        )

        path = Path(folder) / "rows.csv"
        if args.rows:
            rate_figures(template, path, args.rows, args.workers)
        write_file(path, 1000)
        peak_memory(path)  # once before measuring: first-use imports and caches are not the import's
        peaks = []
        for rows in args.memory_rows:
            memory_path = Path(folder) / f"memory-{rows}.csv"
            size = write_file(memory_path, rows)
            peak, job = peak_memory(memory_path)
            assert job.rows_read == rows, job
            peaks.append(peak)
            print(f"  peak memory, {rows:>7,} rows ({size / 1e6:5.1f} MB file): {peak / 1e6:6.2f} MB")
            memory_path.unlink()
        ratio = peaks[-1] / peaks[0]
        print(
            f"  peak memory ratio, {args.memory_rows[-1]:,} to {args.memory_rows[0]:,} rows: {ratio:.2f}x "
            "(aim: flat, ~1x)"
        )


if __name__ == "__main__":
    main()
