"""CSV imports against Amazon's DynamoDB Local: counts exact (created, merged, rejected with the field named),
a crash mid-file resumed from the checkpointed byte offset with nothing captured or counted twice, a
redelivered chunk that changes nothing, and workers racing on one chunk and on the same emails."""

import csv
import dataclasses
import io
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from crm import bootstrap
from crm.imports.model import ImportChunk, ImportState, object_key
from crm.imports.service import ImportService
from crm.imports.storage import InMemoryImportStorage
from crm.platform.auth import Principal
from crm.platform.errors import RetryableError

pytestmark = pytest.mark.ddblocal

MANAGER = Principal("11111111-1111-4111-8111-00000000cafe", None, frozenset({"manager"}))
FOREVER = lambda: 10**9  # noqa: E731 - an invocation with all the time in the world


class Queue:
    """The import queue in a list (what SqsPublisher would send)."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def send(self, queue_url: str, body: dict[str, Any]) -> None:
        with self.lock:
            self.bodies.append(body)

    def send_many(self, queue_url: str, bodies: list[dict[str, Any]]) -> None:
        for body in bodies:
            self.send(queue_url, body)


class Killed(BaseException):
    """The function's process dies (a timeout kill): no handler runs, the lease is not given back."""


@pytest.fixture
def imports(local_aws: dict[str, Any], function_env: Any) -> dict[str, Any]:
    function_env("ImportsFunction")
    service = bootstrap.import_service()
    service.storage = InMemoryImportStorage(read_chunk_bytes=4096)
    service.queue = Queue()
    service.settings = dataclasses.replace(service.settings, chunk_rows=40)
    return {**local_aws, "service": service}


def csv_file(rows: list[list[str]], header: list[str] | None = None) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header or ["First Name", "LAST_NAME", "E-mail", "Company", "Lead Source", "Plan"])
    writer.writerows(rows)
    return ("\ufeff" + out.getvalue()).encode()


def people(domain: str, count: int) -> list[list[str]]:
    return [[f"Ada{n}", f"Lovelace{n}", f"ada{n}@{domain}", f"Engines {n}", "", "gold"] for n in range(count)]


def start(service: ImportService, data: bytes, source: str = "spreadsheet") -> str:
    job, _ = service.request(MANAGER, "leads.csv", source)
    service.storage.objects[object_key(job.id)] = data  # the presigned PUT
    service.on_upload(object_key(job.id), len(data))
    return job.id


def drain(service: ImportService) -> int:
    queue: Queue = service.queue
    handled = 0
    while queue.bodies:
        service.process_chunk(ImportChunk.model_validate(queue.bodies.pop(0)), FOREVER)
        handled += 1
    return handled


def lead_ids(service: ImportService, emails: list[str]) -> set[str]:
    return {lead_id for email in emails if (lead_id := service.leads.find_id_by_email(email))}


def test_an_import_counts_created_merged_and_rejected_rows_naming_the_field(imports):
    service: ImportService = imports["service"]
    domain = f"{uuid.uuid4().hex[:8]}.example"
    rows = people(domain, 100)
    rows[10][4] = "trade show"  # its own lead_source
    for n in (20, 40, 60, 80, 99):  # five repeats of earlier emails
        rows[n][2] = f"ada{n - 15}@{domain}".upper()
    rows[30][2] = "not-an-email"
    rows[50][1] = ""
    rows[70] = [*rows[70][:5], "gold", "an extra cell"]
    rows[71][0] = "x" * 300

    import_id = start(service, csv_file(rows))
    drain(service)

    job = service.get(MANAGER, import_id)
    assert job.state is ImportState.COMPLETED
    assert (job.rows_read, job.created, job.merged, job.rejected) == (100, 92, 5, 3)
    assert job.chunks_done == 3 and job.columns == [
        "First Name",
        "LAST_NAME",
        "E-mail",
        "Company",
        "Lead Source",
        "Plan",
    ]
    lead = service.leads.get(service.leads.find_id_by_email(f"ada10@{domain}"))
    assert lead.lead_source == "trade show" and lead.custom_fields == {"Plan": "gold"}
    other = service.leads.get(service.leads.find_id_by_email(f"ada70@{domain}"))
    assert other.lead_source == "spreadsheet" and other.custom_fields == {
        "Plan": "gold",
        "column_7": "an extra cell",
    }
    rejects = list(csv.reader(io.StringIO(service.storage.objects[job.rejects_key].decode("utf-8-sig"))))
    assert rejects[0] == [*job.columns, "row_number", "reason"]
    reasons = {int(row[-2]): row[-1] for row in rejects[1:]}
    assert sorted(reasons) == [31, 51, 72]
    assert reasons[31].startswith("email:") and reasons[51].startswith("last_name:")
    assert reasons[72].startswith("first_name:")
    assert rejects[1][:3] == ["Ada30", "Lovelace30", "not-an-email"]
    assert service.rejects_link(job) is not None


def test_a_header_without_an_email_column_fails_the_import_saying_so(imports):
    service: ImportService = imports["service"]
    import_id = start(service, csv_file([["Ada", "L", "x"]], header=["first name", "last name", "mail"]))
    drain(service)
    job = service.get(MANAGER, import_id)
    assert job.state is ImportState.FAILED and "missing: email" in (job.error or "")


def test_a_second_upload_event_starts_nothing_more(imports):
    service: ImportService = imports["service"]
    import_id = start(service, csv_file(people(f"{uuid.uuid4().hex[:8]}.example", 3)))
    service.on_upload(object_key(import_id), 10)
    assert [body["next_row"] for body in service.queue.bodies] == [1]


