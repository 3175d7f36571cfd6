"""Event source mappings, as Lambda runs them: DynamoDB streams and SQS queues polled into the functions.

Streams: records in order per shard (children after their parents), batches of BatchSize gathered for up to
MaximumBatchingWindowInSeconds, FilterCriteria applied (filtered-out records are skipped), partial batch
failures resume from the first failed sequence number, BisectBatchOnFunctionError splits failing batches,
MaximumRetryAttempts/MaximumRecordAgeInSeconds bound the retries, then DestinationConfig.OnFailure (SQS) gets
the batch's description. ParallelizationFactor: up to that many batches of a shard run at once, split by
partition key so one item's records stay in order. Records reach the functions as AWS writes them: DynamoDB
Local's quirks (an empty map written as `{}`) are put right here, so the functions need no local-only code.
Each shard's position is saved in the data folder after every batch, so a restart neither replays nor loses
records.

Queues: long-polled batches, filtered-out messages deleted (as Lambda does), successes deleted, failures left
to come back after the visibility timeout; moto moves a message to the queue's DLQ once it has been received
maxReceiveCount times (its RedrivePolicy), as SQS does.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from .event_filter import matches_any, sqs_filter_view
from .template import LOCAL_REGION, EventSourceMapping, Template
from .workers import Invocation

Invoke = Callable[[str, Any], Invocation]
Log = Callable[[str], None]


def batch_item_failures(invocation: Invocation, identifiers: list[str]) -> list[str] | None:
    """The identifiers to retry, per Lambda's ReportBatchItemFailures rules: an error fails everything; a
    response naming an unknown or empty identifier fails everything; no or an empty list means success."""
    if not invocation.ok:
        return list(identifiers)
    payload = invocation.payload
    if not isinstance(payload, dict) or not payload.get("batchItemFailures"):
        return []
    failed = []
    for item in payload["batchItemFailures"]:
        identifier = item.get("itemIdentifier") if isinstance(item, dict) else None
        if not identifier or identifier not in identifiers:
            return list(identifiers)
        failed.append(identifier)
    return failed


class CheckpointStore:
    """Positions of every mapping in every shard, in one JSON file (written atomically)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        try:
            self._data: dict[str, Any] = json.loads(path.read_text())
        except (FileNotFoundError, ValueError):
            self._data = {}

    def get(self, mapping: str, key: str) -> Any:
        with self._lock:
            return self._data.get(mapping, {}).get(key)

    def set(self, mapping: str, key: str, value: Any) -> None:
        with self._lock:
            self._data.setdefault(mapping, {})[key] = value
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self._data, indent=1, sort_keys=True))
            tmp.replace(self.path)


def _plain(value: Any) -> Any:
    """boto3's parsed stream record back to the JSON Lambda delivers (epoch seconds, base64 binaries)."""
    if isinstance(value, datetime):
        return int(value.timestamp())
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _aws_attribute_value(value: Any) -> Any:
    """One attribute value as AWS's stream writes it. DynamoDB Local writes an empty map, at any depth, as
    `{}` instead of `{"M": {}}`, which no deserializer reads; AWS never does."""
    if value == {}:
        return {"M": {}}
    if isinstance(value, dict) and isinstance(value.get("M"), dict):
        return {"M": {name: _aws_attribute_value(item) for name, item in value["M"].items()}}
    if isinstance(value, dict) and isinstance(value.get("L"), list):
        return {"L": [_aws_attribute_value(item) for item in value["L"]]}
    return value


def aws_stream_record(record: dict[str, Any], stream_arn: str) -> dict[str, Any]:
    """A record of DynamoDB Local's stream (as boto3 parses it) as Lambda delivers AWS's: JSON values, the
    public region and ARN, and images typed as AWS types them."""
    plain: dict[str, Any] = _plain(record)
    plain["awsRegion"] = LOCAL_REGION
    plain["eventSourceARN"] = _public_arn(stream_arn)
    stream = plain.get("dynamodb") or {}
    for image in ("Keys", "NewImage", "OldImage"):
        if image in stream:
            stream[image] = {name: _aws_attribute_value(value) for name, value in stream[image].items()}
    return plain


def _public_arn(arn: str) -> str:
    return arn.replace(":ddblocal:", f":{LOCAL_REGION}:")


