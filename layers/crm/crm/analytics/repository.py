"""Data access for analytics: counter and histogram items, their idempotent updates, and recounts.

    counters       PK=STATS#<dimension>#<YYYY-MM>   SK=D#<DD>#<value> (a day) | M#<value> (the month)
    speed          PK=SPEED#<dimension>#<YYYY-MM>   SK=D#<DD>#<value> | M#<value>   (count, sum, b<bucket>)
    change marker  PK=STATSMARK#<lead id>           SK=RECORD#<stream sequence number>   (TTL 3 days)
    first contact  PK=STATSMARK#<lead id>           SK=FIRST_CONTACT
    reconciliation PK=STATS#reconciliation          SK=<YYYY-MM-DD>

One stream record's counter and histogram updates are one TransactWriteItems with a Put of its change
marker on `attribute_not_exists`: a redelivered record finds the marker and changes nothing. A first
contact also claims the lead's FIRST_CONTACT marker, so it is counted once per lead, ever.

A range of days is read as whole months (their `M#` items) plus the days of partial months: at most a
few Queries per dimension, each returning one item per (day or month, value), whatever the lead count.
"""

import random
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from decimal import Decimal
from functools import cache
from typing import Any

from botocore.exceptions import ClientError

from crm.analytics.counters import (
    COUNTER_FIELDS,
    UNASSIGNED,
    ContactCredit,
    CounterKey,
    Dimension,
    Drift,
    FirstContact,
    Histogram,
    Period,
    bucket_of,
    contributions,
    month_of,
)
from crm.leads.index import STATUS_BY_CREATED, status_pk
from crm.leads.model import Lead, LeadStatus
from crm.leads.repository import LeadItem
from crm.platform import clock
from crm.platform.dynamo import TableRepository, error_code, key_condition, marshal, translate, unmarshal
from crm.platform.errors import RetryableError

TRANSACTION_ATTEMPTS = 6
RECONCILE_CHECKPOINT = {"PK": "STATS#reconciliation", "SK": "CHECKPOINT"}
MARKER_TTL_SECONDS = 3 * 86_400  # a stream keeps records 24 h: markers outlive any redelivery
_TOP = "\U0010ffff"


@cache
def _executor() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=8, thread_name_prefix="analytics-query")


def _day_sk(day: date, value: str) -> str:
    return f"D#{day.day:02d}#{value}"


def _month_sk(value: str) -> str:
    return f"M#{value}"


def counter_pk(dimension: str, month: str) -> str:
    return f"STATS#{dimension}#{month}"


def speed_pk(dimension: str, month: str) -> str:
    return f"SPEED#{dimension}#{month}"


def _number(value: float | int) -> dict[str, str]:
    return {"N": f"{value:.3f}" if isinstance(value, float) else str(value)}


def counter_items(leads: Iterable[Lead]) -> list[dict[str, Any]]:
    """The counter items (day and month, every dimension) these leads add up to, in their stored shape.

    For loading figures in bulk (a benchmark, or seeding analytics for leads that predate the stream
    handler); live counters are only ever moved by `AnalyticsRepository.apply`.
    """
    totals: dict[tuple[str, str], tuple[dict[str, str], Counter[str]]] = {}
    for lead in leads:
        for (day, dimension, value), counts in contributions(lead).items():
            month = month_of(day)
            for sk, period in ((_day_sk(day, value), day.isoformat()), (_month_sk(value), month)):
                meta = {"entity": "stats", "dimension": dimension.value, "value": value, "period": period}
                totals.setdefault((counter_pk(dimension, month), sk), (meta, Counter()))[1].update(counts)
    return [
        {"PK": pk, "SK": sk, **meta, **{name: counts[name] for name in COUNTER_FIELDS}}
        for (pk, sk), (meta, counts) in totals.items()
    ]


