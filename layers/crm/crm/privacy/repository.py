"""Data access for a person's data: finding every item that holds it, erasing them, erasure jobs, audit.

    erasure job    PK=PRIVACY#<job id>   SK=JOB               (no personal data: the email's keyed hash)
    page marker    PK=PRIVACY#<job id>   SK=PAGE#<lead id>    (what the page found; counted once)
    audit record   PK=PRIVACYAUDIT#<yyyy-mm>   SK=<at>#<job or export id>
    suppression    PK=SUPPRESSION#<hash> SK=SUPPRESSION       (crm.leads.suppression)

Where a person's data sits, for one lead (docs/data-model.md has every key):

- the lead's partition `LEAD#<id>`: the lead, its activities (merge diffs, chat transcripts), the score
  ledger (matched values), behavioural event claims, the routing marker, the load claim, notification and
  nurture deliveries, the nurture enrollment, the speed-to-lead timer;
- `EMAIL#<email>`: the email claim; `TASK#<id>` (GSI3 `LEADTASKS#<lead id>`): its tasks;
- `SEARCHDOC#<id>` and the `SEARCH#…` token items it lists;
- `IDEMPOTENCY#capture` records whose stored answer names the lead;
- if converted: `CONTACT#<id>` and the name of `DEAL#<id>`.

Analytics counters and change markers (`STATS#…`, `SPEED#…`, `STATSMARK#<lead id>`) hold counts and
sequence numbers only: they stay, so dashboards keep their numbers.
"""

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from crm.leads.index import STATUS_BY_CREATED, status_pk
from crm.leads.repository import email_key, lead_key
from crm.leads.suppression import stored_suppression, suppression_key
from crm.platform import clock
from crm.platform.dynamo import (
    TableRepository,
    cancellation_codes,
    error_code,
    marshal,
    translate,
)
from crm.platform.errors import RetryableError
from crm.privacy.model import ErasureJob, ErasureState, Inventory, PageMarker

MAX_ATTEMPTS = 5
AUDIT_RETENTION = timedelta(days=3 * 365)
# Items of a lead's partition whose removal needs more than a delete (the load claim moves a counter).
LOAD_SK = "LOAD"
IDEMPOTENCY_PK = "IDEMPOTENCY#capture"


def job_key(job_id: str) -> dict[str, str]:
    return {"PK": f"PRIVACY#{job_id}", "SK": "JOB"}


def page_key(job_id: str, lead_id: str) -> dict[str, str]:
    return {"PK": f"PRIVACY#{job_id}", "SK": f"PAGE#{lead_id}"}


def audit_key(at: datetime, record_id: str) -> dict[str, str]:
    moment = clock.isoformat(at)
    return {"PK": f"PRIVACYAUDIT#{moment[:7]}", "SK": f"{moment}#{record_id}"}


def _kind(item: dict[str, Any]) -> str:
    return str(item.get("entity") or "item")


