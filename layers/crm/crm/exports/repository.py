"""Data access for export jobs: one item per job, every step a conditional write.

Keys (docs/data-model.md): `PK = EXPORT#<id>`, `SK = JOB`; `GSI1PK = EXPORTS#<requester>` and
`GSI2PK = EXPORTS` (admins list every export), both with `<created_at>#<id>` as sort key, newest first.
The item expires (TTL) with its file: EXPORT_RETENTION after it was asked for.

The worker holds a lease on the job while it writes a part (`lease_token`, `lease_until`), taken only for
the part the checkpoint says is next; the checkpoint itself is conditional on that part and that lease.
"""

from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from crm.exports.model import ExportJob, ExportState, UploadedPart
from crm.platform import clock
from crm.platform.dynamo import TableRepository, marshal, translate, unmarshal

EXPORT_RETENTION = timedelta(days=7)  # the bucket's lifecycle rule deletes the files after as long
REQUESTER_INDEX = "GSI1"
ALL_INDEX = "GSI2"
ALL_PARTITION = "EXPORTS"
_STATES = {f":{state.value}": {"S": state.value} for state in ExportState}


def job_key(export_id: str) -> dict[str, str]:
    return {"PK": f"EXPORT#{export_id}", "SK": "JOB"}


def _sort_key(job: ExportJob) -> str:
    return f"{clock.isoformat(job.created_at)}#{job.id}"


def _value(value: Any) -> Any:
    return marshal({"v": value})["v"]


