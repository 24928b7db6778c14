"""What `make bench-aws`'s measured handler means at the scale of a stage, modelled (nothing here
runs on AWS, and every input that is not measured is named as an assumption where it is used).

1. A backfill of 10^6 images with the stage's defaults (serverless.yml params): imgpipe.costs,
   the model `imgpipe backfill --dry-run` uses, fed with the handler time measured in the same
   run instead of the recorded figure.
2. A burst of 100 uploads at once, upload to DONE: a small discrete-event simulation of the SQS
   event source mapping (batches of ``batchSize``; Lambda starts 5 concurrent batches and adds up
   to 300 a minute, capped by ``maximumConcurrency``: AWS's documented scaling for SQS), each new
   execution environment paying a cold start, each batch worked in lanes (imgpipe.lanes) that
   share one environment's CPU while their requests wait side by side.
"""

from __future__ import annotations

import heapq
import math
import statistics
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from imgpipe import costs
from imgpipe.lanes import record_workers

ROOT = Path(__file__).resolve().parent.parent

# Assumptions (not measurable offline; AWS publishes none of them as a figure):
S3_TO_SQS_S = 0.5  # S3 event notification to the queue ("typically within seconds")
POLL_S = 0.1  # the mapping's long poll noticing a message
COLD_START_S = 0.46 + 0.25  # handler import (make bench-coldstart) + runtime start
FIRST_BATCHES = 5  # Lambda's SQS scaling: 5 batches at once, then up to 300 more a minute
SCALE_PER_S = 300 / 60
REQUEST_S = 0.02  # a same-region S3/DynamoDB/SNS round trip (as in the measured run)


class _TagTolerant(yaml.SafeLoader):
    """serverless.yml holds CloudFormation tags (!Ref ...): read past them, only params matter."""


_TagTolerant.add_multi_constructor("!", lambda loader, suffix, node: None)


def stage_params() -> dict[str, Any]:
    text = (ROOT / "serverless.yml").read_text()
    return dict(yaml.load(text, Loader=_TagTolerant)["params"]["default"])


def default_stage(params: dict[str, Any]) -> costs.Stage:
    detectors = tuple(d for d in str(params["detectors"]).split(",") if d)
    return costs.Stage(
        "default",
        memory_mb=int(params["processMemory"]),
        detectors=detectors if params["labeler"] != "none" else (),
    )


def backfill_lines(wall_ms: float, cpu_ms: float) -> list[str]:
    params = stage_params()
    stage = default_stage(params)
    measured = replace(costs.RECORDED, wall_ms=wall_ms, cpu_ms=cpu_ms)
    concurrency, rate = int(params["maxConcurrency"]), float(params["backfillRate"])
    lines = [
        f"backfill of 10^6 images, default stage ({stage.memory_mb} MB, detectors "
        f"{','.join(stage.detectors) or 'none'}, maximumConcurrency {concurrency}), "
        f"handler {wall_ms:.0f} ms wall / {cpu_ms:.0f} ms CPU per image as measured above:"
    ]
    runs = (
        (f"default rate {rate:g}/s", stage, rate),
        ("rate unlimited", stage, math.inf),
        ("rate unlimited, labels off", replace(stage, detectors=()), math.inf),
    )
    for label, s, r in runs:
        guess = costs.backfill(
            costs.MILLION,
            listed=costs.MILLION,
            stage=s,
            concurrency=concurrency,
            rate=r,
            m=measured,
        )
        lines.append(f"  {label:<28} {guess.line()}")
    return lines


@dataclass(frozen=True)
class Shape:
    batch: int
    concurrency: int
    lanes: int
    cpu_s: float  # per image on the function's CPU share at its memory
    detectors: int
    call_s: float  # one Rekognition call
    parallel: bool = True  # an image's detectors asked at once (this release), or in turn


