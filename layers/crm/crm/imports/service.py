"""CSV imports: ask for one (a presigned upload link), the upload's S3 event starts it, then one SQS message
per chunk streams the file from the checkpointed byte offset through the capture service.

Exactly once per row, across crashes, timeouts and redelivered messages:
- one worker at a time holds the job's lease for the chunk that starts at `next_row`; the chunk's counts go
  into the job with its checkpoint (next row, byte offset), one conditional write only that lease's holder,
  of that very chunk, may make. A chunk whose checkpoint never happened counts nothing; its retry counts it.
- each row's outcome (created, merged, rejected; the lead) is kept in a row marker, written a batch at a
  time after the rows are captured. A retried chunk takes a row's outcome from its marker and captures
  nothing again; a row captured by the failed attempt but not yet marked is recognised by its email's lead
  having been created after that chunk's first attempt began (and by no earlier row of the chunk), and is
  counted as created without a second capture. Merging is idempotent in the lead's fields: a row merged
  twice that way leaves one more merge activity on the lead's timeline, nothing else.
- the next chunk's message is sent before the checkpoint: a crash between the two leaves a message for a
  chunk that is not next yet (retried until it is) and the old one (redelivered, it redoes its chunk from
  the markers); a message for a chunk already done is dropped.
"""

import builtins
import csv
import io
import tempfile
import time
import uuid
from collections.abc import Callable, Collection, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any

from crm.capture.service import CaptureService
from crm.imports.csv_stream import Record, records
from crm.imports.model import (
    HeaderMap,
    ImportChunk,
    ImportJob,
    ImportState,
    RejectedRow,
    RowOutcome,
    RowRejected,
    import_id_from_key,
    object_key,
    rejects_key,
)
from crm.imports.repository import ImportRepository
from crm.imports.storage import ImportStorage
from crm.leads.model import LeadSubmission
from crm.leads.permissions import require_role
from crm.leads.repository import LeadRepository
from crm.platform import clock
from crm.platform.auth import Principal, Role
from crm.platform.cursor import decode_position, encode_position
from crm.platform.errors import NotFound, PermanentFailure, RetryableError
from crm.platform.ids import RECORD_ID, new_id
from crm.platform.observability import logger, metrics
from crm.platform.queues import MessagePublisher

MARKER_FLUSH_ROWS = 25
ROWS_PER_THREAD = 8  # a batch keeps every thread busy, so one slow capture holds up few others
MARKER_PREFETCH_ROWS = 100


@dataclass(frozen=True)
class ImportSettings:
    queue_url: str
    chunk_rows: int = 1000  # rows per SQS message at most (progress shows a chunk at a time)
    parallel_rows: int = 8  # rows of distinct emails captured at once
    reserve_seconds: float = 20.0  # a chunk stops when the invocation has this little time left
    lease_seconds: int = 360  # longer than the function's timeout
    upload_seconds: int = 900  # how long the upload link works
    link_seconds: int = 3600  # how long the rejects link works


@dataclass(frozen=True)
class Link:
    url: str
    expires_at: datetime


@dataclass(frozen=True)
class ImportList:
    jobs: list[ImportJob]
    next_cursor: str | None


@dataclass
class _Chunk:
    """What one attempt at a chunk found, row by row."""

    counts: dict[RowOutcome, int] = field(default_factory=lambda: dict.fromkeys(RowOutcome, 0))
    outcomes: list[tuple[int, RowOutcome, str | None]] = field(default_factory=list)
    rejects: list[RejectedRow] = field(default_factory=list)
    leads: set[str] = field(default_factory=set)  # leads this chunk's rows created or merged into


@dataclass
class _Pending:
    """A row read, waiting for its batch: a rejection, an outcome, or a submission to capture."""

    row: int
    email: str | None = None
    submission: LeadSubmission | None = None
    reject: RejectedRow | None = None
    outcome: RowOutcome | None = None
    lead_id: str | None = None


