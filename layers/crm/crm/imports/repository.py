"""Data access for CSV imports: the job, its row markers and its rejected rows.

Keys (docs/data-model.md):
- job          `PK = IMPORT#<id>`, `SK = JOB`; `GSI1PK = IMPORTS#<requester>` and `GSI2PK = IMPORTS` (admins
               list every import), both with `<created_at>#<id>` as sort key, newest first.
- row marker   `PK = IMPORT#<id>#ROWS#<row // 1000>`, `SK = ROW#<row, 9 digits>`: the row's outcome and lead
               (written a batch at a time after the rows are captured; expires after 7 days).
- rejected row `PK = IMPORT#<id>#REJECTS`, `SK = ROW#<row, 9 digits>`: the original row and the reason.

A worker holds a lease on the job for the chunk that starts at `next_row`; the checkpoint (offset, next row,
counts) is one conditional write that only that lease's holder, of that very chunk, may make.
"""

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from crm.imports.model import ImportJob, ImportState, RejectedRow, RowOutcome
from crm.platform import clock
from crm.platform.dynamo import TableRepository, marshal, translate, unmarshal

JOB_RETENTION = timedelta(days=30)
ROW_RETENTION = timedelta(days=7)  # as long as the bucket keeps the files
REQUESTER_INDEX = "GSI1"
ALL_INDEX = "GSI2"
ALL_PARTITION = "IMPORTS"
ROWS_PER_PARTITION = 1000
_STATES = {f":{state.value}": {"S": state.value} for state in ImportState}
_BATCH_GET = 100


def job_key(import_id: str) -> dict[str, str]:
    return {"PK": f"IMPORT#{import_id}", "SK": "JOB"}


def marker_key(import_id: str, row: int) -> dict[str, str]:
    return {"PK": f"IMPORT#{import_id}#ROWS#{row // ROWS_PER_PARTITION}", "SK": f"ROW#{row:09d}"}


def reject_key(import_id: str, row: int) -> dict[str, str]:
    return {"PK": f"IMPORT#{import_id}#REJECTS", "SK": f"ROW#{row:09d}"}


def _sort_key(job: ImportJob) -> str:
    return f"{clock.isoformat(job.created_at)}#{job.id}"


