"""CSV exports against Amazon's DynamoDB Local (the job's conditional writes) and moto's S3 in server mode
(real multipart uploads, with a small minimum part size so a few hundred leads make several parts): the
file holds exactly the leads the requester's list holds, each once, after a crash mid-export, redeliveries
of every message and two workers racing for the same part."""

import csv
import io
import threading
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from crm import bootstrap
from crm.exports.csv_rows import COLUMNS
from crm.exports.model import ExportFilters, ExportJob, ExportPage, ExportState
from crm.exports.service import ExportService
from crm.exports.storage import S3ExportStorage
from crm.leads.model import Lead, LeadStatus
from crm.platform.auth import Principal
from crm.platform.errors import Forbidden, NotFound, RetryableError
from crm.queries.lists import LeadListQuery

from devstack.moto_server import MotoServer
from devstack.template import Template
from tests.conftest import reset_cached_clients
from tests.integration.lead_stream import create_isolated_table
from tests.lead_data import ADMIN, MANAGER, REP, store_leads, varied_leads
from tests.unit.test_lead_lists import wanted

pytestmark = pytest.mark.ddblocal

DAY = datetime(2031, 3, 1, tzinfo=UTC)
PART_BYTES = 4096  # S3's 5 MiB minimum, scaled down (moto's server is started with the same minimum)
PAGE_SIZE = 10
BUCKET = "exports-test"