def burst(n: int, shape: Shape) -> list[float]:
    """Seconds from upload to DONE for ``n`` uploads at t=0 (see the module docstring). Each
    batch goes to whichever starts working first: an idle warm environment, or a new one (when
    the scaling allows it, after its cold start)."""
    ready = S3_TO_SQS_S + POLL_S
    warm: list[float] = []  # when each started environment is idle again
    done: list[float] = []
    for first in range(0, n, shape.batch):
        records = min(shape.batch, n - first)
        new = math.inf
        if len(warm) < shape.concurrency:
            allowed_at = ready + max(0, len(warm) + 1 - FIRST_BATCHES) / SCALE_PER_S
            new = allowed_at + COLD_START_S
        begin = max(heapq.heappop(warm), ready) if warm and warm[0] <= new else new
        heapq.heappush(warm, _batch(begin, records, shape, done))
    return done


def _batch(start: float, records: int, shape: Shape, done: list[float]) -> float:
    """One invocation: ``lanes`` records at a time; each fetches (a request), renders on the
    environment's one CPU (first come, first served), asks Rekognition per detector, then
    writes (thumbnail PUTs together, record, notification, mark). Returns when the last ends."""
    cpu_free = start
    lane_free = [start] * shape.lanes
    last = start
    for _ in range(records):
        lane = min(range(shape.lanes), key=lane_free.__getitem__)
        fetched = lane_free[lane] + REQUEST_S
        rendered = max(fetched, cpu_free) + shape.cpu_s
        cpu_free = rendered
        waves = min(shape.detectors, 1) if shape.parallel else shape.detectors
        final = rendered + waves * shape.call_s + 4 * REQUEST_S
        done.append(final)
        lane_free[lane] = final
        last = max(last, final)
    return last


def _stretch(memory: int) -> float:
    """CPU time at ``memory`` against the measured figure (taken as 1024 MB's share)."""
    return max(1.0, costs.VCPU_MB / memory) / max(1.0, costs.VCPU_MB / 1024)


BIG_MB = 2048  # a whole vCPU and 8 lanes: what a stage that wants lower latency would pick


def burst_lines(cpu_ms: float) -> list[str]:
    params = stage_params()
    stage = default_stage(params)
    memory = stage.memory_mb
    shape = Shape(
        batch=int(params["batchSize"]),
        concurrency=int(params["maxConcurrency"]),
        lanes=record_workers(memory),
        cpu_s=cpu_ms * _stretch(memory) / 1000,
        detectors=len(stage.detectors),
        call_s=costs.REKOGNITION_CALL_MS / 1000,
    )
    lines = [
        f"burst of 100 uploads at once, upload to DONE (modelled: batch {shape.batch}, "
        f"maximumConcurrency {shape.concurrency}, {shape.lanes} lanes, {cpu_ms:.0f} ms CPU per "
        f"image as measured; assumed: S3->SQS {S3_TO_SQS_S} s, cold start {COLD_START_S:.2f} s, "
        f"Rekognition {costs.REKOGNITION_CALL_MS:.0f} ms per call; pipelines of this shape "
        "report a sub-2 s average):"
    ]
    names = ",".join(stage.detectors) or "none"
    for label, s in (
        (f"{names}, asked in turn (before)", replace(shape, parallel=False)),
        (f"{names}, asked at once (now)", shape),
        ("labels off", replace(shape, detectors=0)),
        (
            f"{names} at once, {BIG_MB} MB",
            replace(shape, lanes=record_workers(BIG_MB), cpu_s=cpu_ms * _stretch(BIG_MB) / 1000),
        ),
    ):
        times = sorted(burst(100, s))
        p95 = times[math.ceil(0.95 * len(times)) - 1]
        lines.append(
            f"  {label:<36} mean {statistics.mean(times):.2f} s, p50 {statistics.median(times):.2f}"
            f" s, p95 {p95:.2f} s, last {times[-1]:.2f} s"
        )
    return lines
