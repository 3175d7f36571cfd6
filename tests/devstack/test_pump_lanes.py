"""A stream mapping's ParallelizationFactor, as Lambda applies it: a shard's records run in that many
concurrent batches, split by partition key, so one item's records still arrive in order and in one lane."""

import threading
import time
from types import SimpleNamespace

from devstack.pumps import StreamPump
from devstack.template import EventSourceMapping
from devstack.workers import Invocation


def mapping(factor: int, batch_size: int) -> EventSourceMapping:
    return EventSourceMapping(
        logical_id="Consumer",
        function_logical_id="ConsumerFunction",
        source_arn="arn:aws:dynamodb:us-east-1:000000000000:table/T/stream/x",
        kind="dynamodb",
        batch_size=batch_size,
        batching_window_s=0,
        starting_position="TRIM_HORIZON",
        filters=(),
        report_batch_item_failures=True,
        bisect_on_error=False,
        max_retry_attempts=-1,
        max_record_age_s=-1,
        on_failure_arn=None,
        enabled=True,
        parallelization_factor=factor,
    )


def record(key: str, sequence: int) -> dict:
    return {
        "eventName": "MODIFY",
        "dynamodb": {"Keys": {"PK": {"S": key}}, "SequenceNumber": f"{sequence:021d}"},
    }


class Recorder:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.batches: list[list[str]] = []
        self.running = 0
        self.most_at_once = 0

    def __call__(self, function: str, event: dict) -> Invocation:
        with self.lock:
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        time.sleep(0.05)
        with self.lock:
            self.running -= 1
            self.batches.append([r["dynamodb"]["SequenceNumber"] for r in event["Records"]])
        return Invocation("request")


def pump(factor: int, batch_size: int, invoke: Recorder) -> StreamPump:
    return StreamPump(
        mapping(factor, batch_size),
        # the table is looked up by name only when polling; an on-failure destination is not configured
        template=SimpleNamespace(table_for_stream=lambda arn: None),  # type: ignore[arg-type]
        dynamodb=None,
        streams=None,
        sqs=None,
        checkpoints=None,  # type: ignore[arg-type]
        invoke=invoke,
        log=lambda _line: None,
        stop=threading.Event(),
    )


def test_records_run_in_concurrent_lanes_and_each_key_keeps_its_order() -> None:
    keys = [f"LEAD#{n}" for n in range(12)]
    records = [record(keys[n % 12], n) for n in range(120)]  # ten changes of each of 12 leads, interleaved
    recorder = Recorder()
    pump(4, 5, recorder)._process("arn", "shard", records)

    delivered = [sequence for batch in recorder.batches for sequence in batch]
    assert sorted(delivered) == [f"{n:021d}" for n in range(120)]  # every record once
    assert max(len(batch) for batch in recorder.batches) <= 5  # BatchSize still bounds a batch
    assert recorder.most_at_once > 1
    assert recorder.most_at_once <= 4
    order = {f"{n:021d}": n for n in range(120)}
    for key in keys:
        seen = [order[s] for batch in recorder.batches for s in batch if keys[order[s] % 12] == key]
        assert seen == sorted(seen), key


def test_without_a_factor_one_batch_runs_at_a_time() -> None:
    records = [record(f"LEAD#{n % 7}", n) for n in range(30)]
    recorder = Recorder()
    pump(1, 10, recorder)._process("arn", "shard", records)
    assert recorder.most_at_once == 1
    assert [s for batch in recorder.batches for s in batch] == [f"{n:021d}" for n in range(30)]