class AnalyticsRepository(TableRepository):
    # ------------------------------------------------------------------ writes (the stream handler)
    def apply(
        self,
        lead_id: str,
        record_id: str,
        delta: dict[CounterKey, dict[str, int]],
        contact: FirstContact | None,
        credit: ContactCredit | None = None,
    ) -> tuple[bool, bool]:
        """Apply one change once. Returns (applied, first contact counted); (False, False) if this
        record was applied before. A `credit` moves the lead's first contact, counted unassigned, to its
        rep (only if it is still counted unassigned: a conditional update of the first-contact marker)."""
        move = self._credit_operations(lead_id, credit) if credit is not None else []
        if not delta and contact is None and not move:
            return False, False
        while True:
            operations = self._operations(lead_id, record_id, delta, contact)
            move_at = len(operations)
            try:
                self._transact(operations + move)
                return True, contact is not None
            except ClientError as exc:
                reasons = self._reasons(exc)
                if reasons[:1] == ["ConditionalCheckFailed"]:
                    return False, False  # a redelivery: this record's marker exists
                dropped = False
                if contact is not None and reasons[1:2] == ["ConditionalCheckFailed"]:
                    contact = None  # the lead's first contact was counted before (by an earlier record)
                    dropped = True
                if move and reasons[move_at : move_at + 1] == ["ConditionalCheckFailed"]:
                    move = []  # credited already (or never counted unassigned)
                    dropped = True
                if not dropped:
                    raise self._failure(exc) from exc
            if not delta and contact is None and not move:
                return False, False

    def _credit_operations(self, lead_id: str, credit: ContactCredit) -> list[Any]:
        """Move a first contact counted under `unassigned` to `credit.rep`: the marker is rewritten only
        if it still says unassigned, and the observation leaves one histogram for the other."""
        marker = self._get_item({"PK": f"STATSMARK#{lead_id}", "SK": "FIRST_CONTACT"})
        if marker is None or marker.get("rep") != UNASSIGNED:
            return []
        seconds = float(marker["seconds"])
        bucket = f"b{int(marker.get('bucket', bucket_of(seconds)))}"
        operations: list[Any] = [
            {
                "Update": {
                    "TableName": self.table_name,
                    "Key": marshal({"PK": f"STATSMARK#{lead_id}", "SK": "FIRST_CONTACT"}),
                    "UpdateExpression": "SET rep = :rep",
                    "ConditionExpression": "rep = :unassigned",
                    "ExpressionAttributeValues": marshal({":rep": credit.rep, ":unassigned": UNASSIGNED}),
                }
            }
        ]
        month = month_of(credit.day)
        for value, sign in ((UNASSIGNED, -1), (credit.rep, 1)):
            for sk, period in (
                (_day_sk(credit.day, value), credit.day.isoformat()),
                (_month_sk(value), month),
            ):
                meta = {
                    "entity": "speed",
                    "dimension": Dimension.OWNER.value,
                    "value": value,
                    "period": period,
                }
                observation = {"count": sign, "sum_seconds": sign * seconds, bucket: sign}
                operations.append(
                    self._add({"PK": speed_pk(Dimension.OWNER, month), "SK": sk}, meta, observation)
                )
        return operations

    def _operations(
        self,
        lead_id: str,
        record_id: str,
        delta: dict[CounterKey, dict[str, int]],
        contact: FirstContact | None,
    ) -> list[Any]:
        expires = int(time.time()) + MARKER_TTL_SECONDS
        operations: list[Any] = [
            self._claim(lead_id, f"RECORD#{record_id}", {"ttl": expires}),
        ]
        if contact is not None:
            seconds = Decimal(f"{contact.seconds:.3f}")
            marker = {"seconds": seconds, "rep": contact.rep, "bucket": bucket_of(contact.seconds)}
            operations.append(self._claim(lead_id, "FIRST_CONTACT", marker))
        # One update per item: day and month items of each (dimension, value), deltas summed.
        items: dict[tuple[str, str], tuple[dict[str, Any], Counter[str]]] = {}
        for (day, dimension, value), changes in delta.items():
            month = month_of(day)
            for sk, period in ((_day_sk(day, value), day.isoformat()), (_month_sk(value), month)):
                key = (counter_pk(dimension, month), sk)
                meta = {"entity": "stats", "dimension": dimension.value, "value": value, "period": period}
                items.setdefault(key, (meta, Counter()))[1].update(changes)
        for (pk, sk), (meta, summed) in items.items():
            operations.append(self._add({"PK": pk, "SK": sk}, meta, dict(summed)))
        if contact is not None:
            month = month_of(contact.day)
            bucket = f"b{bucket_of(contact.seconds)}"
            for dimension, value in ((Dimension.ALL, "all"), (Dimension.OWNER, contact.rep)):
                for sk, period in (
                    (_day_sk(contact.day, value), contact.day.isoformat()),
                    (_month_sk(value), month),
                ):
                    meta = {"entity": "speed", "dimension": dimension.value, "value": value, "period": period}
                    observation = {"count": 1, "sum_seconds": contact.seconds, bucket: 1}
                    operations.append(
                        self._add({"PK": speed_pk(dimension, month), "SK": sk}, meta, observation)
                    )
        return operations

    def _claim(self, lead_id: str, sk: str, extra: dict[str, Any]) -> dict[str, Any]:
        item = {"PK": f"STATSMARK#{lead_id}", "SK": sk, "entity": "stats_marker", **extra}
        return {
            "Put": {
                "TableName": self.table_name,
                "Item": marshal(item),
                "ConditionExpression": "attribute_not_exists(PK)",
            }
        }

    def _add(
        self, key: dict[str, str], meta: dict[str, str], fields: Mapping[str, float | int]
    ) -> dict[str, Any]:
        names: dict[str, str] = {}
        values: dict[str, Any] = {}
        sets, adds = [], []
        for index, (name, value) in enumerate(meta.items()):
            names[f"#m{index}"] = name
            values[f":m{index}"] = {"S": value}
            sets.append(f"#m{index} = :m{index}")
        for index, (name, amount) in enumerate(fields.items()):
            names[f"#f{index}"] = name
            values[f":f{index}"] = _number(amount)
            adds.append(f"#f{index} :f{index}")
        return {
            "Update": {
                "TableName": self.table_name,
                "Key": marshal(key),
                "UpdateExpression": f"SET {', '.join(sets)} ADD {', '.join(adds)}",
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": values,
            }
        }

    def _transact(self, operations: list[Any]) -> None:
        """One transaction; a conflict with another transaction on the same counters is retried here a
        few times (with jitter) before the record is failed back to the stream for a later retry."""
        for attempt in range(TRANSACTION_ATTEMPTS):
            try:
                self.client.transact_write_items(TransactItems=operations)
                return
            except ClientError as exc:
                reasons = self._reasons(exc)
                contended = "TransactionConflict" in reasons and "ConditionalCheckFailed" not in reasons
                if not (contended or error_code(exc) == "TransactionConflictException"):
                    raise
                if attempt == TRANSACTION_ATTEMPTS - 1:
                    raise
                time.sleep(random.uniform(0, min(0.25, 0.01 * 2**attempt)))  # noqa: S311 - jitter

    @staticmethod
    def _reasons(exc: ClientError) -> list[str]:
        if error_code(exc) != "TransactionCanceledException":
            return []
        return [str(reason.get("Code", "None")) for reason in exc.response.get("CancellationReasons", [])]

    @staticmethod
    def _failure(exc: ClientError) -> Exception:
        if error_code(exc) == "TransactionCanceledException":
            return RetryableError("The analytics counters could not be updated; try again")
        return translate(exc)

    # ------------------------------------------------------------------ reads (the dashboards)
    def _query_all(self, pk: str, lower: str, upper: str) -> list[dict[str, Any]]:
        expression, names, values = key_condition("PK", "SK", pk, lower, upper)
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": expression,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
        }
        items: list[dict[str, Any]] = []
        try:
            while True:
                response = self.client.query(**kwargs)
                items.extend(unmarshal(raw) for raw in response.get("Items", []))
                if "LastEvaluatedKey" not in response:
                    return items
                kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        except ClientError as exc:
            raise translate(exc) from exc

    def _period_items(self, prefix: str, dimension: str, periods: list[Period]) -> list[dict[str, Any]]:
        def read(period: Period) -> list[dict[str, Any]]:
            pk = f"{prefix}#{dimension}#{period.month}"
            if period.whole_month:
                return self._query_all(pk, "M#", "M#" + _TOP)
            return self._query_all(pk, f"D#{period.first_day:02d}#", f"D#{period.last_day:02d}#{_TOP}")

        return [item for items in _executor().map(read, periods) for item in items]

    def counters(self, dimension: Dimension, periods: list[Period]) -> dict[str, Counter[str]]:
        """Counters summed over the periods, by value of the dimension."""
        totals: dict[str, Counter[str]] = {}
        for item in self._period_items("STATS", dimension.value, periods):
            counts = totals.setdefault(str(item["value"]), Counter())
            counts.update({name: int(item.get(name, 0)) for name in COUNTER_FIELDS})
        return totals

    def daily_counters(self, periods: list[Period]) -> dict[str, Counter[str]]:
        """The `all` counters of each day (periods must be runs of days), by ISO date."""
        days: dict[str, Counter[str]] = {}
        for item in self._period_items("STATS", Dimension.ALL.value, periods):
            days[str(item["period"])] = Counter({name: int(item.get(name, 0)) for name in COUNTER_FIELDS})
        return days

    def histograms(self, dimension: Dimension, periods: list[Period]) -> dict[str, Histogram]:
        merged: dict[str, Histogram] = {}
        for item in self._period_items("SPEED", dimension.value, periods):
            histogram = merged.setdefault(str(item["value"]), Histogram())
            for name, value in item.items():
                if name.startswith("b") and name[1:].isdigit():
                    histogram.buckets[int(name[1:])] += int(value)
            histogram.total_seconds += float(item.get("sum_seconds", 0))
        return merged

    # ------------------------------------------------------------------ reconciliation
    def leads_created_on(self, day: date) -> list[Lead]:
        """Every lead captured on `day`: a Query of each shard of StatusByCreated (status x shard) for the
        keys created that day, then the leads by key."""
        start = clock.isoformat(clock.parse(f"{day.isoformat()}T00:00:00Z"))
        end = clock.isoformat(clock.parse(f"{(day + timedelta(days=1)).isoformat()}T00:00:00Z"))
        partitions = [status_pk(status.value, shard) for status in LeadStatus for shard in range(self.shards)]

        def read(pk: str) -> list[Lead]:
            expression, names, values = key_condition(
                STATUS_BY_CREATED.pk, STATUS_BY_CREATED.sk, pk, start, end
            )
            keys = [
                {"PK": str(entry["PK"]), "SK": str(entry["SK"])}
                for entry in self._query_pages(
                    {
                        "IndexName": STATUS_BY_CREATED.name,
                        "KeyConditionExpression": expression,
                        "ExpressionAttributeNames": names,
                        "ExpressionAttributeValues": values,
                    }
                )
            ]
            return [
                LeadItem.model_validate(item).to_lead()
                for item in self._get_many(keys)
                if item.get("entity") == "lead"
            ]

        return [lead for leads in _executor().map(read, partitions) for lead in leads]

    def stored_day(self, day: date) -> dict[tuple[str, str], Counter[str]]:
        """The stored counters of one cohort day, by (dimension, value), and its speed count."""
        period = [Period(month_of(day), day.day, day.day)]
        stored: dict[tuple[str, str], Counter[str]] = {}
        for dimension in Dimension:
            for item in self._period_items("STATS", dimension.value, period):
                stored[(dimension.value, str(item["value"]))] = Counter(
                    {name: int(item.get(name, 0)) for name in COUNTER_FIELDS}
                )
        for item in self._period_items("SPEED", Dimension.ALL.value, period):
            stored[("speed", "all")] = Counter(contacted=int(item.get("count", 0)))
        return stored

    def store_reconciliation(
        self, day: date, checked_at: str, leads: int, drift: list[Drift], limit: int = 100
    ) -> None:
        item = {
            "PK": "STATS#reconciliation",
            "SK": day.isoformat(),
            "entity": "stats_reconciliation",
            "checked_at": checked_at,
            "leads": leads,
            "drift_count": len(drift),
            "drift": [vars(entry) for entry in drift[:limit]],
        }
        try:
            self.client.put_item(TableName=self.table_name, Item=marshal(item))
        except ClientError as exc:
            raise translate(exc) from exc

    def reconciliation(self, day: date) -> dict[str, Any] | None:
        return self._get_item({"PK": "STATS#reconciliation", "SK": day.isoformat()})

    def reconciled_through(self) -> date | None:
        """The checkpoint of the nightly catch-up: the last day it reconciled (None before its first run)."""
        item = self._get_item(RECONCILE_CHECKPOINT) or {}
        return date.fromisoformat(str(item["day"])) if item.get("day") else None

    def mark_reconciled(self, day: date) -> None:
        """Move the checkpoint to `day`, never back (an overlapping run may have gone further)."""
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item=marshal({**RECONCILE_CHECKPOINT, "entity": "checkpoint", "day": day.isoformat()}),
                ConditionExpression="attribute_not_exists(#day) OR #day <= :day",
                ExpressionAttributeNames={"#day": "day"},
                ExpressionAttributeValues=marshal({":day": day.isoformat()}),
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return
            raise translate(exc) from exc