_RESTART = object()
# How often a stream pump describes the stream and its shards again (and at once after a shard closes).
TOPOLOGY_REFRESH_S = 5.0
# Stream records read ahead of delivery at most, however few of them the filters select (memory bound).
READ_AHEAD_LIMIT = 10_000


class _Interrupted(Exception):
    """The stack is stopping mid-batch: nothing is checkpointed, the batch is read again after a restart."""


class PumpStats:
    """What `/_local/status` shows of one mapping: invocations, batch sizes, failures, lag."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.invocations = 0
        self.records = 0
        self.largest_batch = 0
        self.failed_invocations = 0
        self.sent_to_on_failure = 0
        self.iterator_age_s: float | None = None  # Lambda's IteratorAge: age of the last batch's last record

    def record(self, size: int, ok: bool) -> None:
        with self._lock:
            self.invocations += 1
            self.records += size
            self.largest_batch = max(self.largest_batch, size)
            self.failed_invocations += 0 if ok else 1

    def as_dict(self) -> dict[str, Any]:
        with self._lock:
            return {
                "invocations": self.invocations,
                "records_delivered": self.records,
                "average_batch": round(self.records / self.invocations, 2) if self.invocations else 0,
                "largest_batch": self.largest_batch,
                "failed_invocations": self.failed_invocations,
                "sent_to_on_failure": self.sent_to_on_failure,
                "iterator_age_s": self.iterator_age_s,
            }


class _Pump:
    def __init__(self, mapping: EventSourceMapping, invoke: Invoke, log: Log, stop: threading.Event) -> None:
        self.mapping = mapping
        self.invoke_function = invoke
        self.log = log
        self.stop = stop
        self.stats = PumpStats()
        self.thread = threading.Thread(target=self._run, name=f"pump {mapping.logical_id}", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                self.poll_once()
            except _Interrupted:
                return
            except Exception as exc:  # a bad poll (e.g. during shutdown) must not end the mapping
                if not self.stop.is_set():
                    self.log(f"[{self.mapping.logical_id}] poll failed: {exc!r}")
                    self.stop.wait(1.0)

    def poll_once(self) -> None:
        raise NotImplementedError

    def _invoke(self, records: list[dict[str, Any]]) -> Invocation:
        """One invocation; whatever the plumbing raises (a worker killed mid-batch, a broken pipe) is a
        function error, so the batch is retried as Lambda retries it, never dropped."""
        try:
            invocation = self.invoke_function(self.mapping.function_logical_id, {"Records": records})
        except Exception as exc:
            if self.stop.is_set():
                raise _Interrupted from exc
            invocation = Invocation(
                str(uuid.uuid4()), error={"errorType": "Runtime.ExitError", "errorMessage": repr(exc)}
            )
        self.stats.record(len(records), invocation.ok)
        return invocation


class StreamPump(_Pump):
    """One DynamoDB stream event source mapping."""

    def __init__(
        self,
        mapping: EventSourceMapping,
        template: Template,
        *,
        dynamodb: Any,
        streams: Any,
        sqs: Any,
        checkpoints: CheckpointStore,
        invoke: Invoke,
        log: Log,
        stop: threading.Event,
        poll_interval: float = 0.25,
    ) -> None:
        super().__init__(mapping, invoke, log, stop)
        self.table = template.table_for_stream(mapping.source_arn)
        self.template = template
        self.dynamodb = dynamodb
        self.streams = streams
        self.sqs = sqs
        self.checkpoints = checkpoints
        self.poll_interval = poll_interval
        self._iterators: dict[str, str | None] = {}
        self._finished: set[str] = set()
        self._pending: dict[str, list[dict[str, Any]]] = {}
        self._selected: dict[str, int] = {}  # how many of a shard's pending records the filters select
        self._pending_since: dict[str, float] = {}
        self._described: tuple[float, str | None, list[dict[str, Any]]] | None = None

    def _stream_arn(self) -> str | None:
        table = self.dynamodb.describe_table(TableName=self.table.name)["Table"]
        arn: str | None = table.get("LatestStreamArn")
        return arn

    def _shards(self, stream_arn: str) -> list[dict[str, Any]]:
        shards: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"StreamArn": stream_arn}
        while True:
            description = self.streams.describe_stream(**kwargs)["StreamDescription"]
            shards.extend(description.get("Shards", []))
            last = description.get("LastEvaluatedShardId")
            if not last:
                return shards
            kwargs["ExclusiveStartShardId"] = last

    def _topology(self) -> tuple[str | None, list[dict[str, Any]]]:
        """The stream and its shards, described again only every few seconds: describing them on every poll
        (four a second) was most of what an idle stack spent in DynamoDB Local."""
        now = time.monotonic()
        if self._described is None or now - self._described[0] >= TOPOLOGY_REFRESH_S:
            stream_arn = self._stream_arn()
            self._described = (now, stream_arn, self._shards(stream_arn) if stream_arn else [])
        return self._described[1], self._described[2]

    def poll_once(self) -> None:
        try:
            self._poll_topology()
        except Exception:
            self._described = None  # a stream replaced or DynamoDB Local restarted: describe it again
            raise

    def _poll_topology(self) -> None:
        stream_arn, shards = self._topology()
        if stream_arn is None:
            self.stop.wait(1.0)
            return
        key = f"{stream_arn}"
        state = self.checkpoints.get(self.mapping.logical_id, key) or {}
        first_run = not state
        if first_run:
            # The mapping's StartingPosition applies once, to the shards that exist when it is created.
            state = {"shards": {}, "created": time.time()}
            self.checkpoints.set(self.mapping.logical_id, key, state)
        known = {s["ShardId"] for s in shards}
        for shard in shards:
            shard_id = shard["ShardId"]
            parent = shard.get("ParentShardId")
            if parent in known and parent not in self._finished and not self._closed_done(state, parent):
                continue  # children wait until their parent is fully processed
            if shard_id in self._finished:
                continue
            self._poll_shard(stream_arn, key, state, shard, first_run)
        self.stop.wait(self.poll_interval)

    def lag(self, limit: int = 50_000) -> dict[str, Any]:
        """Records behind: the stream's records after this mapping's saved position (read on request, up to
        `limit`), and how many of them its filter selects for the function."""
        stream_arn = self._stream_arn()
        if stream_arn is None:
            return {"records_behind": 0, "selected_behind": 0}
        state = self.checkpoints.get(self.mapping.logical_id, stream_arn) or {"shards": {}}
        behind = selected = 0
        for shard in self._shards(stream_arn):
            saved = state["shards"].get(shard["ShardId"], {})
            if saved.get("done"):
                continue
            kwargs: dict[str, Any] = {"StreamArn": stream_arn, "ShardId": shard["ShardId"]}
            if saved.get("sequence"):
                kwargs.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER", SequenceNumber=saved["sequence"])
            else:
                kwargs["ShardIteratorType"] = "TRIM_HORIZON"
            iterator = self.streams.get_shard_iterator(**kwargs)["ShardIterator"]
            while iterator and behind < limit:
                response = self.streams.get_records(ShardIterator=iterator, Limit=1000)
                records = response.get("Records", [])
                if not records:
                    break
                iterator = response.get("NextShardIterator")
                behind += len(records)
                selected += sum(
                    1 for r in records if matches_any(self.mapping.filters, aws_stream_record(r, stream_arn))
                )
        return {"records_behind": behind, "selected_behind": selected}

    def read_range(self, info: dict[str, Any]) -> list[dict[str, Any]] | None:
        """The records an on-failure record's DDBStreamBatchInfo names (its shard, start to end sequence
        number), as the function got them; None when the stream no longer holds them (trimmed after 24 h on
        AWS, another stream after the table's stream was replaced)."""
        stream_arn = self._stream_arn()
        if stream_arn is None or _public_arn(stream_arn) != info.get("streamArn"):
            return None
        try:
            iterator = self.streams.get_shard_iterator(
                StreamArn=stream_arn,
                ShardId=info["shardId"],
                ShardIteratorType="AT_SEQUENCE_NUMBER",
                SequenceNumber=info["startSequenceNumber"],
            )["ShardIterator"]
        except ClientError:
            return None
        end = int(info["endSequenceNumber"])
        found: list[dict[str, Any]] = []
        while iterator:
            response = self.streams.get_records(ShardIterator=iterator, Limit=1000)
            records = response.get("Records", [])
            found += [r for r in records if int(r["dynamodb"]["SequenceNumber"]) <= end]
            if not records or int(records[-1]["dynamodb"]["SequenceNumber"]) >= end:
                break
            iterator = response.get("NextShardIterator")
        if not found or found[0]["dynamodb"]["SequenceNumber"] != info["startSequenceNumber"]:
            return None
        return [aws_stream_record(r, stream_arn) for r in found]

    def replay(self, info: dict[str, Any]) -> bool | None:
        """Redrive one on-failure record: read its range again and deliver it to the function with fresh
        retries (the mapping's filter applies, as it did the first time). True: delivered; False: it failed
        again (and a new on-failure record describes it); None: the range is no longer readable."""
        records = self.read_range(info)
        if records is None:
            return None
        before = self.stats.sent_to_on_failure
        selected = [r for r in records if matches_any(self.mapping.filters, r)]
        if selected:
            stream_arn = self._stream_arn()
            assert stream_arn is not None
            self._deliver(stream_arn, info["shardId"], selected, attempts=0)
        return self.stats.sent_to_on_failure == before

    @staticmethod
    def _closed_done(state: dict[str, Any], shard_id: str | None) -> bool:
        return bool(shard_id and state["shards"].get(shard_id, {}).get("done"))

    def _iterator(
        self, stream_arn: str, state: dict[str, Any], shard: dict[str, Any], first_run: bool
    ) -> str | None:
        shard_id = shard["ShardId"]
        if shard_id in self._iterators:
            return self._iterators[shard_id]
        position = state["shards"].get(shard_id, {}).get("sequence")
        kwargs: dict[str, Any] = {"StreamArn": stream_arn, "ShardId": shard_id}
        if position:
            kwargs.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER", SequenceNumber=position)
        elif first_run and (self.mapping.starting_position or "LATEST") == "LATEST":
            kwargs["ShardIteratorType"] = "LATEST"
        else:
            kwargs["ShardIteratorType"] = "TRIM_HORIZON"
        if not position and first_run and kwargs["ShardIteratorType"] == "LATEST":
            # Remembered so that a restart before the first record does not replay what predates the mapping.
            # Stream record times have minute resolution, hence the rounding down.
            state["shards"].setdefault(shard_id, {})["from_latest"] = int(state["created"]) // 60 * 60
        elif not position and state["shards"].get(shard_id, {}).get("from_latest"):
            kwargs["ShardIteratorType"] = "TRIM_HORIZON"
        iterator: str | None = self.streams.get_shard_iterator(**kwargs)["ShardIterator"]
        return iterator

    def _poll_shard(
        self, stream_arn: str, key: str, state: dict[str, Any], shard: dict[str, Any], first_run: bool
    ) -> None:
        shard_id = shard["ShardId"]
        try:
            iterator = self._read_shard(stream_arn, state, shard, first_run)
        except Exception:
            # Whatever the read raised (DynamoDB Local restarting, an iterator it no longer knows), start
            # again from the saved position: what was pending is read again, nothing is skipped.
            self._forget_shard(shard_id)
            raise
        if iterator is _RESTART:
            self._forget_shard(shard_id)
            return
        pending = self._pending.setdefault(shard_id, [])
        waited = time.monotonic() - self._pending_since.get(shard_id, time.monotonic())
        if pending and (
            self._selected.get(shard_id, 0) >= self._read_ahead
            or len(pending) >= READ_AHEAD_LIMIT
            or waited >= self.mapping.batching_window_s
            or iterator is None
        ):
            batch, selected = self._next_batch(pending)
            # Delivered (or sent to the on-failure destination) before it leaves `pending` and before the
            # position moves: an exception anywhere in between leaves the batch to be delivered again.
            self._process(stream_arn, shard_id, batch)
            del pending[: len(batch)]
            self._selected[shard_id] = self._selected.get(shard_id, 0) - selected
            self._pending_since.pop(shard_id, None)
            if pending:
                self._pending_since[shard_id] = time.monotonic()
            created = batch[-1]["dynamodb"].get("ApproximateCreationDateTime")
            if created is not None:
                self.stats.iterator_age_s = max(0.0, round(time.time() - created, 1))
            state["shards"].setdefault(shard_id, {})["sequence"] = batch[-1]["dynamodb"]["SequenceNumber"]
            self.checkpoints.set(self.mapping.logical_id, key, state)
        if iterator is None and not self._pending.get(shard_id):
            # A closed shard, read to its end: its children may start.
            self._finished.add(shard_id)
            self._described = None  # its children may be listed now
            state["shards"].setdefault(shard_id, {})["done"] = True
            self.checkpoints.set(self.mapping.logical_id, key, state)

    def _next_batch(self, pending: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
        """The pending records up to the read-ahead's worth that the filters select (what Lambda would
        deliver: the records its filters drop never fill a batch), and how many it selects."""
        selected = 0
        for index, record in enumerate(pending):
            if matches_any(self.mapping.filters, record):
                selected += 1
                if selected == self._read_ahead:
                    return pending[: index + 1], selected
        return list(pending), selected

    def _forget_shard(self, shard_id: str) -> None:
        self._iterators.pop(shard_id, None)
        self._pending[shard_id] = []
        self._selected[shard_id] = 0
        self._pending_since.pop(shard_id, None)

    def _read_shard(
        self, stream_arn: str, state: dict[str, Any], shard: dict[str, Any], first_run: bool
    ) -> Any:
        """Read the shard until a full batch is pending (as Lambda reads: up to BatchSize records when that
        many are waiting) or it has nothing more; returns the next iterator (None: a closed shard read to its
        end; _RESTART: the position is lost and must be taken again from the checkpoint)."""
        shard_id = shard["ShardId"]
        iterator = self._iterator(stream_arn, state, shard, first_run)
        pending = self._pending.setdefault(shard_id, [])
        while (
            iterator
            and self._selected.get(shard_id, 0) < self._read_ahead
            and len(pending) < READ_AHEAD_LIMIT
            and not self.stop.is_set()
        ):
            try:
                response = self.streams.get_records(ShardIterator=iterator, Limit=1000)
            except ClientError as exc:
                if exc.response["Error"]["Code"] not in (
                    "ExpiredIteratorException",
                    "TrimmedDataAccessException",
                ):
                    raise
                return _RESTART
            iterator = response.get("NextShardIterator")
            records = response.get("Records", [])
            skip_before = state["shards"].get(shard_id, {}).get("from_latest")
            if skip_before and not state["shards"][shard_id].get("sequence"):
                records = [
                    r
                    for r in records
                    if r["dynamodb"]["ApproximateCreationDateTime"].timestamp() >= skip_before
                ]
            if not records:
                break
            read = [aws_stream_record(r, stream_arn) for r in records]
            pending.extend(read)
            selected = sum(1 for record in read if matches_any(self.mapping.filters, record))
            self._selected[shard_id] = self._selected.get(shard_id, 0) + selected
            self._pending_since.setdefault(shard_id, time.monotonic())
        self._iterators[shard_id] = iterator
        return iterator

    @property
    def _read_ahead(self) -> int:
        """Records the filters select read before delivering: a batch for each of the shard's concurrent
        batches. (Counting every record read instead, a consumer whose filters drop most of the stream,
        as the lead consumers drop the search, analytics and task items, got batches of a few records.)"""
        return self.mapping.batch_size * max(1, self.mapping.parallelization_factor)

    def _process(self, stream_arn: str, shard_id: str, records: list[dict[str, Any]]) -> None:
        """Deliver what was read, as Lambda does with a ParallelizationFactor: the records are split into
        that many concurrent lanes by partition key (so one key's records stay in order, in one lane), each
        lane delivered in batches of BatchSize in turn; the position moves once every lane is done."""
        selected = [r for r in records if matches_any(self.mapping.filters, r)]
        lanes: dict[int, list[dict[str, Any]]] = {}
        factor = max(1, self.mapping.parallelization_factor)
        for record in selected:
            key = json.dumps(record["dynamodb"]["Keys"], sort_keys=True).encode()
            lanes.setdefault(zlib.crc32(key) % factor, []).append(record)

        def deliver_lane(lane: list[dict[str, Any]]) -> None:
            for start in range(0, len(lane), self.mapping.batch_size):
                self._deliver(stream_arn, shard_id, lane[start : start + self.mapping.batch_size], attempts=0)

        if len(lanes) <= 1:
            for lane in lanes.values():
                deliver_lane(lane)
            return
        with ThreadPoolExecutor(len(lanes), thread_name_prefix=f"lane {self.mapping.logical_id}") as pool:
            for future in [pool.submit(deliver_lane, lane) for lane in lanes.values()]:
                future.result()  # re-raises _Interrupted: nothing is checkpointed then

    def _deliver(self, stream_arn: str, shard_id: str, records: list[dict[str, Any]], attempts: int) -> None:
        """Lambda's retry rules for one batch: retry from the first failed record (partial batch responses)
        with a growing backoff; with BisectBatchOnFunctionError a failing batch is split in two and each half
        retried on its own (splitting does not count towards the retry quota, as on Lambda), so one poison
        record ends up alone; MaximumRetryAttempts and MaximumRecordAgeInSeconds end the retries, and the
        OnFailure destination gets the description of what is left. Returns only once the batch is done;
        raises _Interrupted if the stack stops first (nothing is checkpointed then)."""
        backoff = 0.5
        while records:
            if self.stop.is_set():
                raise _Interrupted
            invocation = self._invoke(records)
            sequences = [r["dynamodb"]["SequenceNumber"] for r in records]
            failed = (
                batch_item_failures(invocation, sequences)
                if self.mapping.report_batch_item_failures
                else ([] if invocation.ok else sequences)
            )
            if not failed:
                return
            # Everything before the first failed record is done; retry from there (Lambda's checkpoint rule).
            first = min(sequences.index(s) for s in failed)
            records = records[first:]
            if self.mapping.bisect_on_error and len(records) > 1:
                middle = len(records) // 2
                self._deliver(stream_arn, shard_id, records[:middle], attempts)
                self._deliver(stream_arn, shard_id, records[middle:], attempts)
                return
            attempts += 1
            if self._exhausted(records, attempts):
                self._send_on_failure(stream_arn, shard_id, records, invocation, attempts)
                return
            self.stop.wait(backoff)
            backoff = min(backoff * 2, 10.0)

    def _exhausted(self, records: list[dict[str, Any]], attempts: int) -> bool:
        retries = self.mapping.max_retry_attempts
        if retries != -1 and attempts > retries:
            return True
        max_age = self.mapping.max_record_age_s
        oldest = records[0]["dynamodb"].get("ApproximateCreationDateTime", time.time())
        return max_age != -1 and time.time() - oldest > max_age

    def _send_on_failure(
        self,
        stream_arn: str,
        shard_id: str,
        records: list[dict[str, Any]],
        invocation: Invocation,
        attempts: int,
    ) -> None:
        self.log(
            f"[{self.mapping.logical_id}] giving up on {len(records)} record(s) of shard {shard_id} "
            f"after {attempts} attempt(s)"
        )
        destination = self.mapping.on_failure_arn
        if not destination:
            return
        now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        message = {
            "requestContext": {
                "requestId": invocation.request_id,
                "functionArn": self.template.functions[self.mapping.function_logical_id].arn,
                "condition": "RetryAttemptsExhausted",
                "approximateInvokeCount": attempts,
            },
            "responseContext": {
                "statusCode": 200,
                "executedVersion": "$LATEST",
                "functionError": "Unhandled" if invocation.error else "",
            },
            "version": "1.0",
            "timestamp": now,
            "DDBStreamBatchInfo": {
                "shardId": shard_id,
                "startSequenceNumber": records[0]["dynamodb"]["SequenceNumber"],
                "endSequenceNumber": records[-1]["dynamodb"]["SequenceNumber"],
                "approximateArrivalOfFirstRecord": _iso(
                    records[0]["dynamodb"].get("ApproximateCreationDateTime")
                ),
                "approximateArrivalOfLastRecord": _iso(
                    records[-1]["dynamodb"].get("ApproximateCreationDateTime")
                ),
                "batchSize": len(records),
                "streamArn": _public_arn(stream_arn),
            },
        }
        queue = self.template.queue(destination)
        backoff = 0.5
        while True:  # the description must reach the queue before the shard moves on
            try:
                self.sqs.send_message(QueueUrl=queue.url, MessageBody=json.dumps(message))
                break
            except Exception as exc:  # throttled, moto restarting: try again
                self.log(f"[{self.mapping.logical_id}] on-failure queue not reached ({exc!r}); retrying")
                if self.stop.wait(backoff):
                    raise _Interrupted from exc
                backoff = min(backoff * 2, 5.0)
        self.stats.sent_to_on_failure += 1


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class QueuePump(_Pump):
    """One SQS event source mapping."""

    def __init__(
        self,
        mapping: EventSourceMapping,
        template: Template,
        *,
        sqs: Any,
        invoke: Invoke,
        log: Log,
        stop: threading.Event,
        wait_seconds: int = 1,
        failed_batch_visibility_s: int | None = None,
    ) -> None:
        super().__init__(mapping, invoke, log, stop)
        self.queue = template.queue(mapping.source_arn)
        self.sqs = sqs
        self.wait_seconds = wait_seconds
        # None: a batch whose invocation failed as a whole (crash, timeout, error) comes back after the
        # queue's visibility timeout, as on AWS. Tests that kill workers shorten that wait with a number.
        self.failed_batch_visibility_s = failed_batch_visibility_s

    def _receive(self, count: int, wait: int) -> list[dict[str, Any]]:
        response = self.sqs.receive_message(
            QueueUrl=self.queue.url,
            MaxNumberOfMessages=max(1, min(10, count)),
            WaitTimeSeconds=wait,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
            MessageSystemAttributeNames=["All"],
        )
        messages: list[dict[str, Any]] = response.get("Messages", [])
        return messages

    def poll_once(self) -> None:
        messages = self._receive(self.mapping.batch_size, self.wait_seconds)
        if not messages:
            return
        deadline = time.monotonic() + self.mapping.batching_window_s
        while (
            len(messages) < self.mapping.batch_size and time.monotonic() < deadline and not self.stop.is_set()
        ):
            more = self._receive(self.mapping.batch_size - len(messages), 1)
            messages.extend(more)
        records = [self._record(m) for m in messages]
        selected = [r for r in records if matches_any(self.mapping.filters, sqs_filter_view(r))]
        for record in records:
            if record not in selected:
                self._delete(record)  # Lambda deletes messages its filters drop
        if not selected:
            return
        invocation = self._invoke(selected)
        ids = [r["messageId"] for r in selected]
        if self.mapping.report_batch_item_failures:
            failed = set(batch_item_failures(invocation, ids) or [])
        else:
            failed = set() if invocation.ok else set(ids)
        for record in selected:
            if record["messageId"] not in failed:
                self._delete(record)
            elif not invocation.ok and self.failed_batch_visibility_s is not None:
                self._change_visibility(record, self.failed_batch_visibility_s)
        if failed:
            self.log(
                f"[{self.mapping.logical_id}] {len(failed)} of {len(selected)} message(s) failed; "
                "they return "
                f"after the visibility timeout ({self.queue.visibility_timeout}s)"
            )

    def _change_visibility(self, record: dict[str, Any], seconds: int) -> None:
        try:
            self.sqs.change_message_visibility(
                QueueUrl=self.queue.url, ReceiptHandle=record["receiptHandle"], VisibilityTimeout=seconds
            )
        except ClientError as exc:
            self.log(f"[{self.mapping.logical_id}] visibility change failed: {exc}")

    def lag(self) -> dict[str, Any]:
        """Messages waiting and in flight (the queue's approximate counts)."""
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.queue.url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return {
            "messages_waiting": int(attributes.get("ApproximateNumberOfMessages", 0)),
            "messages_in_flight": int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0)),
        }

    def _delete(self, record: dict[str, Any]) -> None:
        try:
            self.sqs.delete_message(QueueUrl=self.queue.url, ReceiptHandle=record["receiptHandle"])
        except ClientError as exc:
            self.log(f"[{self.mapping.logical_id}] delete failed: {exc}")

    def _record(self, message: dict[str, Any]) -> dict[str, Any]:
        attributes = {k: str(v) for k, v in (message.get("Attributes") or {}).items()}
        message_attributes = {}
        for name, value in (message.get("MessageAttributes") or {}).items():
            entry: dict[str, Any] = {
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": value.get("DataType"),
            }
            if "StringValue" in value:
                entry["stringValue"] = value["StringValue"]
            if "BinaryValue" in value:
                entry["binaryValue"] = base64.b64encode(value["BinaryValue"]).decode("ascii")
            message_attributes[name] = entry
        record = {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message.get("Body", ""),
            "attributes": attributes,
            "messageAttributes": message_attributes,
            "md5OfBody": message.get("MD5OfBody"),
            "eventSource": "aws:sqs",
            "eventSourceARN": self.queue.arn,
            "awsRegion": LOCAL_REGION,
        }
        if "MD5OfMessageAttributes" in message:
            record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
        return record


def new_event_id() -> str:
    return str(uuid.uuid4())
