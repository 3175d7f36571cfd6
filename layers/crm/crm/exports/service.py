"""CSV exports of leads: asked for over HTTP, written by a job of SQS messages, one S3 multipart part each.

`request` checks the filters as `GET /leads` would (a combination no index serves is a 400 now, not a
failed job later), writes the job and queues its first part. `process_page` writes one part:

1. it takes the job's lease for exactly the part the checkpoint names as next (a message for a part
   already written, a redelivery, only makes sure the step after it happened; one for a part another
   worker is writing is retried later);
2. reads pages of the list the requester would see, with the same plan and filters as `GET /leads`, from
   the checkpoint's sort key on, encoding rows until the part holds `part_bytes` (S3 wants 5 MiB for every
   part but the last) or the list ends; only one part's bytes are ever in memory;
3. uploads the part under its number (a part written again replaces itself), then checkpoints in one
   conditional write: the part's ETag, the rows, the sort key the next part starts after, and gives the
   lease back. A crash before the checkpoint leaves the job where it was: the part is written again, from
   the same place, and its rows are counted once;
4. queues the next part, or, after the last one, completes the multipart upload and the job.

A job that cannot succeed (its upload gone, the file refused) is marked `failed` with the reason.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from crm.exports.csv_rows import HEADER, encode_rows
from crm.exports.model import (
    ExportFilters,
    ExportJob,
    ExportPage,
    ExportState,
    Requester,
    UploadedPart,
    file_name,
)
from crm.exports.repository import EXPORT_RETENTION, ExportJobRepository
from crm.exports.storage import ExportStorage
from crm.leads.model import Lead
from crm.platform import clock
from crm.platform.auth import Principal, Role
from crm.platform.cursor import CursorCodec, fingerprint
from crm.platform.errors import Forbidden, NotFound, PermanentFailure, RetryableError
from crm.platform.ids import RECORD_ID, new_id
from crm.platform.observability import logger
from crm.platform.queues import MessagePublisher
from crm.queries.lists import LeadListQuery


class LeadPages(Protocol):
    """The leads a caller may list, a page at a time (crm.queries.service.LeadQueryService)."""

    def check_query(
        self, principal: Principal, query: LeadListQuery, q: str | None, others: list[str]
    ) -> None:
        """Refuse what `GET /leads` refuses: filters no index serves together, a short or combined `q`."""

    def page_after(
        self, principal: Principal, query: LeadListQuery, q: str | None, after: str | None
    ) -> tuple[list[Lead], str | None]:
        """A page of the list strictly after the sort key `after`, and the key to go on from (None: end)."""


@dataclass(frozen=True)
class ExportSettings:
    queue_url: str
    page_size: int = 100
    part_bytes: int = 5 * 1024 * 1024  # the smallest part S3 takes: the least work per message
    link_seconds: int = 3600
    lease_seconds: int = 360


@dataclass(frozen=True)
class ExportList:
    jobs: list[ExportJob]
    next_cursor: str | None


@dataclass(frozen=True)
class DownloadLink:
    url: str
    expires_at: datetime


def may_export(principal: Principal) -> bool:
    return bool(principal.roles & {Role.ADMIN, Role.MANAGER})


def _require_exporter(principal: Principal) -> None:
    if not may_export(principal):
        raise Forbidden("Only managers and admins may export leads")


class ExportService:
    def __init__(  # noqa: PLR0917 - built once, in crm.bootstrap
        self,
        repository: ExportJobRepository,
        storage: ExportStorage,
        pages: LeadPages,
        publisher: MessagePublisher,
        cursors: CursorCodec,
        settings: ExportSettings,
        now: Callable[[], datetime] = clock.now,
    ) -> None:
        self.repository = repository
        self.storage = storage
        self.pages = pages
        self.publisher = publisher
        self.cursors = cursors
        self.settings = settings
        self.now = now

    # ------------------------------------------------------------------ asking and reading
    def request(self, principal: Principal, filters: ExportFilters, sent: list[str]) -> ExportJob:
        """A new export of the leads `principal` may list with these filters; `sent` names the list
        filters sent beside `q` (search stands alone)."""
        _require_exporter(principal)
        self.pages.check_query(principal, filters.to_query(self.settings.page_size), filters.q, sent)
        export_id = new_id()
        now = self.now()
        job = ExportJob(
            id=export_id,
            requester=Requester.of(principal),
            requested_by=principal.actor,
            filters=filters,
            created_at=now,
            object_key=f"exports/{now.strftime('%Y/%m/%d')}/{export_id}.csv",
        )
        self.repository.create(job)
        self._queue(job.id, 1)
        logger.info("Export requested", extra={"export_id": job.id})
        return job

    def get(self, principal: Principal, export_id: str) -> ExportJob:
        """The export, for its requester or an admin (anyone else: 404, as if there were none)."""
        _require_exporter(principal)
        job = self.repository.get(export_id) if RECORD_ID.match(export_id) else None
        if job is None or not (Role.ADMIN in principal.roles or job.requester.subject == principal.subject):
            raise NotFound(f"No export {export_id}")
        return job

    def list(self, principal: Principal, limit: int, cursor: str | None) -> ExportList:
        """The caller's exports (an admin: everyone's), newest first, a page at a time."""
        _require_exporter(principal)
        requester = None if Role.ADMIN in principal.roles else principal.subject
        query_fingerprint = fingerprint(
            kind="exports", subject=principal.subject, requester=requester, limit=limit
        )
        after = self.cursors.decode(cursor, query_fingerprint) if cursor else None
        found = self.repository.page(requester, limit, after)
        page = found[:limit]
        more = len(found) > limit
        return ExportList(
            [job for _, job in page], self.cursors.encode(page[-1][0], query_fingerprint) if more else None
        )

    def download_link(self, job: ExportJob) -> DownloadLink | None:
        """A presigned GET of a completed export's file, while the file is kept."""
        if job.state is not ExportState.COMPLETED:
            return None
        now = self.now()
        kept_until = job.created_at + EXPORT_RETENTION
        seconds = min(self.settings.link_seconds, int((kept_until - now).total_seconds()))
        if seconds <= 0:
            return None
        url = self.storage.download_url(job.object_key, file_name(job), seconds)
        return DownloadLink(url, now + timedelta(seconds=seconds))

    # ------------------------------------------------------------------ the job
    def _queue(self, export_id: str, part: int) -> None:
        page = ExportPage(export_id=export_id, part=part)
        self.publisher.send(self.settings.queue_url, page.model_dump())

    def process_page(self, page: ExportPage) -> None:
        job = self.repository.get(page.export_id)
        if job is None:
            raise PermanentFailure(f"No export job {page.export_id}")
        try:
            self._process(job, page.part)
        except PermanentFailure as exc:
            self.repository.fail(job.id, str(exc), self.now())
            logger.warning("Export failed", extra={"export_id": job.id, "part": page.part})
            raise

    def _process(self, job: ExportJob, part: int) -> None:
        if job.finished or part > job.next_part:
            return  # done, or a part nobody queued yet
        if part < job.next_part:
            self._carry_on(job)  # a redelivery: the part is counted; make sure what follows happened
            return
        token = new_id()
        now = self.now()
        until = now + timedelta(seconds=self.settings.lease_seconds)
        if not self.repository.take_lease(job.id, part, token, now, until):
            current = self.repository.get(job.id)
            if current is not None and (current.finished or current.next_part > part):
                self._carry_on(current)
                return
            raise RetryableError(f"Part {part} of export {job.id} is being written; retry later")
        try:
            self._write_part(job, part, token)
        except PermanentFailure:
            raise
        except Exception:
            self.repository.release_lease(job.id, token)
            raise
        current = self.repository.get(job.id)
        if current is not None:
            self._carry_on(current)

    def _write_part(self, job: ExportJob, part: int, token: str) -> None:
        upload_id = job.upload_id
        if upload_id is None:
            upload_id = self.storage.start_upload(job.object_key, file_name(job))
            if not self.repository.set_upload(job.id, token, upload_id):
                raise RetryableError(f"Export {job.id} changed hands while starting its upload")
        principal = job.requester.principal()
        query = job.filters.to_query(self.settings.page_size)
        buffer = bytearray(HEADER if part == 1 else b"")
        rows, after, last = 0, job.after, False
        while len(buffer) < self.settings.part_bytes:
            leads, after = self.pages.page_after(principal, query, job.filters.q, after)
            buffer += encode_rows(leads)
            rows += len(leads)
            if after is None:
                last = True
                break
        uploaded = None
        if buffer:
            etag = self.storage.upload_part(job.object_key, upload_id, part, buffer)  # no copy of the part
            uploaded = UploadedPart(number=part, etag=etag)
        if not self.repository.checkpoint(job.id, part, token, uploaded, rows, after, last):
            raise RetryableError(f"Export {job.id} changed hands while writing part {part}")
        logger.info(
            "Export part written",
            extra={"export_id": job.id, "part": part, "rows": rows, "bytes": len(buffer), "last": last},
        )

    def _carry_on(self, job: ExportJob) -> None:
        """What follows a counted part: the next part's message, or the file's completion (both safe to
        repeat: a message sent twice finds its part counted, a completed upload is left as it is)."""
        if job.finished:
            return
        if job.listing_done:
            if job.upload_id is None:
                raise PermanentFailure(f"Export {job.id} has no upload to complete")
            self.storage.complete_upload(job.object_key, job.upload_id, job.parts)
            if self.repository.complete(job.id, self.now()):
                logger.info("Export completed", extra={"export_id": job.id, "rows": job.rows_written})
        elif job.queued_part < job.next_part:
            self._queue(job.id, job.next_part)
            self.repository.mark_queued(job.id, job.next_part)