class ImportRepository(TableRepository):
    # ------------------------------------------------------------------ the job
    def create(self, job: ImportJob) -> None:
        item = {
            **job_key(job.id),
            "entity": "import_job",
            "GSI1PK": f"IMPORTS#{job.requester_subject}",
            "GSI1SK": _sort_key(job),
            "GSI2PK": ALL_PARTITION,
            "GSI2SK": _sort_key(job),
            "ttl": int((job.created_at + JOB_RETENTION).timestamp()),
            **job.model_dump(mode="json", exclude_none=True),
        }
        if not self._put_if_absent(item):
            raise RuntimeError(f"import id {job.id} is taken")  # a fresh UUID4: never

    def get(self, import_id: str) -> ImportJob | None:
        item = self._get_item(job_key(import_id))
        return ImportJob.model_validate(item) if item else None

    def lease_of(self, import_id: str) -> dict[str, Any]:
        """The job's lease fields (`lease_token`, `lease_until`, `lease_row`, `chunk_started_at`), if any."""
        item = self._get_item(job_key(import_id)) or {}
        return {
            k: item[k] for k in ("lease_token", "lease_until", "lease_row", "chunk_started_at") if k in item
        }

    def page(self, requester: str | None, limit: int, after: str | None) -> list[tuple[str, ImportJob]]:
        """Up to `limit + 1` imports, newest first, strictly before the sort key `after`: one requester's,
        or (requester None) everyone's."""
        index, pk_name, sk_name = (
            (ALL_INDEX, "GSI2PK", "GSI2SK") if requester is None else (REQUESTER_INDEX, "GSI1PK", "GSI1SK")
        )
        pk = ALL_PARTITION if requester is None else f"IMPORTS#{requester}"
        names = {"#pk": pk_name, "#sk": sk_name} if after else {"#pk": pk_name}
        values: dict[str, Any] = {":pk": {"S": pk}}
        if after:
            values[":after"] = {"S": after}
        try:
            response = self.client.query(
                TableName=self.table_name,
                IndexName=index,
                KeyConditionExpression="#pk = :pk" + (" AND #sk < :after" if after else ""),
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ScanIndexForward=False,
                Limit=limit + 1,
            )
        except ClientError as exc:
            raise translate(exc) from exc
        jobs = []
        for raw in response.get("Items", []):
            item = unmarshal(raw)
            jobs.append((str(item[sk_name]), ImportJob.model_validate(item)))
        return jobs

    def _update(self, import_id: str, **request: Any) -> bool:
        return self._update_if(job_key(import_id), **request)

    def start(self, import_id: str, object_size: int, now: datetime) -> bool:
        """The upload arrived: waiting → running, once."""
        return self._update(
            import_id,
            UpdateExpression="SET #state = :running, started_at = :now, bytes_total = :size",
            ConditionExpression="#state = :waiting_for_upload",
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues={
                ":running": _STATES[":running"],
                ":waiting_for_upload": _STATES[":waiting_for_upload"],
                ":now": {"S": clock.isoformat(now)},
                ":size": {"N": str(object_size)},
            },
        )

    def take_lease(  # noqa: PLR0917 - one conditional write
        self, import_id: str, row: int, token: str, now: datetime, until: datetime, chunk_started_at: datetime
    ) -> bool:
        """Hold the job for the chunk that starts at `row`: only while the job runs, that chunk is next and
        nobody holds an unexpired lease. `chunk_started_at`: when the chunk's first attempt began."""
        return self._update(
            import_id,
            UpdateExpression=(
                "SET lease_token = :token, lease_until = :until, lease_row = :row, chunk_started_at = :begun"
            ),
            ConditionExpression=(
                "#state = :running AND next_row = :row "
                "AND (attribute_not_exists(lease_until) OR lease_until < :now)"
            ),
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues={
                ":token": {"S": token},
                ":until": {"S": clock.isoformat(until)},
                ":now": {"S": clock.isoformat(now)},
                ":row": {"N": str(row)},
                ":begun": {"S": clock.isoformat(chunk_started_at)},
                ":running": _STATES[":running"],
            },
        )

    def set_columns(self, import_id: str, token: str, columns: list[str], offset: int) -> bool:
        """The header, read by the first chunk (the data starts after it)."""
        return self._update(
            import_id,
            UpdateExpression="SET #columns = :columns, #offset = :offset",
            ConditionExpression="lease_token = :token AND attribute_not_exists(#columns)",
            ExpressionAttributeNames={"#columns": "columns", "#offset": "offset"},
            ExpressionAttributeValues={
                ":columns": marshal({"v": columns})["v"],
                ":offset": {"N": str(offset)},
                ":token": {"S": token},
            },
        )

    def checkpoint(  # noqa: PLR0917 - one conditional write of the whole checkpoint
        self,
        import_id: str,
        row: int,
        token: str,
        next_row: int,
        offset: int,
        counts: dict[RowOutcome, int],
        eof: bool,
    ) -> bool:
        """Count the chunk that started at `row` into the job (its outcomes, where the next one starts) and
        let the lease go, once: only the lease holder of that very chunk may."""
        read = sum(counts.values())
        return self._update(
            import_id,
            UpdateExpression=(
                "SET next_row = :next, #offset = :offset, eof = :eof "
                "ADD rows_read :read, created :created, merged :merged, rejected :rejected, chunks_done :one "
                "REMOVE lease_token, lease_until"
            ),
            ConditionExpression="next_row = :row AND lease_token = :token",
            ExpressionAttributeNames={"#offset": "offset"},
            ExpressionAttributeValues={
                ":row": {"N": str(row)},
                ":token": {"S": token},
                ":next": {"N": str(next_row)},
                ":offset": {"N": str(offset)},
                ":eof": {"BOOL": eof},
                ":read": {"N": str(read)},
                ":created": {"N": str(counts.get(RowOutcome.CREATED, 0))},
                ":merged": {"N": str(counts.get(RowOutcome.MERGED, 0))},
                ":rejected": {"N": str(counts.get(RowOutcome.REJECTED, 0))},
                ":one": {"N": "1"},
            },
        )

    def release_lease(self, import_id: str, token: str) -> None:
        """Give the lease back early (a failed attempt), so a retry need not wait for it to expire."""
        self._update(
            import_id,
            UpdateExpression="REMOVE lease_token, lease_until",
            ConditionExpression="lease_token = :token",
            ExpressionAttributeValues={":token": {"S": token}},
        )

    def is_eof(self, import_id: str) -> bool:
        item = self._get_item(job_key(import_id)) or {}
        return bool(item.get("eof"))

    def complete(self, import_id: str, rejects_key: str | None, now: datetime) -> bool:
        sets = "#state = :completed, finished_at = :now" + (", rejects_key = :key" if rejects_key else "")
        values: dict[str, Any] = {
            ":completed": _STATES[":completed"],
            ":running": _STATES[":running"],
            ":yes": {"BOOL": True},
            ":now": {"S": clock.isoformat(now)},
        }
        if rejects_key:
            values[":key"] = {"S": rejects_key}
        return self._update(
            import_id,
            UpdateExpression=f"SET {sets}",
            ConditionExpression="#state = :running AND eof = :yes",
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues=values,
        )

    def fail(self, import_id: str, reason: str, now: datetime) -> bool:
        return self._update(
            import_id,
            UpdateExpression="SET #state = :failed, finished_at = :now, #error = :reason",
            ConditionExpression="#state IN (:running, :waiting_for_upload)",
            ExpressionAttributeNames={"#state": "state", "#error": "error"},
            ExpressionAttributeValues={
                ":failed": _STATES[":failed"],
                ":running": _STATES[":running"],
                ":waiting_for_upload": _STATES[":waiting_for_upload"],
                ":now": {"S": clock.isoformat(now)},
                ":reason": {"S": reason},
            },
        )

    # ------------------------------------------------------------------ rows
    def markers(self, import_id: str, first: int, last: int) -> dict[int, dict[str, Any]]:
        """The row markers of rows `first`..`last` that exist, by row number (BatchGetItem, consistent)."""
        found: dict[int, dict[str, Any]] = {}
        rows = list(range(first, last + 1))
        for start in range(0, len(rows), _BATCH_GET):
            keys = [marshal(marker_key(import_id, row)) for row in rows[start : start + _BATCH_GET]]
            request: dict[str, Any] = {self.table_name: {"Keys": keys, "ConsistentRead": True}}
            while request:
                try:
                    response = self.client.batch_get_item(RequestItems=request)
                except ClientError as exc:
                    raise translate(exc) from exc
                for raw in response.get("Responses", {}).get(self.table_name, []):
                    item = unmarshal(raw)
                    found[int(item["row"])] = item
                request = response.get("UnprocessedKeys") or {}
        return found

    def write_rows(
        self,
        import_id: str,
        outcomes: list[tuple[int, RowOutcome, str | None]],
        rejects: list[RejectedRow],
        now: datetime,
    ) -> None:
        """Row markers (row, outcome, lead id) and rejected rows, a BatchWriteItem of 25 at a time. Plain
        puts: a row's marker is written only by the lease holder, with the row's one outcome."""
        ttl = int((now + ROW_RETENTION).timestamp())
        items = [
            {
                **marker_key(import_id, row),
                "row": row,
                "outcome": outcome.value,
                "lead_id": lead_id,
                "ttl": ttl,
            }
            for row, outcome, lead_id in outcomes
        ] + [
            {
                **reject_key(import_id, reject.row_number),
                "row": reject.row_number,
                "values": reject.values,
                "reason": reject.reason,
                "ttl": ttl,
            }
            for reject in rejects
        ]
        self._batch_write(items, busy="The import's rows could not be recorded; try again")

    def rejected_rows(self, import_id: str) -> Iterator[RejectedRow]:
        """Every rejected row, in row order, a page at a time."""
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "PK = :pk",
            "ExpressionAttributeValues": {":pk": {"S": reject_key(import_id, 0)["PK"]}},
        }
        while True:
            try:
                response = self.client.query(**request)
            except ClientError as exc:
                raise translate(exc) from exc
            for raw in response.get("Items", []):
                item = unmarshal(raw)
                yield RejectedRow(
                    row_number=int(item["row"]),
                    values={str(k): str(v) for k, v in (item.get("values") or {}).items()},
                    reason=str(item["reason"]),
                )
            if "LastEvaluatedKey" not in response:
                return
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]
