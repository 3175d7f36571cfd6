"""A person's data on request: erasure (an asynchronous job of SQS pages) and export.

Erasure (`POST /privacy/erasures`): the request finds the person's lead by its email claim, writes the job
(naming the person only by the keyed hash of the email) and marks the person suppressed, in one transaction,
and queues one page per lead (a page with no lead when nobody has that email, so the job completes with
`leads_erased: 0`). While one erasure of a person runs, another request for the same email answers with that
job (and queues its pages again, which is harmless): twenty concurrent requests erase the person once.

A page (`process_page`) is idempotent and resumable:

1. it lists everything the lead's person left (`PrivacyRepository.inventory`) and records the counts by
   kind in a page marker, once: a redelivery, or a retry after a crash, finds the first counts;
2. deletes the lead and its email claim in one transaction (conditional on the version read), takes the
   lead off its rep's open-lead counter with its load claim (one transaction), then deletes whatever the
   lead's partition, tasks, search index and idempotency records still hold, and the contact (and the
   person's name on the deal) when the job says `include_converted`; every step finds its work done when
   repeated;
3. counts the page into the job once (marker `listed` → `done`), and the job completes when every page
   is done: the person's suppression is released for a new request and the audit item written.

Export (`GET /privacy/export`) reads the same items and returns them grouped by kind, and records an audit
item. Neither logs the email: only its hash and ids.
"""

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from crm.leads.suppression import SuppressionList
from crm.platform import clock
from crm.platform.auth import Principal
from crm.platform.errors import NotFound, PermanentFailure, RetryableError
from crm.platform.ids import new_id
from crm.platform.observability import logger
from crm.platform.queues import MessagePublisher
from crm.privacy.model import ErasureJob, ErasurePage, ErasureState, audit_record
from crm.privacy.repository import PrivacyRepository, plain

MAX_ATTEMPTS = 5
RETENTION_ACTOR = "system:retention"
# Leads a daily retention run erases at most (the job lists them); the rest go the next day.
MAX_RETENTION_LEADS = 2000
# Leads that were never converted (a converted lead is a customer's record: it stays).
RETAINED_STATUSES = ("new", "contacted", "qualified", "unqualified")
_RETENTION_IDS = uuid.UUID("5b0e4f1e-2f3c-4d9a-9a51-7d3c1f0e6a11")
# Items of a lead's partition an export shows in a group of their own, by entity.
_EXPORT_GROUPS = {
    "score": "score_ledger",
    "nurture_enrollment": "nurture_enrollment",
}