class ImportService:
    def __init__(  # noqa: PLR0917 - the service's collaborators
        self,
        repository: ImportRepository,
        storage: ImportStorage,
        capture: CaptureService,
        leads: LeadRepository,
        queue: MessagePublisher,
        settings: ImportSettings,
        now: Callable[[], datetime] = clock.now,
    ) -> None:
        self.repository = repository
        self.storage = storage
        self.capture = capture
        self.leads = leads
        self.queue = queue
        self.settings = settings
        self.now = now

    # ------------------------------------------------------------------ the API
    def request(self, principal: Principal, filename: str, default_source: str) -> tuple[ImportJob, Link]:
        require_role(principal, Role.MANAGER, Role.ADMIN)
        moment = self.now()
        import_id = new_id()
        job = ImportJob(
            id=import_id,
            filename=filename,
            default_source=default_source,
            requested_by=principal.actor,
            requester_subject=principal.subject,
            object_key=object_key(import_id),
            created_at=moment,
            upload_expires_at=moment + timedelta(seconds=self.settings.upload_seconds),
        )
        url = self.storage.upload_url(job.object_key, self.settings.upload_seconds)
        self.repository.create(job)
        logger.info("Import requested", extra={"import_id": job.id})
        return job, Link(url, job.upload_expires_at)

    def get(self, principal: Principal, import_id: str) -> ImportJob:
        """The import, for its requester or an admin (anyone else: 404, as if there were none)."""
        require_role(principal, Role.MANAGER, Role.ADMIN)
        job = self.repository.get(import_id) if RECORD_ID.match(import_id) else None
        if job is None or not (Role.ADMIN in principal.roles or job.requester_subject == principal.subject):
            raise NotFound(f"No import {import_id}")
        return job

    def list(self, principal: Principal, limit: int, cursor: str | None) -> ImportList:
        """The caller's imports (an admin: everyone's), newest first, a page at a time."""
        require_role(principal, Role.MANAGER, Role.ADMIN)
        requester = None if Role.ADMIN in principal.roles else principal.subject
        after = decode_position(cursor, _is_sort_key) if cursor else None
        found = self.repository.page(requester, limit, after)
        page = found[:limit]
        more = len(found) > limit
        return ImportList([job for _, job in page], encode_position(page[-1][0]) if more else None)

    def rejects_link(self, job: ImportJob) -> Link | None:
        """A presigned GET of the rejected rows' file, once the import completed with some."""
        if job.state is not ImportState.COMPLETED or not job.rejects_key:
            return None
        url = self.storage.download_url(
            job.rejects_key, f"rejected-{job.filename}", self.settings.link_seconds
        )
        return Link(url, self.now() + timedelta(seconds=self.settings.link_seconds))

    # ------------------------------------------------------------------ the worker
    def on_upload(self, key: str, size: int) -> ImportJob | None:
        """The upload's S3 event: the import starts (once; a second upload of the file changes nothing)."""
        import_id = import_id_from_key(key)
        job = self.repository.get(import_id) if import_id else None
        if job is None:
            logger.warning("An upload no import is waiting for", extra={"key": key[:200]})
            return None
        if job.state is not ImportState.WAITING_FOR_UPLOAD:
            logger.info("Upload of an import already started", extra={"import_id": job.id})
            return job
        # The first chunk's message goes first: a crash before the state changes leaves a message that
        # waits for it (the S3 event is retried), never a running job nobody works on.
        self.queue.send(self.settings.queue_url, ImportChunk(import_id=job.id, next_row=1).model_dump())
        self.repository.start(job.id, size, self.now())
        return self.repository.get(job.id)

    def process_chunk(self, chunk: ImportChunk, remaining_ms: Callable[[], int]) -> None:
        """One SQS message: the chunk at `chunk.next_row`, from the checkpoint's byte offset, until the file
        ends, `chunk_rows` rows are done or the invocation has `reserve_seconds` left."""
        job = self.repository.get(chunk.import_id)
        if job is None or job.state in (ImportState.COMPLETED, ImportState.FAILED):
            return
        if job.state is ImportState.WAITING_FOR_UPLOAD or job.next_row < chunk.next_row:
            raise RetryableError("This chunk is not next yet")
        if job.next_row > chunk.next_row:
            return  # done already (a redelivered message)
        if job.eof:
            self._finish(job)
            return
        moment = self.now()
        retry = job.lease_row == chunk.next_row and job.chunk_started_at is not None
        begun = job.chunk_started_at if retry and job.chunk_started_at else moment
        token = uuid.uuid4().hex
        until = moment + timedelta(seconds=self.settings.lease_seconds)
        if not self.repository.take_lease(job.id, chunk.next_row, token, moment, until, begun):
            raise RetryableError("Another worker holds this import's chunk")
        try:
            finished = self._run(job, token, begun, retry, remaining_ms)
        except PermanentFailure as exc:
            self.repository.fail(job.id, exc.message, self.now())
            logger.warning("Import failed", extra={"import_id": job.id, "reason": exc.message})
            return
        except BaseException:
            self.repository.release_lease(job.id, token)
            raise
        if finished:
            current = self.repository.get(job.id)
            if current is not None:
                self._finish(current)

    def _run(
        self, job: ImportJob, token: str, begun: datetime, retry: bool, remaining_ms: Callable[[], int]
    ) -> bool:
        """Rows of the chunk, then the next message and the checkpoint; True when the file is done."""
        started = time.monotonic()
        offset, row = job.offset, job.next_row
        stream = records(self.storage.read_from(job.object_key, offset), offset)
        if job.columns is None:
            columns, offset = self._header(job, token, stream)
        else:
            columns = job.columns
        header = HeaderMap(columns)
        chunk = _Chunk()
        markers: dict[int, dict[str, Any]] = {}
        prefetched = row - 1
        eof = False
        batch: list[_Pending] = []
        while row - job.next_row < self.settings.chunk_rows:
            if remaining_ms() < self.settings.reserve_seconds * 1000:
                break
            record = next(stream, None)
            if record is None:
                eof = True
                break
            if retry and row > prefetched:
                prefetched = row + MARKER_PREFETCH_ROWS - 1
                markers.update(self.repository.markers(job.id, row, prefetched))
            pending = self._prepare(job, header, record, row, markers.get(row) if retry else None)
            # Rows of one email are captured in file order: a batch holds each email once.
            if pending.email is not None and pending.email in {p.email for p in batch}:
                self._settle(batch, retry, begun, chunk)
                batch = []
            batch.append(pending)
            offset = record.end_offset
            row += 1
            if len(batch) >= self.settings.parallel_rows * ROWS_PER_THREAD:
                self._settle(batch, retry, begun, chunk)
                batch = []
            if len(chunk.outcomes) + len(chunk.rejects) >= MARKER_FLUSH_ROWS:
                self._flush(job, chunk)
        else:
            # The limit is reached: a file that ends right here is done all the same.
            eof = next(iter(self.storage.read_from(job.object_key, offset)), None) is None
        self._settle(batch, retry, begun, chunk)
        self._flush(job, chunk)
        next_row = row
        self.queue.send(
            self.settings.queue_url, ImportChunk(import_id=job.id, next_row=next_row).model_dump()
        )
        if not self.repository.checkpoint(job.id, job.next_row, token, next_row, offset, chunk.counts, eof):
            raise RetryableError("This chunk's lease was lost; its retry counts it")
        elapsed = time.monotonic() - started
        logger.info(
            "Import chunk done",
            extra={"import_id": job.id, "rows": sum(chunk.counts.values()), "seconds": round(elapsed, 2)},
        )
        metrics.add_metric(name="ImportRows", unit="Count", value=sum(chunk.counts.values()))
        return eof

    def _header(self, job: ImportJob, token: str, stream: Iterator[Record]) -> tuple[builtins.list[str], int]:
        first = next(stream, None)
        if first is None:
            raise PermanentFailure("file: empty (a header row naming the columns is needed)")
        if first.cells is None:
            raise PermanentFailure(f"columns: the header row cannot be read ({first.problem})")
        header = HeaderMap(first.cells)
        if header.missing:
            raise PermanentFailure(
                "columns: the header must name first_name, last_name and email "
                f"(missing: {', '.join(header.missing)})"
            )
        if not self.repository.set_columns(job.id, token, header.columns, first.end_offset):
            raise RetryableError("This chunk's lease was lost")
        return header.columns, first.end_offset

    @staticmethod
    def _prepare(
        job: ImportJob, header: HeaderMap, record: Record, row: int, marker: dict[str, Any] | None
    ) -> "_Pending":
        """What a row needs: nothing (empty), a rejection, the outcome its marker kept, or a capture."""
        if record.cells is None:
            reason = record.problem or "row: unreadable"
            return _Pending(row, reject=RejectedRow(row_number=row, values={}, reason=reason))
        if not any(cell.strip() for cell in record.cells):
            return _Pending(row)  # a spreadsheet's trailing commas: nothing to import, nothing to count
        try:
            submission = header.submission(record.cells, job.default_source, job.requested_by)
        except RowRejected as exc:
            values = header.values(record.cells)
            return _Pending(row, reject=RejectedRow(row_number=row, values=values, reason=exc.reason))
        if marker is not None and marker.get("outcome") in (RowOutcome.CREATED, RowOutcome.MERGED):
            lead_id = str(marker["lead_id"]) if marker.get("lead_id") else None
            return _Pending(
                row, email=submission.email, outcome=RowOutcome(str(marker["outcome"])), lead_id=lead_id
            )
        return _Pending(row, email=submission.email, submission=submission)

    def _settle(self, batch: "builtins.list[_Pending]", retry: bool, begun: datetime, chunk: _Chunk) -> None:
        """Capture the batch's rows at once (distinct emails), then count them in file order."""
        captures = [pending for pending in batch if pending.submission is not None]
        if len(captures) == 1:
            self._capture(captures[0], retry, begun, chunk.leads)
        elif captures:
            known = frozenset(chunk.leads)
            list(self._pool.map(lambda pending: self._capture(pending, retry, begun, known), captures))
        for pending in batch:
            if pending.reject is not None:
                self._reject(chunk, pending.reject)
            elif pending.outcome is not None:
                if pending.lead_id:
                    chunk.leads.add(pending.lead_id)
                chunk.counts[pending.outcome] += 1
                chunk.outcomes.append((pending.row, pending.outcome, pending.lead_id))

    def _capture(self, pending: "_Pending", retry: bool, begun: datetime, known: Collection[str]) -> None:
        assert pending.submission is not None
        if retry and (found := self._captured_by_failed_attempt(pending.submission.email, begun, known)):
            pending.outcome, pending.lead_id = RowOutcome.CREATED, found
            return
        result = self.capture.capture(pending.submission)
        pending.outcome = RowOutcome.CREATED if result.created else RowOutcome.MERGED
        pending.lead_id = result.lead_id

    @cached_property
    def _pool(self) -> ThreadPoolExecutor:
        return ThreadPoolExecutor(self.settings.parallel_rows, thread_name_prefix="import-row")

    def _captured_by_failed_attempt(self, email: str, begun: datetime, known: Collection[str]) -> str | None:
        """The lead a failed attempt at this chunk created for this row, if it did (see the module doc)."""
        lead_id = self.leads.find_id_by_email(email)
        if lead_id is None or lead_id in known:
            return None
        lead = self.leads.get(lead_id)
        return lead_id if lead is not None and lead.created_at >= begun else None

    @staticmethod
    def _reject(chunk: _Chunk, rejected: RejectedRow) -> None:
        chunk.counts[RowOutcome.REJECTED] += 1
        chunk.rejects.append(rejected)

    def _flush(self, job: ImportJob, chunk: _Chunk) -> None:
        if chunk.outcomes or chunk.rejects:
            self.repository.write_rows(job.id, chunk.outcomes, chunk.rejects, self.now())
            chunk.outcomes = []
            chunk.rejects = []

    def _finish(self, job: ImportJob) -> None:
        """Every row is counted: write the rejected rows' file (if any) and complete the import, once."""
        key = None
        if job.rejected:
            key = rejects_key(job.id)
            self.storage.put_file(key, self._rejects_file(job), f"rejected-{job.filename}")
        if self.repository.complete(job.id, key, self.now()):
            logger.info(
                "Import completed",
                extra={
                    "import_id": job.id,
                    "rows_created": job.created,
                    "rows_merged": job.merged,
                    "rows_rejected": job.rejected,
                },
            )

    def _rejects_file(self, job: ImportJob) -> Any:
        """The rejected rows as CSV (UTF-8 with BOM): the original columns, then row_number and reason."""
        spool = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)  # noqa: SIM115 - returned open
        text = io.TextIOWrapper(spool, encoding="utf-8", newline="")
        columns = list(dict.fromkeys(job.columns or []))
        writer = csv.writer(text)
        text.write("\ufeff")
        writer.writerow([*columns, "row_number", "reason"])
        for rejected in self.repository.rejected_rows(job.id):
            writer.writerow(
                [*(rejected.values.get(c, "") for c in columns), rejected.row_number, rejected.reason]
            )
        text.flush()
        text.detach()
        spool.seek(0)
        return spool


def _is_sort_key(position: str) -> bool:
    moment, _, import_id = position.rpartition("#")
    return bool(moment) and RECORD_ID.match(import_id) is not None
