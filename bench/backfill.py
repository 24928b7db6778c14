"""`make bench-backfill`: a backfill's memory against the size of the bucket, then a backfill of
10,000 objects on the local stack racing live overwrites and deletes.

1. Memory (``--memory``): imgpipe.backfill over a synthetic, lazy listing of N keys (pages made
   on request), a catalog that holds a record for every other key and a sender that counts, so
   the peak tracemalloc sees is the backfill's own; against the way the previous release's
   reconcile worked (the whole listing held, then judged) in the same run.
2. Scale (``--local N``, default 10,000): its own MiniStack endpoint, serverless.yml deployed
   (labels off: the thumbnail path); N small real photos put in the uploads bucket with its
   notifications off (a bucket adopted as it is); `imgpipe backfill` run from outside, stopped
   after a third and resumed, while 5 % of the keys are overwritten and 3 % deleted; then every
   key against its last action and every notification counted (tests/harness/chaos.py), and a
   second run, which must queue 0. Prints the enqueue rate, the time to DONE and the verdict.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from imgpipe.backfill import Backfill, Checkpoint
from imgpipe.outcomes import Status
from imgpipe.record import ImageRecord

OLD = datetime(2026, 1, 1, tzinfo=UTC)
PAGE = 1000
FINGERPRINT = "f" * 16


def _key(i: int) -> str:
    return f"photos/{i:08d}.jpg"


@dataclass
class SyntheticBucket:
    """``n`` objects, listed in pages of 1000 made on request."""

    n: int

    def get_paginator(self, name: str) -> SyntheticBucket:
        assert name == "list_objects_v2"
        return self

    def paginate(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        after = kwargs.get("StartAfter", "")
        first = int(after[7:15]) + 1 if after else 0
        for start in range(first, self.n, PAGE):
            yield {"Contents": [self.obj(i) for i in range(start, min(start + PAGE, self.n))]}

    @staticmethod
    def obj(i: int) -> dict[str, Any]:
        return {"Key": _key(i), "ETag": f'"{i:032x}"', "Size": 1000, "LastModified": OLD}


class HalfDoneCatalog:
    """Every even key DONE under the current settings: the backfill skips those."""

    def get_many(self, bucket: str, keys: list[str]) -> dict[str, ImageRecord]:
        found = {}
        for key in keys:
            i = int(key[7:15])
            if i % 2 == 0:
                found[key] = ImageRecord(
                    bucket, key, "s:0", Status.DONE, etag=f"{i:032x}", settings=FINGERPRINT
                )
        return found


@dataclass
class CountingSender:
    sent: int = 0
    bytes: int = 0

    def send(self, bodies: list[str]) -> None:
        self.sent += len(bodies)
        self.bytes += sum(len(b) for b in bodies)


@dataclass
class Measured:
    peak_mib: float
    sent: int
    seconds: float


def _measure(fn: Callable[[], int]) -> Measured:
    tracemalloc.start()
    started = time.perf_counter()
    sent = fn()
    seconds = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return Measured(peak / 2**20, sent, seconds)


def streamed(n: int) -> int:
    sender = CountingSender()
    # duck-typed doubles of the S3 client, the catalog and the queue sender
    run = Backfill(SyntheticBucket(n), HalfDoneCatalog(), sender, "uploads", FINGERPRINT)  # type: ignore[arg-type]
    done = run.run(Checkpoint(), max_seconds=1e9)
    assert done.done and done.counts["queued"] == n // 2
    return sender.sent


def held(n: int) -> int:
    """The previous release's shape (reconcile --fix): every listed object held, then judged."""
    bucket = SyntheticBucket(n)
    listed = [o for page in bucket.paginate() for o in page["Contents"]]
    catalog = HalfDoneCatalog()
    records: dict[str, ImageRecord] = {}
    for start in range(0, len(listed), 100):
        records.update(catalog.get_many("uploads", [o["Key"] for o in listed[start : start + 100]]))
    todo = [o for o in listed if o["Key"] not in records]
    return len(todo)


def memory(sizes: list[int]) -> None:
    print("backfill memory: peak traced MiB over a listing of N keys (half of them current)")
    print(f"{'keys':>10} {'streamed':>10} {'held':>10} {'held/streamed':>14} {'queued':>9}")
    for n in sizes:
        s = _measure(lambda n=n: streamed(n))  # type: ignore[misc]
        h = _measure(lambda n=n: held(n)) if n <= 100_000 else None  # type: ignore[misc]
        ratio = f"{h.peak_mib / s.peak_mib:.1f}x" if h else "-"
        held_mib = f"{h.peak_mib:.1f}" if h else "(skipped)"
        print(f"{n:>10,} {s.peak_mib:>10.2f} {held_mib:>10} {ratio:>14} {s.sent:>9,}")


# -- on the local stack -------------------------------------------------------------------


@dataclass
class Timeline:
    started: float = field(default_factory=time.monotonic)

    def say(self, what: str) -> None:
        print(f"[{time.monotonic() - self.started:7.1f}s] {what}", flush=True)