class PrivacyService:
    def __init__(
        self,
        repository: PrivacyRepository,
        suppression: SuppressionList,
        publisher: MessagePublisher,
        queue_url: str,
        now: Callable[[], datetime] = clock.now,
    ) -> None:
        self.repository = repository
        self.suppression = suppression
        self.publisher = publisher
        self.queue_url = queue_url
        self.now = now

    # ------------------------------------------------------------------ erasure
    def request_erasure(
        self, email: str, reason: str, include_converted: bool, principal: Principal
    ) -> ErasureJob:
        hashed = self.suppression.hash_of(email)
        for _ in range(MAX_ATTEMPTS):
            lead_id = self.repository.lead_id_by_email(email)
            now = self.now()
            job = ErasureJob(
                id=new_id(),
                email_hash=hashed,
                reason=reason,
                include_converted=include_converted,
                requested_by=principal.actor,
                requested_at=now,
                lead_ids=[lead_id] if lead_id else [],
            )
            created = self.repository.create_job(job, now)
            if created is None:  # an erasure of this person is running: answer with it
                active_id = self.repository.active_job_id(hashed)
                existing = self.repository.get_job(active_id) if active_id else None
                if existing is None:
                    continue  # it just finished: try again
                self._enqueue(existing)
                logger.info("Erasure already running", extra={"job_id": existing.id, "email_hash": hashed})
                return existing
            self._enqueue(created)
            logger.info(
                "Erasure requested",
                extra={"job_id": job.id, "email_hash": hashed, "leads": len(job.lead_ids)},
            )
            return created
        raise RetryableError("Erasures of this person keep starting and ending; try again")

    def start_retention(self, days: int) -> ErasureJob | None:
        """The daily retention run (setting InactiveLeadRetentionDays; 0: off): one erasure job, of a fixed
        id per day (a retried run finds it), over the leads not converted and with no change or activity for
        that many days. It suppresses no one: nobody asked; their data has simply aged out."""
        if days <= 0:
            return None
        now = self.now()
        cutoff = now - timedelta(days=days)
        job_id = str(uuid.uuid5(_RETENTION_IDS, now.date().isoformat()))
        existing = self.repository.get_job(job_id)
        if existing is not None:
            if existing.state is not ErasureState.COMPLETED:
                self._enqueue(existing)
            return existing
        lead_ids = self.repository.inactive_leads(cutoff, RETAINED_STATUSES, MAX_RETENTION_LEADS)
        job = ErasureJob(
            id=job_id,
            email_hash="",
            reason=f"retention: no activity for {days} days",
            requested_by=RETENTION_ACTOR,
            requested_at=now,
            lead_ids=lead_ids,
        )
        job, _ = self.repository.create_plain_job(job)
        self._enqueue(job)
        logger.info("Retention erasure started", extra={"job_id": job.id, "leads": len(job.lead_ids)})
        return job

    def _enqueue(self, job: ErasureJob) -> None:
        pages = [ErasurePage(job_id=job.id, lead_id=lead_id) for lead_id in job.lead_ids] or [
            ErasurePage(job_id=job.id)
        ]
        self.publisher.send_many(self.queue_url, [page.model_dump(exclude_none=True) for page in pages])

    def get_job(self, job_id: str) -> ErasureJob:
        job = self.repository.get_job(job_id)
        if job is None:
            raise NotFound(f"No erasure {job_id}")
        return job

    def process_page(self, page: ErasurePage) -> None:
        job = self.repository.get_job(page.job_id)
        if job is None:
            raise PermanentFailure(f"No erasure job {page.job_id}")
        if job.state is ErasureState.QUEUED:
            self.repository.start_job(job.id)
        if page.lead_id is not None and page.lead_id in job.lead_ids:
            self._erase_lead(job, page.lead_id)
        self.repository.finish_job_if_complete(job.id, self.now())
        finished = self.repository.get_job(job.id)
        if finished is not None and finished.state is ErasureState.COMPLETED:
            self._wrap_up(finished)

    def _erase_lead(self, job: ErasureJob, lead_id: str) -> None:
        marker = self.repository.page_marker(job.id, lead_id)
        if marker is None:
            inventory = self.repository.inventory(lead_id, job.include_converted)
            marker = self.repository.claim_page(job.id, lead_id, inventory, self.now())
        if marker.state == "done":
            return  # a redelivered page: counted and erased already
        self.repository.erase_lead_item(lead_id)
        self.repository.release_load_claim(lead_id)
        rest = self.repository.inventory(lead_id, include_converted=False)
        self.repository.delete_keys(key for key, _ in rest.keys if key["SK"] != "LOAD")
        if marker.contact_id:
            self.repository.delete_keys([{"PK": f"CONTACT#{marker.contact_id}", "SK": "CONTACT"}])
        if marker.deal_id:
            self.repository.strip_deal(marker.deal_id)
        if self.repository.finish_page(job.id, lead_id, marker):
            logger.info(
                "Lead erased",
                extra={"job_id": job.id, "lead_id": lead_id, "items": sum(marker.counts.values())},
            )

    def _wrap_up(self, job: ErasureJob) -> None:
        """After the last page (again on a redelivery): free the person for a new request, audit once."""
        if job.email_hash:
            self.repository.release_person(job.email_hash, job.id)
        self.repository.record_audit(
            job.id,
            job.requested_at,
            audit_record(
                "retention" if job.requested_by == RETENTION_ACTOR else "erasure",
                job.requested_by,
                job.requested_at,
                job_id=job.id,
                email_hash=job.email_hash,
                completed_at=job.completed_at,
                leads_erased=job.leads_erased,
                contacts_kept=job.contacts_kept,
                erased=job.erased,
            ),
        )

    # ------------------------------------------------------------------ export
    def export(self, email: str, principal: Principal) -> dict[str, Any]:
        """Everything held about the person with this email, grouped by kind (empty when nobody has it)."""
        hashed = self.suppression.hash_of(email)
        export: dict[str, Any] = {
            "email_hash": hashed,
            "lead": None,
            "activities": [],
            "score_ledger": None,
            "tasks": [],
            "emails_sent": [],
            "nurture_enrollment": None,
            "consent": {},
            "contact": None,
            "deal": None,
            "other_records": [],
        }
        lead_id = self.repository.lead_id_by_email(email)
        if lead_id is not None:
            self._export_lead(lead_id, export)
        suppression = self.suppression.repository.get(hashed)
        if suppression is not None:
            export["consent"]["suppression"] = suppression.model_dump(mode="json", exclude_none=True)
        export_id = new_id()
        now = self.now()
        counts = {
            kind: (len(value) if isinstance(value, list) else int(bool(value)))
            for kind, value in export.items()
            if kind != "email_hash"
        }
        self.repository.record_audit(
            export_id,
            now,
            audit_record(
                "export", principal.actor, now, export_id=export_id, email_hash=hashed, counts=counts
            ),
        )
        logger.info("Personal data exported", extra={"export_id": export_id, "email_hash": hashed})
        return export

    def _export_lead(self, lead_id: str, export: dict[str, Any]) -> None:
        activities_by_message: dict[str, dict[str, Any]] = {}
        deliveries: list[dict[str, Any]] = []
        for item in self.repository.lead_partition(lead_id):
            entity = str(item.get("entity") or "")
            if entity == "lead":
                lead = plain(item)
                export["lead"] = lead
                export["consent"] = {
                    "marketing_consent": lead.get("marketing_consent"),
                    "do_not_email": lead.get("do_not_email", False),
                    "do_not_email_reason": lead.get("do_not_email_reason"),
                    "do_not_email_at": lead.get("do_not_email_at"),
                }
            elif entity == "activity":
                activity = plain(item)
                export["activities"].append(activity)
                message_id = (activity.get("data") or {}).get("message_id")
                if message_id:
                    activities_by_message[str(message_id)] = activity
            elif entity == "notification":
                deliveries.append(plain(item))
            elif entity in _EXPORT_GROUPS:
                export[_EXPORT_GROUPS[entity]] = plain(item)
            else:
                export["other_records"].append(plain(item))
        for delivery in deliveries:
            activity = activities_by_message.get(str(delivery.get("message_id") or ""), {})
            export["emails_sent"].append(
                {
                    "kind": delivery.get("kind"),
                    "status": delivery.get("status"),
                    "to": "the person" if delivery.get("recipient") == "lead" else "staff",
                    "subject": activity.get("description"),
                    "sent_at": activity.get("created_at") or delivery.get("updated_at"),
                    "message_id": delivery.get("message_id"),
                }
            )
        export["tasks"] = [plain(task) for task in self.repository.tasks(lead_id)]
        lead = export["lead"] or {}
        if lead.get("contact_id"):
            contact = self.repository.get_record(f"CONTACT#{lead['contact_id']}", "CONTACT")
            export["contact"] = plain(contact) if contact else None
        if lead.get("deal_id"):
            deal = self.repository.get_record(f"DEAL#{lead['deal_id']}", "DEAL")
            export["deal"] = plain(deal) if deal else None
