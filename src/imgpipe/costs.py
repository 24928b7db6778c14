"""What images cost and how long a backlog takes: one model for `make bench-cost` (which
measures its inputs) and `imgpipe backfill --dry-run` (which uses the figures recorded below).

Modelled, and said so: Lambda bills the invocation's wall time at the configured memory; CPU
scales with memory (1,769 MB buys one vCPU), so the CPU part of the measured time stretches
below that and does not shrink above it. DynamoDB writes cost one unit per KB of the item.
Each image adds its share of the queue's requests (the notification, or the backfill's
SendMessageBatch; one receive and one delete per batch of 10). Prices: ``prices.json`` (us-east-1
list prices, recorded by hand with their date; nothing is fetched at run time).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from .lanes import record_workers

_TABLE = json.loads(Path(__file__).with_name("prices.json").read_text())
PRICES: dict[str, float] = {k: float(v) for k, v in _TABLE.items() if not k.startswith("_")}
PRICES_RECORDED = str(_TABLE["_recorded"])
MILLION = 1_000_000
VCPU_MB = 1769
BATCH = 10  # records per invocation (the stage's batchSize)
# Rekognition's default quota for DetectLabels/DetectText/DetectFaces/DetectModerationLabels in
# us-east-1 is 50 transactions per second each (Service Quotas, "Amazon Rekognition"; lower in
# smaller regions): with labels on, a backlog drains no faster than this, whatever the Lambda
# concurrency. Check yours and pass --rekognition-tps.
REKOGNITION_TPS = 50.0
# A Rekognition call's own latency (not measurable offline; AWS does not publish one): assumed.
REKOGNITION_CALL_MS = 400.0


@dataclass(frozen=True)
class Stage:
    name: str
    memory_mb: int = 1024
    detectors: tuple[str, ...] = ("labels", "text")
    results: tuple[str, ...] = ()


@dataclass(frozen=True)
class Measured:
    wall_ms: float  # per image, its share of a batch's wall time, at 20 ms per request
    cpu_ms: float
    requests: dict[str, float]  # per image, by "service.Operation"
    item_kb: float


# `make bench-cost` on 2026-12-05 (bench/cost.py: the process handler in-process on moto, a
# batch of 10 photos of 8-12 MP, labels off, 20 ms per request, 1024 MB's lanes). Re-run it
# and update these when the engine changes.
RECORDED = Measured(
    wall_ms=86.0,
    cpu_ms=70.0,
    requests={
        "dynamodb.PutItem": 1.0,
        "dynamodb.UpdateItem": 1.0,
        "s3.GetObject": 1.0,
        "s3.PutObject": 3.0,
        "sns.Publish": 1.0,
    },
    item_kb=3.4,
)


def wall_seconds(stage: Stage, m: Measured) -> float:
    """An image's share of an invocation's billed time at ``stage``'s memory."""
    cpu_stretch = max(1.0, VCPU_MB / stage.memory_mb) / max(1.0, VCPU_MB / 1024)
    return (m.wall_ms - m.cpu_ms + m.cpu_ms * cpu_stretch) / 1000


def label_wait_seconds(stage: Stage) -> float:
    """An image's share of the time an invocation waits on Rekognition: its detectors are
    asked at once (labels/rekognition.py), and the batch's lanes wait side by side."""
    waves = min(len(stage.detectors), 1)
    return waves * REKOGNITION_CALL_MS / 1000 / record_workers(stage.memory_mb)


def costs(stage: Stage, m: Measured) -> dict[str, float]:
    """Dollars per million images, by line. The measured wall time has labels off; the
    detectors' wait is added (billed like any other wait)."""
    gb_s = stage.memory_mb / 1024 * (wall_seconds(stage, m) + label_wait_seconds(stage))
    puts = m.requests.get("s3.PutObject", 0) + len(stage.results)
    writes = m.requests.get("dynamodb.PutItem", 0) + m.requests.get("dynamodb.UpdateItem", 0)
    lines = {
        "Lambda compute": gb_s * PRICES["lambda_gb_second"],
        "Lambda requests": PRICES["lambda_request"] / BATCH,
        "S3 requests": puts * PRICES["s3_put"]
        + m.requests.get("s3.GetObject", 0) * PRICES["s3_get"],
        "DynamoDB": writes * math.ceil(m.item_kb) * PRICES["dynamodb_write_unit"]
        + m.requests.get("dynamodb.GetItem", 0) * PRICES["dynamodb_read_unit"],
        "SNS": m.requests.get("sns.Publish", 0) * PRICES["sns_publish"],
        "SQS": (1 + 2 / BATCH) * PRICES["sqs_request"],
        "Rekognition": len(stage.detectors) * PRICES["rekognition_image"],
        "CloudWatch Logs": 2 / 1024 / 1024 * PRICES["logs_gb"],  # about 2 KB of JSON log lines
    }
    return {k: v * MILLION for k, v in lines.items()}


@dataclass(frozen=True)
class Estimate:
    images: int
    dollars: float
    seconds: float
    per_second: float  # images processed per second, the slowest of the limits below
    bound_by: str  # which limit sets the pace

    def line(self) -> str:
        return (
            f"{self.images} images: about ${self.dollars:,.2f} and {duration(self.seconds)} "
            f"({self.per_second:,.1f} images/s, bound by {self.bound_by})"
        )


def backfill(  # noqa: PLR0913 - each is a setting of the stage or of the run
    images: int,
    *,
    listed: int,
    stage: Stage,
    concurrency: int,
    rate: float,
    rekognition_tps: float = REKOGNITION_TPS,
    m: Measured = RECORDED,
) -> Estimate:
    """What processing ``images`` of ``listed`` objects costs, and how long it takes: the
    pipeline's cost per image (its own S3 notification replaced by the backfill's share of a
    SendMessageBatch), plus listing and catalog reads for every listed object; the pace is the
    slowest of the send rate, the Lambda concurrency (each environment does an image's share
    of a batch, plus the detectors' calls) and Rekognition's quota."""
    per_image = sum(costs(stage, m).values()) / MILLION
    per_image += (1 / BATCH - 1) * PRICES["sqs_request"]  # batched sends, no S3 notification
    overhead = listed * (PRICES["s3_list"] / 1000 + 0.5 * PRICES["dynamodb_read_unit"])
    image_s = wall_seconds(stage, m) + label_wait_seconds(stage)
    limits = {
        "the send rate": rate,
        "Lambda concurrency": concurrency / image_s,
    }
    if stage.detectors:
        limits["Rekognition's quota"] = rekognition_tps
    bound_by = min(limits, key=lambda name: limits[name])
    pace = limits[bound_by]
    return Estimate(images, images * per_image + overhead, images / pace, pace, bound_by)


def duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