class Queue:
    """The export queue in a list (what SqsPublisher would send)."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def send(self, queue_url: str, body: dict[str, Any]) -> None:
        with self.lock:
            self.bodies.append(body)

    def send_many(self, queue_url: str, bodies: list[dict[str, Any]]) -> None:
        for body in bodies:
            self.send(queue_url, body)

    def take(self) -> ExportPage | None:
        with self.lock:
            return ExportPage.model_validate(self.bodies.pop(0)) if self.bodies else None


class Crash(BaseException):
    """The worker dies (a timeout, a killed process): no `except Exception` runs, the lease stays taken."""


class CrashingStorage(S3ExportStorage):
    """S3 that lets part `at` reach the bucket and then kills the worker, before it can checkpoint."""

    def __init__(self, inner: S3ExportStorage, at: int) -> None:
        super().__init__(inner.bucket, inner.client)
        self.at = at
        self.crashed = False

    def upload_part(self, key: str, upload_id: str, number: int, data: bytes | bytearray) -> str:
        etag = super().upload_part(key, upload_id, number, data)
        if number == self.at and not self.crashed:
            self.crashed = True
            raise Crash
        return etag


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    patch = pytest.MonkeyPatch()
    patch.setenv("S3_UPLOAD_PART_MIN_SIZE", str(PART_BYTES))
    server = MotoServer().start()
    patch.undo()
    try:
        yield server.endpoint_url
    finally:
        server.stop()


@pytest.fixture(scope="module")
def stored(dynamodb_local: str, template: Template) -> dict[str, Any]:
    table = create_isolated_table(dynamodb_local, template)
    leads = varied_leads(150, DAY, days=5, seed=17)
    client = boto3.client("dynamodb", region_name="us-east-1", endpoint_url=dynamodb_local)
    store_leads(client, table, leads)
    return {"table": table, "leads": leads}


@pytest.fixture
def exports(
    stored: dict[str, Any], dynamodb_local: str, s3_endpoint: str, function_env: Any, monkeypatch: Any
) -> Iterator[dict[str, Any]]:
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", dynamodb_local)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_endpoint)
    function_env.pin(
        TABLE_NAME=stored["table"],
        EXPORTS_BUCKET=BUCKET,
        CURSOR_SIGNING_KEY="export-test-cursor-key",
        EXPORT_PART_BYTES=str(PART_BYTES),
        EXPORT_PAGE_SIZE=str(PAGE_SIZE),
    )
    function_env("ExportsFunction")
    s3 = boto3.client("s3", region_name="us-east-1", endpoint_url=s3_endpoint)
    if BUCKET not in {b["Name"] for b in s3.list_buckets().get("Buckets", [])}:
        s3.create_bucket(Bucket=BUCKET)
    service = bootstrap.export_service()
    queue = Queue()
    service.publisher = queue
    yield {**stored, "service": service, "queue": queue, "s3": s3}
    reset_cached_clients()


def drain(service: ExportService, queue: Queue, twice: bool = False) -> int:
    """Work the queue dry; `twice`: every message is delivered a second time (at-least-once delivery)."""
    handled = 0
    while (page := queue.take()) is not None:
        service.process_page(page)
        if twice:
            service.process_page(page)
        handled += 1
    return handled


def download(service: ExportService, job: ExportJob) -> list[dict[str, str]]:
    link = service.download_link(job)
    assert link is not None
    with urllib.request.urlopen(link.url, timeout=10) as response:
        data = response.read()
    assert data.startswith(b"\xef\xbb\xbf")
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def expected(leads: list[Lead], principal: Principal, query: LeadListQuery) -> list[str]:
    return sorted(lead.id for lead in leads if wanted(principal, query, lead))


def test_a_managers_export_holds_exactly_their_list_in_several_parts(exports: dict[str, Any]) -> None:
    service: ExportService = exports["service"]
    job = service.request(MANAGER, ExportFilters(), [])
    assert job.state is ExportState.QUEUED

    handled = drain(service, exports["queue"])

    done = service.get(MANAGER, job.id)
    rows = download(service, done)
    want = expected(exports["leads"], MANAGER, LeadListQuery())
    assert 0 < len(want) < len(exports["leads"])  # some leads are the manager's, some are not
    assert done.state is ExportState.COMPLETED and done.finished_at is not None
    assert len(done.parts) >= 3 and handled >= 3  # a multipart upload of several parts
    assert sorted(row["id"] for row in rows) == want  # each visible lead once, nobody else's
    assert done.rows_written == len(rows) == len(want)
    assert list(rows[0]) == list(COLUMNS)
    created = [row["created_at"] for row in rows]
    assert created == sorted(created, reverse=True)  # the list's order: newest first


def test_filters_are_the_lists(exports: dict[str, Any]) -> None:
    service: ExportService = exports["service"]
    filters = ExportFilters(status=LeadStatus.NEW)
    job = service.request(ADMIN, filters, [])
    drain(service, exports["queue"])
    rows = download(service, service.get(ADMIN, job.id))
    assert sorted(row["id"] for row in rows) == expected(
        exports["leads"], ADMIN, LeadListQuery(status=LeadStatus.NEW)
    )
    assert {row["status"] for row in rows} == {"new"}


def test_an_export_of_nothing_is_a_file_with_only_the_header(exports: dict[str, Any]) -> None:
    service: ExportService = exports["service"]
    later = DAY + timedelta(days=365)
    job = service.request(ADMIN, ExportFilters(created_from=later), [])
    drain(service, exports["queue"])
    done = service.get(ADMIN, job.id)
    assert (done.state, done.rows_written, len(done.parts)) == (ExportState.COMPLETED, 0, 1)
    assert download(service, done) == []


def test_a_crash_after_a_part_reached_s3_resumes_without_duplicates(exports: dict[str, Any]) -> None:
    service: ExportService = exports["service"]
    queue: Queue = exports["queue"]
    crashing = CrashingStorage(service.storage, at=2)  # type: ignore[arg-type]
    service.storage = crashing
    job = service.request(MANAGER, ExportFilters(), [])

    page = queue.take()
    assert page is not None
    service.process_page(page)  # part 1
    second = queue.take()
    assert second is not None
    with pytest.raises(Crash):
        service.process_page(second)  # part 2 is in S3, not in the checkpoint; the lease is still held
    stuck = service.get(MANAGER, job.id)
    assert (stuck.next_part, len(stuck.parts)) == (2, 1)

    # SQS redelivers while the dead worker's lease runs: refused, retried later...
    with pytest.raises(RetryableError):
        service.process_page(second)
    # ...and once the lease is over, the part is written again from the same place.
    real_now = service.now
    service.now = lambda: real_now() + timedelta(seconds=service.settings.lease_seconds + 1)
    service.process_page(second)
    service.now = real_now
    drain(service, queue)

    done = service.get(MANAGER, job.id)
    rows = download(service, done)
    ids = [row["id"] for row in rows]
    assert done.state is ExportState.COMPLETED
    assert len(ids) == len(set(ids)) == done.rows_written
    assert sorted(ids) == expected(exports["leads"], MANAGER, LeadListQuery())


def test_every_message_delivered_twice_writes_each_row_once(exports: dict[str, Any]) -> None:
    service: ExportService = exports["service"]
    queue: Queue = exports["queue"]
    job = service.request(MANAGER, ExportFilters(), [])
    first = queue.bodies[0]

    drain(service, queue, twice=True)
    queue.send("", first)  # a very late copy of the first message, after the export completed
    drain(service, queue)

    done = service.get(MANAGER, job.id)
    rows = download(service, done)
    ids = [row["id"] for row in rows]
    assert done.state is ExportState.COMPLETED
    assert len(ids) == len(set(ids)) == done.rows_written
    assert sorted(ids) == expected(exports["leads"], MANAGER, LeadListQuery())
    assert [p.number for p in done.parts] == list(range(1, len(done.parts) + 1))


def test_two_workers_racing_for_each_part_write_it_once(exports: dict[str, Any]) -> None:
    service: ExportService = exports["service"]
    queue: Queue = exports["queue"]
    job = service.request(ADMIN, ExportFilters(), [])

    while (page := queue.take()) is not None:
        outcomes: list[str] = []
        barrier = threading.Barrier(2)

        def work(
            message: ExportPage = page, barrier: threading.Barrier = barrier, outcomes: list[str] = outcomes
        ) -> None:
            barrier.wait()
            try:
                service.process_page(message)
                outcomes.append("done")
            except RetryableError:
                outcomes.append("busy")  # SQS would deliver it again later: it then finds the part counted

        threads = [threading.Thread(target=work) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert "done" in outcomes

    done = service.get(ADMIN, job.id)
    rows = download(service, done)
    ids = [row["id"] for row in rows]
    assert done.state is ExportState.COMPLETED
    assert len(ids) == len(set(ids)) == done.rows_written
    assert sorted(ids) == expected(exports["leads"], ADMIN, LeadListQuery())


def test_reps_may_not_export_and_others_do_not_see_an_export(exports: dict[str, Any]) -> None:
    service: ExportService = exports["service"]
    with pytest.raises(Forbidden):
        service.request(REP, ExportFilters(), [])
    job = service.request(MANAGER, ExportFilters(), [])
    other_manager = Principal("manager-2", None, frozenset({"manager"}), frozenset({"sales"}))
    with pytest.raises(NotFound):
        service.get(other_manager, job.id)
    assert service.get(ADMIN, job.id).id == job.id
    mine = service.list(MANAGER, 100, None).jobs
    assert job.id in {j.id for j in mine}
    assert all(j.requester.subject == MANAGER.subject for j in mine)
    assert job.id not in {j.id for j in service.list(other_manager, 100, None).jobs}
    assert job.id in {j.id for j in service.list(ADMIN, 100, None).jobs}