def local(n: int, rate: float) -> int:
    from concurrent.futures import ThreadPoolExecutor

    from imgpipe.cli.demo import corpus_dir
    from imgpipe.local import endpoint
    from imgpipe.local.deploy import deploy
    from imgpipe.local.stack import discover, set_trigger
    from tests.harness.backends import processing
    from tests.harness.backfill import notifications_off, small_photos
    from tests.harness.chaos import perform, subscribe_inbox, wait_drained

    clock = Timeline()
    os.environ[endpoint.STATE_DIR_ENV] = tempfile.mkdtemp(prefix="imgpipe-backfill-")
    photos = small_photos(sorted(corpus_dir().glob("*.jpg")), Path(tempfile.mkdtemp()))
    cache = [p.read_bytes() for p in photos]
    ep = endpoint.up()
    try:
        deploy(ep, quiet=True, params={"labeler": "none", "processTimeout": "20"})
        stack = discover(ep)
        set_trigger(stack, False)
        clock.say(f"deployed to {ep.url}")
        inbox = subscribe_inbox(stack, "backfill-bench")
        prefix = "adopted/"
        script, overwrites, deletes = _script(n, cache, prefix)
        existing, live = script.rounds
        with notifications_off(stack):
            perform(stack, existing, workers=16)
        clock.say(f"{n} objects in the bucket, announced to no one")
        checkpoint = Path(tempfile.mkdtemp()) / "run.json"
        common = ["--prefix", prefix, "--min-age", "0", "--checkpoint", str(checkpoint)]
        dry = _cli("--dry-run", *common[:4])
        clock.say(f"dry run: {dry['estimate']['images']} to queue, {dry['estimate']}")
        with processing(stack) as _:
            began = time.monotonic()
            first = _cli(*common, "--yes", "--rate", str(rate), "--max-messages", str(n // 3))
            clock.say(f"stopped after {first['checkpoint']['counts']['queued']} (interrupted)")
            with ThreadPoolExecutor(1) as pool:
                rest = pool.submit(_cli, *common, "--yes", "--resume", "--rate", str(rate))
                time.sleep(2)
                perform(stack, live, workers=8)
                clock.say(f"live: {overwrites} overwrites, {deletes} deletes")
                resumed = rest.result()
            sent = resumed["checkpoint"]
            queued, enqueue_s = sent["counts"]["queued"], sent["seconds"]
            clock.say(f"queued {queued} in {enqueue_s:.1f}s of slices: {queued / enqueue_s:.0f}/s")
            drained = wait_drained(stack, stack.queue_url, 3600)
            done_s = time.monotonic() - began
        clock.say(f"drained={drained}: all processed {done_s:.0f}s after the first message")
        print(
            f"\n{n} objects, {overwrites} overwritten and {deletes} deleted while the "
            f"backfill ran: enqueue {queued / enqueue_s:.0f} messages/s (rate limit {rate:.0f}); "
            f"every object final {done_s:.0f}s after the first message "
            f"({n / done_s:.1f} images/s on this machine)"
        )
        ok = _verdict(stack, script, inbox, prefix)
    finally:
        endpoint.down()
    return 0 if ok else 1


def _verdict(stack: Any, script: Any, inbox: str, prefix: str) -> bool:
    """Every key against its last action, the notifications, the derived bucket; a rerun."""
    from tests.harness.chaos import collect, derived_findings, reconcile

    want = {(k, op.expected) for k, op in script.final().items()}
    notes = collect(stack, inbox, lambda got: {(x.key, x.status) for x in got} >= want, 300)
    findings, _ = derived_findings(stack, prefix)
    result = reconcile(stack, script, notes, findings)
    again = _cli("--dry-run", "--prefix", prefix, "--min-age", "0")
    print(result.line())
    print(f"second run would queue {again['counts']['queued']}")
    return bool(result.ok and again["counts"]["queued"] == 0)


def _script(n: int, cache: list[bytes], prefix: str) -> tuple[Any, int, int]:
    """N objects (each its own bytes), then 5 % overwritten with other bytes and 3 % deleted."""
    from tests.harness.chaos import Op, Script

    existing = tuple(
        Op(f"{prefix}{i:06d}.jpg", cache[i % len(cache)] + i.to_bytes(4, "big"), Status.DONE)
        for i in range(n)
    )
    overwrites = tuple(
        Op(op.key, cache[(i + 1) % len(cache)] + b"\1" + i.to_bytes(4, "big"), Status.DONE)
        for i, op in enumerate(existing[::20])
    )
    rewritten = {o.key for o in overwrites}
    deletes = tuple(
        Op(op.key, None, Status.DELETED) for op in existing[7::33] if op.key not in rewritten
    )
    return Script((existing, overwrites + deletes)), len(overwrites), len(deletes)


def _cli(*args: str) -> dict[str, Any]:
    from tests.harness.backfill import run_backfill

    return run_backfill(*args)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--memory", type=int, nargs="*", default=None, help="keys (10^4 10^5)")
    parser.add_argument("--local", type=int, default=0, help="objects on the local stack")
    parser.add_argument("--rate", type=float, default=1000, help="messages/s (--local)")
    args = parser.parse_args()
    if args.memory is not None:
        memory(args.memory or [10_000, 100_000, 1_000_000])
    if args.local:
        return local(args.local, args.rate)
    return 0


if __name__ == "__main__":
    sys.exit(main())
