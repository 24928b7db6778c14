"""`make bench-aws`: the process handler under an AWS-like round trip, before anyone deploys.

The handler runs in-process on moto with a batch of 10 photos of 8-12 MP (made from corpus
photos as bench/thumbs.py does), labels off, results documents off. A botocore hook adds a
simulated round trip to every AWS request (0 and 20 ms: same-region S3/DynamoDB/SNS) and
measures the CPU moto itself spends answering, so that it can be taken out. The same batch runs
with one lane (records one after another: the previous release's shape) and with this release's
lanes, in the same run.

Prints per image: engine ms (bare render, median), handler wall ms, handler CPU ms (moto
excluded), moto CPU ms, requests; and the ratios the targets are about: wall at 20 ms / wall
at 0 ms (target <= 1.5), handler CPU / engine (target <= 1.3). Then a profile of one batch
(one lane, no delay) that says where the CPU per image goes, by area: the engine (imgpipe's
imaging + Pillow), the AWS SDK (request building, signing, parsing), Powertools, the rest of
imgpipe, the standard library, and moto (the emulator: on AWS that work is not on the
function's CPU). Last, bench/aws_model.py with the measured figures: the time and cost to
backfill 10^6 images at the default concurrency, and a burst of 100 uploads, upload to DONE.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

for name, value in {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_DEFAULT_REGION": "us-east-1",
    "UPLOADS_BUCKET": "uploads",
    "DERIVED_BUCKET": "derived",
    "TABLE_NAME": "images",
    "LABELER": "none",
    "RESULTS_DOCUMENTS": "none",
    "POWERTOOLS_METRICS_DISABLED": "true",
    "POWERTOOLS_LOG_LEVEL": "ERROR",
    "FUNCTION_TIMEOUT": "60",
}.items():
    os.environ.setdefault(name, value)

import boto3  # noqa: E402 - after the environment above
from moto import mock_aws  # noqa: E402 - after the environment above
from moto.core.botocore_stubber import BotocoreStubber  # noqa: E402 - after the environment above

from bench.aws_model import backfill_lines, burst_lines  # noqa: E402 - after the environment above
from bench.thumbs import make_photo  # noqa: E402 - after the environment above
from imgpipe import aws, bootstrap, config  # noqa: E402 - after the environment above
from imgpipe.handlers import process  # noqa: E402 - after the environment above
from imgpipe.imaging import parse_sizes, render  # noqa: E402 - after the environment above
from imgpipe.imaging.types import DEFAULT_SIZES, Limits  # noqa: E402 - after the environment above
from imgpipe.lanes import record_workers  # noqa: E402 - after the environment above
from imgpipe.observability import metrics  # noqa: E402 - after the environment above
from tests.harness.samples import (  # noqa: E402 - after the environment above
    CORPUS,
    Events,
    LambdaContext,
)
from tests.harness.tables import create_images_table  # noqa: E402 - after the environment above

BATCH = 10


class Network:
    """A round trip per AWS call, and the CPU moto spends answering each (its request handler
    timed with the calling thread's CPU clock: the handler's own work, botocore's included,
    stays on the handler's side)."""

    def __init__(self) -> None:
        self.delay = 0.0
        self.calls: Counter[str] = Counter()
        self.emulator_cpu = 0.0
        self._lock = threading.Lock()

    def before(self, event_name: str, **_: Any) -> None:
        with self._lock:
            self.calls[event_name.split(".", 1)[1]] += 1
        if self.delay:
            time.sleep(self.delay)

    def time_moto(self) -> None:
        answer = BotocoreStubber.__call__
        network = self

        def timed(self: BotocoreStubber, event_name: str, request: Any, **kw: Any) -> Any:
            started = time.thread_time()
            try:
                return answer(self, event_name, request, **kw)
            finally:
                spent = time.thread_time() - started
                with network._lock:
                    network.emulator_cpu += spent

        BotocoreStubber.__call__ = timed  # type: ignore[method-assign]


@dataclass
class Run:
    wall_ms: float
    cpu_ms: float
    emulator_ms: float
    requests: float
    by_operation: Counter[str]


def setup(network: Network) -> None:
    session = aws.session()
    session.events.register("before-call", network.before)
    network.time_moto()
    s3 = boto3.client("s3")
    for bucket in ("uploads", "derived"):
        s3.create_bucket(Bucket=bucket)
    create_images_table(boto3.client("dynamodb"))
    os.environ["TOPIC_ARN"] = boto3.client("sns").create_topic(Name="events")["TopicArn"]


def batch(photos: list[bytes], prefix: str) -> dict[str, Any]:
    s3, events = boto3.client("s3"), Events()
    records = []
    for i, body in enumerate(photos):
        key = f"{prefix}/{i:02d}.jpg"
        etag = s3.put_object(Bucket="uploads", Key=key, Body=body)["ETag"].strip('"')
        records.append(events.upload_record(f"{prefix}-{i}", key, etag=etag, sequencer="0A"))
    return {"Records": records}


def run(network: Network, photos: list[bytes], prefix: str, workers: int, delay: float) -> Run:
    os.environ["RECORD_WORKERS"] = str(workers)
    config.clear_caches()
    bootstrap.pipeline.cache_clear()  # the clients stay: the simulated network hooks them
    event = batch(photos, prefix)
    network.delay, network.calls, network.emulator_cpu = delay, Counter(), 0.0
    wall, cpu = time.perf_counter(), time.process_time()
    response = process.handler(event, LambdaContext())
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    assert response == {"batchItemFailures": []}, response
    metrics.clear_metrics()  # EMF lines are not what this prints
    n = len(photos)
    return Run(
        wall_ms=wall * 1000 / n,
        cpu_ms=(cpu - network.emulator_cpu) * 1000 / n,
        emulator_ms=network.emulator_cpu * 1000 / n,
        requests=sum(network.calls.values()) / n,
        by_operation=network.calls,
    )


AREAS = (  # first match wins: a path fragment of the function's file -> area
    ("/moto/", "moto (emulator)"),
    ("/werkzeug/", "moto (emulator)"),
    ("/responses/", "moto (emulator)"),
    ("/imgpipe/imaging/", "engine"),
    ("/PIL/", "engine"),
    ("/botocore/", "AWS SDK"),
    ("/boto3/", "AWS SDK"),
    ("/s3transfer/", "AWS SDK"),
    ("/urllib3/", "AWS SDK"),
    ("/aws_lambda_powertools/", "Powertools"),
    ("/imgpipe/", "imgpipe (rest)"),
)


def area_of(filename: str) -> str:
    return next((area for fragment, area in AREAS if fragment in filename), "stdlib + other")


def attribute(stats: Any, func: tuple[str, int, str], seen: frozenset[Any]) -> Counter[str]:
    """Which areas a function's own time belongs to: its own area, or when it is a C function
    or the standard library (json, urllib, email headers, copy...) the areas of its callers,
    in proportion to the time each caller's calls took, up to the first caller with an area."""
    area = area_of(func[0]) if func[0] != "~" else "stdlib + other"
    callers = stats[func][4]
    if area != "stdlib + other" or not callers or func in seen:
        return Counter({area: 1.0})
    total = sum(timing[3] for timing in callers.values()) or 1.0
    shares: Counter[str] = Counter()
    for caller, timing in callers.items():
        for caller_area, share in attribute(stats, caller, seen | {func}).items():
            shares[caller_area] += share * timing[3] / total
    return shares


def profile(network: Network, photos: list[bytes]) -> dict[str, float]:
    """Own (not cumulative) CPU per image by area, from cProfile over one batch in one lane,
    every thread profiled with its own CPU clock (the lane and the upload threads included).
    Under the profiler everything is slower; the shares are what this is for."""
    os.environ["RECORD_WORKERS"] = "1"
    config.clear_caches()
    bootstrap.pipeline.cache_clear()  # a new pipeline: its upload threads start profiled
    event = batch(photos, "profile")
    network.delay = 0.0
    profilers: list[cProfile.Profile] = []

    def start(*_: Any) -> None:  # the first event in each new thread: profile it from there
        profiler = cProfile.Profile(time.thread_time)
        profilers.append(profiler)
        profiler.enable()

    threading.setprofile(start)
    start()
    try:
        process.handler(event, LambdaContext())
    finally:
        threading.setprofile(None)
        profilers[0].disable()
    metrics.clear_metrics()
    spent: Counter[str] = Counter()
    for profiler in profilers:
        stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
        for func, (_cc, _nc, own, _cum, _callers) in stats.items():
            if "SimpleQueue" in func[2] or "lock" in func[2]:
                continue  # idle threads waiting for work: a wait still pending is timed wrong
            for area, share in attribute(stats, func, frozenset()).items():
                spent[area] += own * share * 1000 / len(photos)
    return dict(spent.most_common())


def engine_ms(photos: list[bytes], repeat: int) -> float:
    """The bare render's CPU per image: the median over the photos of each one's median time
    (the same statistic as the handler's figures)."""
    sizes, limits = parse_sizes(DEFAULT_SIZES), Limits()
    best = []
    for body in photos:
        times = []
        for _ in range(repeat):
            started = time.process_time()
            render(body, sizes, limits)
            times.append((time.process_time() - started) * 1000)
        best.append(statistics.median(times))
    return statistics.median(best)


def median_run(runs: list[Run]) -> Run:
    """Each figure's median over the repeats (the machine is shared and noisy)."""
    return Run(
        wall_ms=statistics.median(r.wall_ms for r in runs),
        cpu_ms=statistics.median(r.cpu_ms for r in runs),
        emulator_ms=statistics.median(r.emulator_ms for r in runs),
        requests=statistics.median(r.requests for r in runs),
        by_operation=runs[-1].by_operation,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--delays", default="0,20", help="simulated round trips, ms")
    parser.add_argument("--repeat", type=int, default=3, help="runs per configuration (median)")
    args = parser.parse_args()
    delays = [float(d) / 1000 for d in args.delays.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        sources = sorted(CORPUS.glob("*.jpg"))[:BATCH]
        paths = [make_photo(8 + i % 5, Path(tmp), source) for i, source in enumerate(sources)]
        photos = [p.read_bytes() for p in paths]
    print(f"{len(photos)} photos of 8-12 MP, labels off, results documents off")
    engine = engine_ms(photos, args.repeat)
    network = Network()
    table: dict[tuple[str, float], Run] = {}
    with mock_aws():
        aws.reset()
        setup(network)
        run(network, photos[:2], "warm", 1, 0.0)  # imports, clients, caches
        lanes = record_workers(LambdaContext.memory_limit_in_mb)
        for delay in delays:
            for label, workers in (("one lane (before)", 1), (f"{lanes} lanes (now)", lanes)):
                tag = f"{label}-{delay}".replace(" ", "-").replace("(", "").replace(")", "")
                runs = [
                    run(network, photos, f"{tag}-{i}", workers, delay) for i in range(args.repeat)
                ]
                table[(label, delay)] = median_run(runs)
        areas = profile(network, photos)
    print(f"engine (bare render, CPU) ms/image: {engine:.0f}; medians of {args.repeat} runs\n")
    print(f"{'handler':<20}{'round trip':>11}{'wall ms':>9}{'CPU ms':>8}{'moto ms':>9}{'req':>6}")
    for (label, delay), r in table.items():
        print(
            f"{label:<20}{delay * 1000:>9.0f}ms{r.wall_ms:>9.0f}{r.cpu_ms:>8.0f}"
            f"{r.emulator_ms:>9.0f}{r.requests:>6.1f}"
        )
    print()
    hi = max(delays)
    for label in dict.fromkeys(lbl for lbl, _ in table):
        slow, fast = table[(label, hi)], table[(label, 0.0)]
        print(
            f"{label}: wall at {hi * 1000:.0f} ms / wall at 0 ms = "
            f"{slow.wall_ms / fast.wall_ms:.2f}"
            f"  (target <= 1.5); handler CPU / engine = {fast.cpu_ms / engine:.2f}"
            f"  (target <= 1.3)"
        )
    now = table[(f"{lanes} lanes (now)", 0.0)]
    ops = ", ".join(f"{op} {n / BATCH:.0f}" for op, n in sorted(now.by_operation.items()))
    print(f"requests per DONE image: {now.requests:.1f} ({ops})")
    total = sum(areas.values())
    print("\nwhere one batch's CPU goes (cProfile, one lane, ms/image; profiled, so slower;")
    print("the standard library's and C functions' time counted for the area that called them):")
    for area, ms in areas.items():
        print(f"  {area:<18}{ms:>7.1f}  {ms / total:>4.0%}")
    own = total - areas.get("moto (emulator)", 0.0)
    engine_share = areas.get("engine", 0.0)
    print(
        f"  handler without the emulator: {own:.1f} ms,"
        f" of which the engine {engine_share / own:.0%}"
    )
    measured = table[(f"{lanes} lanes (now)", hi)]
    print()
    print("\n".join(backfill_lines(measured.wall_ms, measured.cpu_ms)))
    print()
    print("\n".join(burst_lines(measured.cpu_ms)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