class PrivacyRepository(TableRepository):
    # ------------------------------------------------------------------ reads
    def lead_id_by_email(self, email: str) -> str | None:
        claim = self._get_item(email_key(email))
        return str(claim["lead_id"]) if claim and claim.get("lead_id") else None

    def lead_partition(self, lead_id: str) -> list[dict[str, Any]]:
        return self._query_pages(
            {
                "KeyConditionExpression": "PK = :pk",
                "ExpressionAttributeValues": marshal({":pk": lead_key(lead_id)["PK"]}),
                "ConsistentRead": True,
            }
        )

    def lead_tasks(self, lead_id: str) -> list[dict[str, Any]]:
        return self._query_pages(
            {
                "IndexName": "GSI3",
                "KeyConditionExpression": "GSI3PK = :pk",
                "ExpressionAttributeValues": marshal({":pk": f"LEADTASKS#{lead_id}"}),
            }
        )

    def tasks(self, lead_id: str) -> list[dict[str, Any]]:
        """The lead's task items as stored (the index may lag: each is read by its key)."""
        found = []
        for entry in self.lead_tasks(lead_id):
            item = self._get_item({"PK": str(entry["PK"]), "SK": str(entry["SK"])})
            if item is not None:
                found.append(item)
        return found

    def search_manifest(self, lead_id: str) -> dict[str, Any] | None:
        return self._get_item({"PK": f"SEARCHDOC#{lead_id}", "SK": "SEARCHDOC"})

    def idempotency_records(self, lead_id: str) -> list[dict[str, Any]]:
        """Stored capture answers that name the lead (the partition expires with its TTL, 24 h by default)."""
        return self._query_pages(
            {
                "KeyConditionExpression": "PK = :pk",
                "FilterExpression": "contains(#data, :lead)",
                "ExpressionAttributeNames": {"#data": "data"},
                "ExpressionAttributeValues": marshal({":pk": IDEMPOTENCY_PK, ":lead": lead_id}),
                "ProjectionExpression": "PK, SK",
            }
        )

    def get_record(self, pk: str, sk: str) -> dict[str, Any] | None:
        return self._get_item({"PK": pk, "SK": sk})

    def inventory(self, lead_id: str, include_converted: bool) -> Inventory:
        """Every item holding something of the lead's person, read now."""
        partition = self.lead_partition(lead_id)
        lead = next((item for item in partition if item.get("SK") == "LEAD"), None)
        keys: list[tuple[dict[str, str], str]] = [
            ({"PK": str(item["PK"]), "SK": str(item["SK"])}, _kind(item)) for item in partition
        ]
        if lead is not None and self._get_item(email_key(str(lead["email"]))) is not None:
            keys.append((email_key(str(lead["email"])), "email_claim"))
        keys += [({"PK": str(t["PK"]), "SK": str(t["SK"])}, "task") for t in self.lead_tasks(lead_id)]
        manifest = self.search_manifest(lead_id)
        if manifest is not None:
            keys += [
                ({"PK": str(pk), "SK": str(sk)}, "search_token") for pk, sk in manifest.get("keys") or []
            ]
            keys.append(({"PK": str(manifest["PK"]), "SK": "SEARCHDOC"}, "search_doc"))
        keys += [
            ({"PK": str(r["PK"]), "SK": str(r["SK"])}, "idempotency_record")
            for r in self.idempotency_records(lead_id)
        ]
        contact_id = str(lead["contact_id"]) if lead and lead.get("contact_id") else None
        deal_id = str(lead["deal_id"]) if lead and lead.get("deal_id") else None
        kept = False
        if contact_id and include_converted:
            if self._get_item({"PK": f"CONTACT#{contact_id}", "SK": "CONTACT"}) is not None:
                keys.append(({"PK": f"CONTACT#{contact_id}", "SK": "CONTACT"}, "contact"))
            if deal_id and self._get_item({"PK": f"DEAL#{deal_id}", "SK": "DEAL"}) is not None:
                keys.append(({"PK": f"DEAL#{deal_id}", "SK": "DEAL"}, "deal"))
        elif contact_id:
            kept = True
        return Inventory(
            lead=lead,
            keys=keys,
            contact_id=contact_id if include_converted else None,
            deal_id=deal_id if include_converted else None,
            contact_kept=kept,
        )

    # ------------------------------------------------------------------ erasing
    def erase_lead_item(self, lead_id: str) -> bool:
        """Delete the lead and its email claim in one transaction, conditional on the version read (a
        concurrent change reads again). False: there was no lead (erased before, or never)."""
        for _ in range(MAX_ATTEMPTS):
            lead = self._get_item(lead_key(lead_id))
            if lead is None:
                return False
            operations: list[Any] = [
                {
                    "Delete": {
                        "TableName": self.table_name,
                        "Key": marshal(lead_key(lead_id)),
                        "ConditionExpression": "#version = :version",
                        "ExpressionAttributeNames": {"#version": "version"},
                        "ExpressionAttributeValues": marshal({":version": lead["version"]}),
                    }
                },
                {
                    "Delete": {
                        "TableName": self.table_name,
                        "Key": marshal(email_key(str(lead["email"]))),
                        "ConditionExpression": "attribute_not_exists(PK) OR lead_id = :lead",
                        "ExpressionAttributeValues": marshal({":lead": lead_id}),
                    }
                },
            ]
            try:
                self.client.transact_write_items(TransactItems=operations)
            except ClientError as exc:
                if error_code(exc) != "TransactionCanceledException":
                    raise translate(exc) from exc
                codes = cancellation_codes(exc)
                if codes[1:2] == ["ConditionalCheckFailed"]:
                    # The email claim names another lead: leave it, delete the lead alone.
                    operations.pop()
                    try:
                        self.client.transact_write_items(TransactItems=operations)
                    except ClientError as again:
                        if error_code(again) not in ("TransactionCanceledException",):
                            raise translate(again) from again
                        continue
                    return True
                continue  # changed meanwhile (or a conflict): read again
            return True
        raise RetryableError("The lead keeps changing; its erasure is tried again")

    def release_load_claim(self, lead_id: str) -> bool:
        """Delete the lead's load claim and take the lead off its rep's open-lead counter, in one
        transaction (the claim conditional on naming that rep). False: no claim."""
        for _ in range(MAX_ATTEMPTS):
            claim = self._get_item({"PK": f"LEAD#{lead_id}", "SK": LOAD_SK})
            if claim is None:
                return False
            user = str(claim["user"])
            operations: list[Any] = [
                {
                    "Delete": {
                        "TableName": self.table_name,
                        "Key": marshal({"PK": f"LEAD#{lead_id}", "SK": LOAD_SK}),
                        "ConditionExpression": "#user = :user",
                        "ExpressionAttributeNames": {"#user": "user"},
                        "ExpressionAttributeValues": marshal({":user": user}),
                    }
                },
                {
                    "Update": {
                        "TableName": self.table_name,
                        "Key": marshal({"PK": f"USER#{user}", "SK": LOAD_SK}),
                        "UpdateExpression": "ADD open_leads :minus",
                        "ConditionExpression": "attribute_exists(PK)",
                        "ExpressionAttributeValues": marshal({":minus": -1}),
                    }
                },
            ]
            try:
                self.client.transact_write_items(TransactItems=operations)
            except ClientError as exc:
                if error_code(exc) != "TransactionCanceledException":
                    raise translate(exc) from exc
                if cancellation_codes(exc)[1:2] == ["ConditionalCheckFailed"]:
                    # No counter item for that rep: the claim alone goes.
                    self.delete_keys([{"PK": f"LEAD#{lead_id}", "SK": LOAD_SK}])
                    return True
                continue
            return True
        raise RetryableError("The lead's load claim keeps moving; its erasure is tried again")

    def delete_keys(self, keys: Iterable[dict[str, str]]) -> None:
        """Delete items by key (BatchWriteItem, 25 at a time; unprocessed ones are sent again)."""
        unique = {(k["PK"], k["SK"]): k for k in keys}
        self._batch_write(
            deletes=list(unique.values()), busy="Some items could not be erased yet; the page is tried again"
        )

    def strip_deal(self, deal_id: str) -> None:
        """A converted person's deal stays (amount, stage: the company's business); its name, which may
        carry the person's, becomes neutral."""
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=marshal({"PK": f"DEAL#{deal_id}", "SK": "DEAL"}),
                UpdateExpression="SET #name = :name",
                ConditionExpression="attribute_exists(PK)",
                ExpressionAttributeNames={"#name": "name"},
                ExpressionAttributeValues=marshal({":name": f"Deal {deal_id[:8]} (person erased)"}),
            )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise translate(exc) from exc

    def inactive_leads(self, cutoff: datetime, statuses: Iterable[str], limit: int) -> list[str]:
        """Leads in these statuses captured before `cutoff`, not changed since and with no activity since
        (the status index, every shard, created before the cutoff; then each lead's `updated_at` by key,
        and the newest activity of each)."""
        moment = clock.isoformat(cutoff)
        found: list[str] = []
        index = STATUS_BY_CREATED
        for status in statuses:
            for shard in range(self.shards):
                entries = self._query_pages(
                    {
                        "IndexName": index.name,
                        "KeyConditionExpression": f"{index.pk} = :pk AND {index.sk} < :cutoff",
                        "ExpressionAttributeValues": marshal(
                            {":pk": status_pk(status, shard), ":cutoff": moment}
                        ),
                    }
                )
                updated = {
                    str(item["id"]): str(item.get("updated_at", ""))
                    for item in self._get_many([lead_key(str(entry["id"])) for entry in entries])
                }
                for entry in entries:
                    lead_id = str(entry["id"])
                    if updated.get(lead_id, moment) >= moment or self._active_since(lead_id, moment):
                        continue  # gone, changed or active since the cutoff
                    found.append(lead_id)
                    if len(found) >= limit:
                        return found
        return found

    def _active_since(self, lead_id: str, moment: str) -> bool:
        try:
            response = self.client.query(
                TableName=self.table_name,
                KeyConditionExpression="PK = :pk AND SK BETWEEN :from AND :to",
                ExpressionAttributeValues=marshal(
                    {":pk": f"LEAD#{lead_id}", ":from": f"ACTIVITY#{moment}", ":to": "ACTIVITY#\uffff"}
                ),
                Limit=1,
                ProjectionExpression="PK",
            )
        except ClientError as exc:
            raise translate(exc) from exc
        return bool(response.get("Items"))

    def create_plain_job(self, job: ErasureJob) -> tuple[ErasureJob, bool]:
        """A job that suppresses no one (retention): written once; the one with this id otherwise."""
        item = {**job_key(job.id), "entity": "erasure_job", **job.model_dump(mode="json", exclude_none=True)}
        if self._put_if_absent(item):
            return job, True
        existing = self.get_job(job.id)
        if existing is None:
            raise RetryableError("The retention job could not be read; try again")
        return existing, False

    # ------------------------------------------------------------------ jobs
    def create_job(self, job: ErasureJob, now: datetime) -> ErasureJob | None:
        """Write the job and mark the person suppressed, in one transaction, unless an erasure of the same
        person is already running: then None (the caller answers with that one)."""
        item = {**job_key(job.id), "entity": "erasure_job", **job.model_dump(mode="json", exclude_none=True)}
        suppression = stored_suppression(job.email_hash, job.id, now)
        names = {f"#{name}": name for name in suppression}
        values = {f":{name}": value for name, value in suppression.items()}
        sets = ", ".join(f"#{name} = :{name}" for name in suppression)
        operations: list[Any] = [
            {
                "Put": {
                    "TableName": self.table_name,
                    "Item": marshal(item),
                    "ConditionExpression": "attribute_not_exists(PK)",
                }
            },
            {
                "Update": {
                    "TableName": self.table_name,
                    "Key": marshal(suppression_key(job.email_hash)),
                    "UpdateExpression": f"SET {sets}, active_job = :job REMOVE fresh_consent",
                    "ConditionExpression": "attribute_not_exists(active_job)",
                    "ExpressionAttributeNames": names,
                    "ExpressionAttributeValues": marshal({**values, ":job": job.id}),
                }
            },
        ]
        try:
            self.client.transact_write_items(TransactItems=operations)
        except ClientError as exc:
            if error_code(exc) != "TransactionCanceledException":
                raise translate(exc) from exc
            if cancellation_codes(exc)[1:2] == ["ConditionalCheckFailed"]:
                return None
            raise RetryableError("The erasure could not be recorded; try again") from exc
        return job

    def active_job_id(self, hashed: str) -> str | None:
        item = self._get_item(suppression_key(hashed))
        return str(item["active_job"]) if item and item.get("active_job") else None

    def get_job(self, job_id: str) -> ErasureJob | None:
        item = self._get_item(job_key(job_id))
        return ErasureJob.model_validate(item) if item else None

    def start_job(self, job_id: str) -> None:
        self._conditional_update(
            job_key(job_id),
            "SET #state = :running",
            "#state = :queued",
            {":running": ErasureState.RUNNING.value, ":queued": ErasureState.QUEUED.value},
        )

    def page_marker(self, job_id: str, lead_id: str) -> PageMarker | None:
        item = self._get_item(page_key(job_id, lead_id))
        return PageMarker.model_validate(item) if item else None

    def claim_page(self, job_id: str, lead_id: str, inventory: Inventory, now: datetime) -> PageMarker:
        """Record what the page found, once: a redelivery (or a crash and a retry) finds the first count."""
        marker = PageMarker(
            state="listed",
            counts=inventory.counts(),
            contact_id=inventory.contact_id,
            deal_id=inventory.deal_id,
            contact_kept=inventory.contact_kept,
        )
        item = {
            **page_key(job_id, lead_id),
            "entity": "erasure_page",
            "ttl": int((now + AUDIT_RETENTION).timestamp()),
            **marker.model_dump(exclude_none=True),
        }
        if self._put_if_absent(item):
            return marker
        existing = self.page_marker(job_id, lead_id)
        if existing is None:
            raise RetryableError("The erasure page could not be read; try again")
        return existing

    def finish_page(self, job_id: str, lead_id: str, marker: PageMarker) -> bool:
        """Count a page into the job once (marker listed → done, and the job's counters added to)."""
        sets: list[str] = []
        names: dict[str, str] = {}
        values: dict[str, Any] = {":one": 1, ":zero": 0}
        for index, (kind, count) in enumerate(sorted(marker.counts.items())):
            names[f"#k{index}"] = kind
            values[f":k{index}"] = count
            sets.append(f"erased.#k{index} = if_not_exists(erased.#k{index}, :zero) + :k{index}")
        adds = ["pages_done :one"]
        if marker.counts.get("lead"):
            adds.append("leads_erased :one")
        if marker.contact_kept:
            adds.append("contacts_kept :one")
        update = ("SET " + ", ".join(sets) + " " if sets else "") + "ADD " + ", ".join(adds)
        job_update: dict[str, Any] = {
            "TableName": self.table_name,
            "Key": marshal(job_key(job_id)),
            "UpdateExpression": update,
            "ExpressionAttributeValues": marshal(values),
        }
        if names:
            job_update["ExpressionAttributeNames"] = names
        try:
            self.client.transact_write_items(
                TransactItems=[
                    {
                        "Update": {
                            "TableName": self.table_name,
                            "Key": marshal(page_key(job_id, lead_id)),
                            "UpdateExpression": "SET #state = :done",
                            "ConditionExpression": "#state = :listed",
                            "ExpressionAttributeNames": {"#state": "state"},
                            "ExpressionAttributeValues": marshal({":done": "done", ":listed": "listed"}),
                        }
                    },
                    {"Update": job_update},  # type: ignore[typeddict-item]
                ]
            )
        except ClientError as exc:
            if error_code(exc) != "TransactionCanceledException":
                raise translate(exc) from exc
            if cancellation_codes(exc)[:1] == ["ConditionalCheckFailed"]:
                return False
            raise RetryableError("The erasure page could not be counted; try again") from exc
        return True

    def finish_job_if_complete(self, job_id: str, now: datetime) -> bool:
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=marshal(job_key(job_id)),
                UpdateExpression="SET #state = :completed, completed_at = :now",
                ConditionExpression=(
                    "#state IN (:queued, :running) AND "
                    "(size(lead_ids) = :zero OR pages_done >= size(lead_ids))"
                ),
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues=marshal(
                    {
                        ":completed": ErasureState.COMPLETED.value,
                        ":queued": ErasureState.QUEUED.value,
                        ":running": ErasureState.RUNNING.value,
                        ":now": clock.isoformat(now),
                        ":zero": 0,
                    }
                ),
            )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise translate(exc) from exc
            return False
        return True

    def release_person(self, hashed: str, job_id: str) -> None:
        """The person's erasure is over: a new request starts a new job."""
        self._conditional_update(
            suppression_key(hashed), "REMOVE active_job", "active_job = :job", {":job": job_id}
        )

    def record_audit(self, record_id: str, at: datetime, record: dict[str, Any]) -> None:
        """One audit item per erasure and per export (written once: a retry finds it)."""
        item = {
            **audit_key(at, record_id),
            "entity": "privacy_audit",
            "id": record_id,
            "ttl": int((at + AUDIT_RETENTION).timestamp()),
            **{k: clock.isoformat(v) if isinstance(v, datetime) else v for k, v in record.items()},
        }
        self._put_if_absent(item)  # a retry finds it written

    def audit_records(self, month: str) -> list[dict[str, Any]]:
        return self._query_pages(
            {
                "KeyConditionExpression": "PK = :pk",
                "ExpressionAttributeValues": marshal({":pk": f"PRIVACYAUDIT#{month}"}),
            }
        )

    def _conditional_update(
        self, key: dict[str, str], update: str, condition: str, values: dict[str, Any]
    ) -> bool:
        request: dict[str, Any] = {
            "UpdateExpression": update,
            "ConditionExpression": condition,
            "ExpressionAttributeValues": marshal(values),
        }
        if "#state" in update + condition:
            request["ExpressionAttributeNames"] = {"#state": "state"}
        return self._update_if(key, **request)


def plain(item: dict[str, Any]) -> dict[str, Any]:
    """An item without its table and index keys (what an export shows)."""
    hidden = {"PK", "SK", "GSI1PK", "GSI1SK", "GSI2PK", "GSI2SK", "GSI3PK", "GSI3SK", "ttl", "written_by"}
    return {k: v for k, v in item.items() if k not in hidden and not k.endswith(("PK", "SK"))}
