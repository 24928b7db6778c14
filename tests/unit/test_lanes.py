"""A batch's records run concurrently, never two of one key at once or out of order."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from imgpipe import aws
from imgpipe.handlers import process
from imgpipe.lanes import lanes, record_workers, render_slots
from tests.conftest import Events, jpeg_bytes
from tests.unit.conftest import FakeStack, LambdaContext


def test_messages_sharing_a_key_share_a_lane_in_batch_order() -> None:
    assert lanes([["a"], ["b"], ["a", "c"], ["c"], ["d"], []]) == [[0, 2, 3], [1], [4], [5]]
    # joined transitively: "x" and "y" meet in the third message
    assert lanes([["x"], ["y"], ["x", "y"]]) == [[0, 1, 2]]


@pytest.mark.parametrize(
    ("memory", "workers", "slots"), [(512, 2, 1), (1024, 4, 1), (1769, 6, 2), (4096, 8, 6)]
)
def test_sizes_follow_the_functions_memory(memory: int, workers: int, slots: int) -> None:
    assert record_workers(memory) == workers
    assert render_slots(memory, 640 * 1024 * 1024) == slots


def test_a_batch_runs_in_parallel_lanes_and_keeps_each_keys_order(
    stack: FakeStack, events: Events, lambda_context: LambdaContext
) -> None:
    threads: set[str] = set()
    lock = threading.Lock()

    def seen(**_: Any) -> None:
        with lock:
            threads.add(threading.current_thread().name)

    aws.s3().meta.events.register("before-call.s3.GetObject", seen)
    records = []
    for i in range(6):
        etag = stack.upload(f"k{i}.jpg", jpeg_bytes())
        records.append(events.upload_record(f"m{i}", f"k{i}.jpg", etag=etag, sequencer="0A"))
    # two versions of one key in the same batch, the newer last
    old = stack.upload("same.jpg", jpeg_bytes((300, 200)))
    records.append(events.upload_record("m-old", "same.jpg", 2, etag=old, sequencer="0B"))
    new = stack.upload("same.jpg", jpeg_bytes((900, 600)))
    records.append(events.upload_record("m-new", "same.jpg", 2, etag=new, sequencer="0C"))
    response = process.handler({"Records": records}, lambda_context)
    assert response == {"batchItemFailures": []}
    assert len({t for t in threads if t.startswith("imgpipe-lane")}) > 1
    final = stack.catalog.get("uploads", "same.jpg")
    assert final is not None and final.etag == new
    assert all(stack.catalog.get("uploads", f"k{i}.jpg") is not None for i in range(6))
