"""Data access for rescore jobs and their pages: counters ADDed atomically, each page counted once.

Keys: `crm.scoring.repository` and docs/data-model.md.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict

from crm.leads.index import STATUS_BY_CREATED, UNASSIGNED_BY_CREATED
from crm.platform import clock
from crm.platform.dynamo import (
    cancellation_codes,
    error_code,
    marshal,
    translate,
    unmarshal,
)
from crm.platform.errors import NotFound, RetryableError
from crm.scoring.repository import ScoringStore, attribute_value
from crm.scoring.rescoring import (
    JobState,
    Partition,
    RescoreJob,
    RescorePage,
)

JOB_TTL = timedelta(days=30)


def job_key(job_id: str) -> dict[str, str]:
    return {"PK": f"RESCORE#{job_id}", "SK": "JOB"}


def page_key(page: RescorePage) -> dict[str, str]:
    return {"PK": f"RESCORE#{page.job_id}", "SK": f"PAGE#{page.marker}"}


@dataclass(frozen=True)
class PageMarker:
    count: int
    state: str  # "listed": counted in leads_found; "done": counted in leads_done too
    next_sent: bool


class RescoreJobItem(BaseModel):
    model_config = ConfigDict(extra="allow")

    PK: str
    SK: str = "JOB"
    entity: str = "rescore_job"
    ttl: int

    @classmethod
    def from_job(cls, job: RescoreJob) -> "RescoreJobItem":
        expires = int((job.started_at + JOB_TTL).timestamp())
        return cls(**job_key(job.job_id), ttl=expires, **job.model_dump(mode="json", exclude_none=True))

    def to_job(self) -> RescoreJob:
        return RescoreJob.model_validate(self.model_extra or {})


class RescoreJobRepository(ScoringStore):
    def create(self, job: RescoreJob) -> tuple[RescoreJob, bool]:
        """Write a new job, or return the one with this id (a job id is written once)."""
        if self._put_if_absent(RescoreJobItem.from_job(job).model_dump()):
            return job, True
        existing = self.get(job.job_id)
        if existing is None:
            raise RetryableError("The rescore job could not be read; try again")
        return existing, False

    def get(self, job_id: str) -> RescoreJob | None:
        item = self._get_item(job_key(job_id))
        return RescoreJobItem.model_validate(item).to_job() if item else None

    def move(self, job_id: str, from_state: JobState, to_state: JobState) -> None:
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=marshal(job_key(job_id)),
                UpdateExpression="SET #state = :to",
                ConditionExpression="#state = :from",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues={
                    ":to": attribute_value(to_state.value),
                    ":from": attribute_value(from_state.value),
                },
            )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise translate(exc) from exc

    def list_page(
        self, partition: Partition, start_key: dict[str, Any] | None, limit: int
    ) -> tuple[list[str], Any]:
        """One page of lead ids from an index partition, and the key to continue from (None: the end)."""
        is_status = partition.index == STATUS_BY_CREATED.name
        reads_leads = is_status or partition.nurture_only  # lead items carry `id`, ledgers `lead_id`
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": partition.index,
            "Limit": limit,
            "ProjectionExpression": "#id" if reads_leads else "lead_id",
            "ExpressionAttributeValues": {":pk": attribute_value(partition.key)},
        }
        if reads_leads:
            kwargs["ExpressionAttributeNames"] = {"#id": "id"}
        if is_status:
            kwargs["KeyConditionExpression"] = f"{STATUS_BY_CREATED.pk} = :pk"
        elif partition.nurture_only:
            # Limit counts the items read before the filter: a page may hold fewer (or no) nurture leads.
            kwargs["KeyConditionExpression"] = f"{UNASSIGNED_BY_CREATED.pk} = :pk"
            kwargs["FilterExpression"] = "nurture = :nurture"
            kwargs["ExpressionAttributeValues"][":nurture"] = attribute_value(True)
        elif partition.before is not None:
            kwargs["KeyConditionExpression"] = "GSI1PK = :pk AND GSI1SK < :before"
            kwargs["ExpressionAttributeValues"][":before"] = attribute_value(partition.before)
        else:
            kwargs["KeyConditionExpression"] = "GSI1PK = :pk"
        if start_key:
            kwargs["ExclusiveStartKey"] = start_key
        try:
            response = self.client.query(**kwargs)
        except ClientError as exc:
            raise translate(exc) from exc
        attribute = "id" if reads_leads else "lead_id"
        ids = [str(unmarshal(item)[attribute]) for item in response.get("Items", []) if attribute in item]
        return ids, response.get("LastEvaluatedKey")

    def claim_page(self, page: RescorePage, count: int, last: bool, now: datetime) -> PageMarker:
        """Count a listed page into the job once: the first delivery adds its leads to the total (and, for
        a partition's last page, marks the partition listed); a redelivery finds the marker instead."""
        expires = int((now + JOB_TTL).timestamp())
        marker = {
            **page_key(page),
            "entity": "rescore_page",
            "count": count,
            "state": "listed",
            "ttl": expires,
        }
        update = "ADD leads_found :count" + (", partitions_listed :one" if last else "")
        values: dict[str, Any] = {":count": attribute_value(count)}
        if last:
            values[":one"] = attribute_value(1)
        try:
            self._transact(
                [
                    {
                        "Put": {
                            "TableName": self.table_name,
                            "Item": marshal({**marker, "next_sent": False}),
                            "ConditionExpression": "attribute_not_exists(PK)",
                        }
                    },
                    {
                        "Update": {
                            "TableName": self.table_name,
                            "Key": marshal(job_key(page.job_id)),
                            "UpdateExpression": update,
                            "ConditionExpression": "attribute_exists(PK)",
                            "ExpressionAttributeValues": values,
                        }
                    },
                ]
            )
        except ClientError as exc:
            if error_code(exc) != "TransactionCanceledException":
                raise translate(exc) from exc
            codes = cancellation_codes(exc)
            if codes[1:2] == ["ConditionalCheckFailed"]:
                raise NotFound(f"No rescore job {page.job_id}") from exc
            existing = self._get_item(page_key(page))
            if codes[:1] != ["ConditionalCheckFailed"] or existing is None:
                raise RetryableError("The rescore page could not be counted; try again") from exc
            return PageMarker(int(existing["count"]), str(existing["state"]), bool(existing.get("next_sent")))
        return PageMarker(count, "listed", False)

    def mark_next_sent(self, page: RescorePage) -> None:
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=marshal(page_key(page)),
                UpdateExpression="SET next_sent = :yes",
                ExpressionAttributeValues={":yes": attribute_value(True)},
            )
        except ClientError as exc:
            raise translate(exc) from exc

    def finish_page(self, page: RescorePage, count: int, changed: int) -> bool:
        """Count a rescored page into leads_done once; False when a duplicate delivery already did."""
        try:
            self._transact(
                [
                    {
                        "Update": {
                            "TableName": self.table_name,
                            "Key": marshal(page_key(page)),
                            "UpdateExpression": "SET #state = :done",
                            "ConditionExpression": "#state = :listed",
                            "ExpressionAttributeNames": {"#state": "state"},
                            "ExpressionAttributeValues": {
                                ":done": attribute_value("done"),
                                ":listed": attribute_value("listed"),
                            },
                        }
                    },
                    {
                        "Update": {
                            "TableName": self.table_name,
                            "Key": marshal(job_key(page.job_id)),
                            "UpdateExpression": "ADD leads_done :count, leads_changed :changed",
                            "ExpressionAttributeValues": {
                                ":count": attribute_value(count),
                                ":changed": attribute_value(changed),
                            },
                        }
                    },
                ]
            )
        except ClientError as exc:
            if error_code(exc) != "TransactionCanceledException":
                raise translate(exc) from exc
            if cancellation_codes(exc)[:1] == ["ConditionalCheckFailed"]:
                return False
            raise RetryableError("The rescore page could not be counted; try again") from exc
        return True

    def finish_if_complete(self, job_id: str, now: datetime) -> bool:
        """Stamp finished_at once every partition is listed and every listed lead rescored."""
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=marshal(job_key(job_id)),
                UpdateExpression="SET finished_at = :now, #state = :completed",
                ConditionExpression=(
                    "attribute_exists(PK) AND attribute_not_exists(finished_at) AND #state = :running "
                    "AND #listed >= #partitions AND #done >= #found"
                ),
                ExpressionAttributeNames={
                    "#state": "state",
                    "#listed": "partitions_listed",
                    "#partitions": "partitions",
                    "#done": "leads_done",
                    "#found": "leads_found",
                },
                ExpressionAttributeValues={
                    ":now": attribute_value(clock.isoformat(now)),
                    ":completed": attribute_value(JobState.COMPLETED.value),
                    ":running": attribute_value(JobState.RUNNING.value),
                },
            )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise translate(exc) from exc
            return False
        return True