class ExportJobRepository(TableRepository):
    def create(self, job: ExportJob) -> None:
        item = {
            **job_key(job.id),
            "entity": "export_job",
            "GSI1PK": f"EXPORTS#{job.requester.subject}",
            "GSI1SK": _sort_key(job),
            "GSI2PK": ALL_PARTITION,
            "GSI2SK": _sort_key(job),
            "ttl": int((job.created_at + EXPORT_RETENTION).timestamp()),
            **job.model_dump(mode="json", exclude_none=True),
        }
        if not self._put_if_absent(item):
            raise RuntimeError(f"export id {job.id} is taken")  # a fresh UUID4: never

    def get(self, export_id: str) -> ExportJob | None:
        item = self._get_item(job_key(export_id))
        return ExportJob.model_validate(item) if item else None

    def page(self, requester: str | None, limit: int, after: str | None) -> list[tuple[str, ExportJob]]:
        """Up to `limit + 1` jobs, newest first, strictly before the sort key `after`: one requester's, or
        (requester None) everyone's."""
        index, pk_name, sk_name = (
            (ALL_INDEX, "GSI2PK", "GSI2SK") if requester is None else (REQUESTER_INDEX, "GSI1PK", "GSI1SK")
        )
        pk = ALL_PARTITION if requester is None else f"EXPORTS#{requester}"
        expression = "#pk = :pk" + (" AND #sk < :after" if after else "")
        values: dict[str, Any] = {":pk": {"S": pk}}
        if after:
            values[":after"] = {"S": after}
        try:
            response = self.client.query(
                TableName=self.table_name,
                IndexName=index,
                KeyConditionExpression=expression,
                ExpressionAttributeNames={"#pk": pk_name, "#sk": sk_name} if after else {"#pk": pk_name},
                ExpressionAttributeValues=values,
                ScanIndexForward=False,
                Limit=limit + 1,
            )
        except ClientError as exc:
            raise translate(exc) from exc
        jobs = []
        for raw in response.get("Items", []):
            item = unmarshal(raw)
            jobs.append((str(item[sk_name]), ExportJob.model_validate(item)))
        return jobs

    def _update(self, export_id: str, **request: Any) -> bool:
        return self._update_if(job_key(export_id), **request)

    def take_lease(self, export_id: str, part: int, token: str, now: datetime, until: datetime) -> bool:
        """Hold the job to write `part`: only if that part is next, the job not finished and nobody else
        holds an unexpired lease. Moves a queued job to running."""
        return self._update(
            export_id,
            UpdateExpression=(
                "SET lease_token = :token, lease_until = :until, #state = :running, "
                "started_at = if_not_exists(started_at, :now)"
            ),
            ConditionExpression=(
                "attribute_exists(PK) AND next_part = :part AND #state IN (:queued, :running) "
                "AND (attribute_not_exists(lease_until) OR lease_until < :now)"
            ),
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues={
                ":token": {"S": token},
                ":until": {"S": clock.isoformat(until)},
                ":now": {"S": clock.isoformat(now)},
                ":part": {"N": str(part)},
                ":queued": _STATES[":queued"],
                ":running": _STATES[":running"],
            },
        )

    def set_upload(self, export_id: str, token: str, upload_id: str) -> bool:
        return self._update(
            export_id,
            UpdateExpression="SET upload_id = :upload",
            ConditionExpression="lease_token = :token AND attribute_not_exists(upload_id)",
            ExpressionAttributeValues={":upload": {"S": upload_id}, ":token": {"S": token}},
        )

    def checkpoint(  # noqa: PLR0917 - one conditional write of the whole checkpoint
        self,
        export_id: str,
        part: int,
        token: str,
        uploaded: UploadedPart | None,
        rows: int,
        after: str | None,
        last: bool,
    ) -> bool:
        """Count part `part` into the job (its ETag, its rows, where the next part starts) and let the lease
        go, once: only the lease holder of that very part may."""
        sets = ["next_part = :next", "listing_done = :last"]
        values: dict[str, Any] = {
            ":part": {"N": str(part)},
            ":next": {"N": str(part + 1)},
            ":last": {"BOOL": last},
            ":token": {"S": token},
            ":rows": {"N": str(rows)},
        }
        if uploaded is not None:
            sets.append("parts = list_append(if_not_exists(parts, :empty), :uploaded)")
            values[":uploaded"] = _value([uploaded.model_dump()])
            values[":empty"] = {"L": []}
        removes = ["lease_token", "lease_until"]
        if after is None:
            removes.append("#after")
        else:
            sets.append("#after = :after")
            values[":after"] = {"S": after}
        return self._update(
            export_id,
            UpdateExpression=f"SET {', '.join(sets)} ADD rows_written :rows REMOVE {', '.join(removes)}",
            ConditionExpression="next_part = :part AND lease_token = :token",
            ExpressionAttributeNames={"#after": "after"},
            ExpressionAttributeValues=values,
        )

    def release_lease(self, export_id: str, token: str) -> None:
        """Give the lease back early (a failed attempt), so a retry need not wait for it to expire."""
        self._update(
            export_id,
            UpdateExpression="REMOVE lease_token, lease_until",
            ConditionExpression="lease_token = :token",
            ExpressionAttributeValues={":token": {"S": token}},
        )

    def mark_queued(self, export_id: str, part: int) -> None:
        self._update(
            export_id,
            UpdateExpression="SET queued_part = :part",
            ConditionExpression="queued_part < :part",
            ExpressionAttributeValues={":part": {"N": str(part)}},
        )

    def complete(self, export_id: str, now: datetime) -> bool:
        return self._update(
            export_id,
            UpdateExpression="SET #state = :completed, finished_at = :now",
            ConditionExpression="#state = :running AND listing_done = :yes",
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues={
                ":completed": _STATES[":completed"],
                ":running": _STATES[":running"],
                ":yes": {"BOOL": True},
                ":now": {"S": clock.isoformat(now)},
            },
        )

    def fail(self, export_id: str, reason: str, now: datetime) -> bool:
        return self._update(
            export_id,
            UpdateExpression="SET #state = :failed, finished_at = :now, #error = :reason "
            "REMOVE lease_token, lease_until",
            ConditionExpression="#state IN (:queued, :running)",
            ExpressionAttributeNames={"#state": "state", "#error": "error"},
            ExpressionAttributeValues={
                ":failed": _STATES[":failed"],
                ":queued": _STATES[":queued"],
                ":running": _STATES[":running"],
                ":reason": {"S": reason[:500]},
                ":now": {"S": clock.isoformat(now)},
            },
        )