def test_a_worker_killed_mid_chunk_is_resumed_from_the_checkpoint_and_counts_each_row_once(
    imports, monkeypatch
):
    service: ImportService = imports["service"]
    domain = f"{uuid.uuid4().hex[:8]}.example"
    rows = people(domain, 150)
    rows[90][2] = f"ada85@{domain}"  # a repeat inside the chunk that is killed (rows 81-120)
    rows[100][2] = "broken"
    clock = [datetime.now(UTC)]
    service.now = lambda: clock[0]
    import_id = start(service, csv_file(rows))
    service.process_chunk(ImportChunk.model_validate(service.queue.bodies.pop(0)), FOREVER)
    service.process_chunk(ImportChunk.model_validate(service.queue.bodies.pop(0)), FOREVER)
    after_two = service.get(MANAGER, import_id)
    assert (after_two.next_row, after_two.rows_read) == (81, 80)

    # Chunk 3 dies after capturing 34 of its rows: markers for the first 25 are written, the rest are not.
    capture = service.capture.capture
    calls = {"n": 0}

    def dying_capture(submission):
        calls["n"] += 1
        if calls["n"] == 35:
            raise Killed()
        return capture(submission)

    monkeypatch.setattr(service.capture, "capture", dying_capture)
    message = service.queue.bodies.pop(0)
    with pytest.raises(Killed):
        # A kill runs no handler: the lease stays taken.
        monkeypatch.setattr(service.repository, "release_lease", lambda *_: None)
        service.process_chunk(ImportChunk.model_validate(message), FOREVER)
    monkeypatch.undo()
    stuck = service.get(MANAGER, import_id)
    assert (stuck.next_row, stuck.rows_read, stuck.created) == (81, 80, 80)  # chunk 3 counted nothing
    with pytest.raises(RetryableError):  # redelivered while the dead worker's lease holds
        service.process_chunk(ImportChunk.model_validate(message), FOREVER)

    clock[0] += timedelta(minutes=10)  # the lease expires; SQS redelivers the message
    reads_before = len(service.storage.reads)
    service.process_chunk(ImportChunk.model_validate(message), FOREVER)
    assert service.storage.reads[reads_before][1] == after_two.offset  # read on from the checkpoint's byte
    drain(service)

    job = service.get(MANAGER, import_id)
    assert job.state is ImportState.COMPLETED
    assert (job.rows_read, job.created, job.merged, job.rejected) == (150, 148, 1, 1)
    emails = [f"ada{n}@{domain}" for n in range(150)]
    assert len(lead_ids(service, emails)) == 148
    # The killed attempt's rows were captured once: their leads carry no merge activity.
    found = service.leads.get_with_activities(service.leads.find_id_by_email(f"ada110@{domain}"))
    assert [a.type for a in found[1]].count("submission_merged") == 0


def test_redelivered_chunks_change_nothing(imports):
    service: ImportService = imports["service"]
    domain = f"{uuid.uuid4().hex[:8]}.example"
    import_id = start(service, csv_file(people(domain, 90)))
    delivered: list[dict[str, Any]] = []
    while service.queue.bodies:
        body = service.queue.bodies.pop(0)
        delivered.append(body)
        service.process_chunk(ImportChunk.model_validate(body), FOREVER)
    before = service.get(MANAGER, import_id)

    for body in delivered:  # at-least-once: every message again
        service.process_chunk(ImportChunk.model_validate(body), FOREVER)

    after = service.get(MANAGER, import_id)
    assert (after.rows_read, after.created, after.merged, after.rejected) == (90, 90, 0, 0)
    assert after.chunks_done == before.chunks_done == 3
    found = service.leads.get_with_activities(service.leads.find_id_by_email(f"ada5@{domain}"))
    assert [a.type for a in found[1]].count("submission_merged") == 0


def test_workers_racing_on_one_chunk_count_it_once(imports):
    service: ImportService = imports["service"]
    domain = f"{uuid.uuid4().hex[:8]}.example"
    import_id = start(service, csv_file(people(domain, 60)))
    message = ImportChunk.model_validate(service.queue.bodies.pop(0))
    barrier = threading.Barrier(4)

    def work(_: int) -> str:
        barrier.wait()
        try:
            service.process_chunk(message, FOREVER)
        except RetryableError:
            return "busy"
        return "done"

    with ThreadPoolExecutor(4) as pool:
        outcomes = list(pool.map(work, range(4)))
    assert outcomes.count("done") >= 1
    for _ in range(3):  # the losers' messages come back: stale now, dropped
        service.process_chunk(message, FOREVER)
    service.queue.bodies = [b for b in service.queue.bodies if b["next_row"] != 1]
    drain(service)
    job = service.get(MANAGER, import_id)
    assert (job.rows_read, job.created, job.merged) == (60, 60, 0)


def test_two_imports_of_the_same_people_at_once_make_one_lead_each(imports, function_env):
    service: ImportService = imports["service"]
    domain = f"{uuid.uuid4().hex[:8]}.example"
    data = csv_file(people(domain, 60))
    first, second = start(service, data), start(service, data)
    bodies = list(service.queue.bodies)
    service.queue.bodies = []
    barrier = threading.Barrier(2)

    def run(body: dict[str, Any]) -> None:
        barrier.wait()
        service.process_chunk(ImportChunk.model_validate(body), FOREVER)

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(run, bodies))
    drain(service)

    a, b = service.get(MANAGER, first), service.get(MANAGER, second)
    assert a.rows_read == b.rows_read == 60
    assert a.created + b.created == 60 and a.merged + b.merged == 60
    assert len(lead_ids(service, [f"ada{n}@{domain}" for n in range(60)])) == 60
