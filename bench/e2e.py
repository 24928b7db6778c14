"""`make bench-e2e`: the whole pipeline on the local stack, against the bare engine.

Its own endpoint (MiniStack running the packaged zip from its own SQS event source mapping),
serverless.yml deployed (stage local, labels off: this measures the pipeline around the
thumbnail engine), one execution environment per core.
12 MP photos are made from six corpus photos (LANCZOS upscale + grain, as in bench/thumbs.py).

1. bare engine: `render()` on each photo in this process, median ms;
2. warm-up: two uploads, waited for (as warm Lambdas would be);
3. burst: 100 uploads at once; drain time from the first upload to the last final status;
4. steady: a stream of uploads at --rate per second for --seconds.

Prints, side by side: throughput (images/s), upload -> final-status latency p50/p95/max, the
ratio of the burst's throughput to the bare engine's on the same cores (target >= 0.8), the
burst's drain time against 100 x engine time / cores (target <= 1.25), and where the CPU went:
the emulator's server (its own process) apart from the processes that run the handler
(MiniStack's Lambda workers), per image and against the engine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from bench.thumbs import make_photo
from imgpipe.catalog import Catalog
from imgpipe.deployment import Deployment
from imgpipe.imaging import Limits, parse_sizes, render
from imgpipe.local import endpoint
from imgpipe.local.deploy import deploy
from imgpipe.local.stack import discover
from imgpipe.outcomes import FINAL
from tests.harness.backends import processing

CORPUS = Path(__file__).resolve().parents[2] / "shared/corpus/exif-orientation"


def twelve_mp_photos(workdir: Path) -> list[bytes]:
    photos = []
    for name in (
        "Landscape_1",
        "Landscape_3",
        "Landscape_6",
        "Portrait_2",
        "Portrait_5",
        "Portrait_8",
    ):
        path = make_photo(12, workdir, CORPUS / f"{name}.jpg")
        photos.append(path.read_bytes())
    return photos


def engine_ms(photos: list[bytes]) -> float:
    specs, limits = parse_sizes("small=128,medium=512,large=1024"), Limits(10**9, 10**9)
    render(photos[0], specs, limits)  # warm-up
    samples = []
    for data in photos * 2:
        started = time.perf_counter()
        render(data, specs, limits)
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc), to show the emulator's share."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def descendants(root: int) -> list[int]:
    """Every process below ``root`` (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError):
            continue  # gone meanwhile
        children.setdefault(ppid, []).append(int(stat.parent.name))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def workers_cpu(ep: endpoint.Endpoint) -> dict[int, float]:
    """CPU seconds of each process that runs the handler: the emulator's children (its Lambda
    workers)."""
    pids = [p for p in descendants(ep.pid) if p != ep.pid]
    spent = {}
    for pid in pids:
        try:
            spent[pid] = cpu_seconds(pid)
        except OSError:
            continue
    return spent


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class Watcher:
    """Polls the catalog for the final status of each key; the latency is the record's own
    updated_at (written by the worker) minus the moment the upload call returned."""

    def __init__(self, stack: Deployment) -> None:
        self.catalog = Catalog(stack.client("dynamodb"), stack.table)
        self.bucket = stack.uploads_bucket
        self.uploaded: dict[str, float] = {}
        self.final: dict[str, float] = {}
        self.lock = threading.Lock()

    def uploaded_now(self, key: str) -> None:
        with self.lock:
            self.uploaded[key] = time.time()

    def wait(self, keys: list[str], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(k not in self.final for k in keys):
            for key in keys:
                if key in self.final:
                    continue
                record = self.catalog.get(self.bucket, key)
                if record and record.status in FINAL:
                    self.final[key] = datetime.fromisoformat(record.updated_at).timestamp()
            time.sleep(0.2)

    def latencies(self, keys: list[str]) -> list[float]:
        return [self.final[k] - self.uploaded[k] for k in keys if k in self.final]


@dataclass
class Measured:
    backend: str
    burst: list[str] = field(default_factory=list)
    steady: list[str] = field(default_factory=list)
    drain: float = 0.0  # seconds from the first burst upload to its last final status
    emulator_cpu: float = 0.0  # CPU seconds the emulator's server spent during the burst
    workers_cpu: float = 0.0  # CPU seconds the processes running the handler spent in it
    burst_latency: list[float] = field(default_factory=list)
    steady_latency: list[float] = field(default_factory=list)
    lost: int = 0


def measure(ep: endpoint.Endpoint, photos: list[bytes], args: argparse.Namespace) -> Measured:
    deploy(ep, quiet=True, params={"labeler": "none"})
    stack = discover(ep)
    s3 = stack.client("s3")
    watcher = Watcher(stack)
    out = Measured(ep.kind)

    def put(key: str, data: bytes) -> None:
        s3.put_object(Bucket=stack.uploads_bucket, Key=key, Body=data)
        watcher.uploaded_now(key)

    with processing(stack):
        warm = [f"warm/{i}.jpg" for i in range(2)]
        for key in warm:
            put(key, photos[0])
        watcher.wait(warm, 120)
        out.burst = [f"burst/{i:03d}.jpg" for i in range(args.burst)]
        emulator_before, workers_before = cpu_seconds(ep.pid), workers_cpu(ep)
        started = time.time()
        with ThreadPoolExecutor(8) as pool:
            for i, key in enumerate(out.burst):
                pool.submit(put, key, photos[i % len(photos)])
        watcher.wait(out.burst, 600)
        out.drain = max(watcher.final.get(k, started) for k in out.burst) - started
        out.emulator_cpu = cpu_seconds(ep.pid) - emulator_before
        # workers that started during the burst count from zero; any that exited are missed
        out.workers_cpu = sum(
            spent - workers_before.get(pid, 0.0) for pid, spent in workers_cpu(ep).items()
        )
        t0 = time.monotonic()
        while time.monotonic() - t0 < args.seconds:
            key = f"steady/{len(out.steady):03d}.jpg"
            put(key, photos[len(out.steady) % len(photos)])
            out.steady.append(key)
            time.sleep(max(0.0, t0 + len(out.steady) / args.rate - time.monotonic()))
        watcher.wait(out.steady, 120)
    out.burst_latency = watcher.latencies(out.burst)
    out.steady_latency = watcher.latencies(out.steady)
    out.lost = sum(k not in watcher.final for k in out.burst + out.steady)
    return out


def run_backend(
    backend: str, workdir: Path, photos: list[bytes], args: argparse.Namespace
) -> Measured:
    os.environ[endpoint.STATE_DIR_ENV] = str(workdir / f"state-{backend}")
    ep = endpoint.up()
    try:
        return measure(ep, photos, args)
    finally:
        endpoint.down()


def report(results: list[Measured], engine: float, args: argparse.Namespace) -> None:
    cores = os.cpu_count() or 2
    bare = cores / (engine / 1000)
    ideal_drain = args.burst * engine / 1000 / cores
    print(
        f"12 MP JPEGs, 3 thumbnails each, labels off; {cores} cores, {cores} execution environments"
    )
    print(f"bare engine: {engine:.0f} ms per photo -> {bare:.1f} images/s on {cores} cores\n")
    rows = [
        ("", *(m.backend for m in results)),
        (f"burst of {args.burst}: drained in (s)", *(f"{m.drain:.1f}" for m in results)),
        ("  images/s", *(f"{args.burst / m.drain:.1f}" for m in results)),
        ("  latency p50 / p95 (s)", *(_pair(m.burst_latency, 1) for m in results)),
        (
            f"steady {args.rate:g}/s latency p50 / p95 (s)",
            *(_pair(m.steady_latency, 2) for m in results),
        ),
        (
            "emulator server CPU, share of the burst",
            *(f"{m.emulator_cpu / (m.drain * cores):.0%}" for m in results),
        ),
        (
            "emulator server CPU ms per image",
            *(f"{m.emulator_cpu * 1000 / args.burst:.0f}" for m in results),
        ),
        (
            "handler processes' CPU ms per image",
            *(f"{m.workers_cpu * 1000 / args.burst:.0f}" for m in results),
        ),
        (
            "  / bare engine (emulator excluded)",
            *(f"{m.workers_cpu * 1000 / args.burst / engine:.2f}" for m in results),
        ),
        (
            "throughput / bare engine (target >= 0.8)",
            *(f"{args.burst / m.drain / bare:.2f}" for m in results),
        ),
        (
            f"drain / ideal {ideal_drain:.1f} s (target <= 1.25)",
            *(f"{m.drain / ideal_drain:.2f}" for m in results),
        ),
        ("not final", *(str(m.lost) for m in results)),
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print(
            row[0].ljust(widths[0]), *(c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True))
        )


def _pair(values: list[float], digits: int) -> str:
    if not values:
        return "-"
    return f"{percentile(values, 0.5):.{digits}f} / {percentile(values, 0.95):.{digits}f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--burst", type=int, default=100)
    parser.add_argument("--rate", type=float, default=2.0, help="steady uploads per second")
    parser.add_argument("--seconds", type=float, default=15.0)
    args = parser.parse_args()
    wall = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="imgpipe-e2e-"))
    photos = twelve_mp_photos(workdir)
    engine = engine_ms(photos)
    results = [run_backend("ministack", workdir, photos, args)]
    report(results, engine, args)
    print(f"bench wall time {time.monotonic() - wall:.0f}s")
    if any(m.lost for m in results):
        print("NOT FINAL: some uploads had no final status", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
