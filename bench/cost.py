"""`make bench-cost`: dollars per million images, for the default stage and for each option that
changes it, from the requests counted and the durations measured here (bench/aws_latency.py's
run: the handler in-process on moto, a 20 ms round trip per request, a batch of 10 photos of
8-12 MP) and the list prices in src/imgpipe/prices.json (their date and source are in the file).
The model itself is imgpipe.costs (the backfill's dry run uses it too, with the figures this
prints recorded there).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

from moto import mock_aws

from bench import aws_latency
from bench.thumbs import make_photo
from imgpipe import aws
from imgpipe.catalog import to_item
from imgpipe.costs import MILLION, PRICES, PRICES_RECORDED, Measured, Stage, costs
from imgpipe.lanes import record_workers
from imgpipe.outcomes import Status
from imgpipe.record import ImageRecord
from tests.harness.samples import CORPUS

THUMBNAIL_KB = 90  # three sizes of a phone photo (bench/thumbs.py), stored per month


def measure() -> Measured:
    network = aws_latency.Network()
    with tempfile.TemporaryDirectory() as tmp:
        sources = sorted(CORPUS.glob("*.jpg"))[: aws_latency.BATCH]
        photos = [
            make_photo(8 + i % 5, Path(tmp), src).read_bytes() for i, src in enumerate(sources)
        ]
    with mock_aws():
        aws.reset()
        aws_latency.setup(network)
        aws_latency.run(network, photos[:2], "warm", 1, 0.0)
        lanes = record_workers(1024)
        run = aws_latency.run(network, photos, "cost", lanes, 0.020)
        per_image = {op: n / len(photos) for op, n in run.by_operation.items()}
        item = _sample_item_kb()
    return Measured(run.wall_ms, run.cpu_ms, per_image, item)


def _sample_item_kb() -> float:
    """The size DynamoDB bills a DONE record at (with labels and text)."""
    from imgpipe.catalog import Catalog

    ddb = aws.dynamodb()
    items = ddb.scan(TableName="images", Limit=1)["Items"]
    if not items:
        return 2.0
    record: ImageRecord = Catalog(ddb, "images").get(
        items[0]["bucket"]["S"], items[0]["key"]["S"]
    ) or ImageRecord("b", "k", "v", Status.DONE)
    size = len(json.dumps(to_item(record)).encode())
    return size / 1024 + 1.0  # plus a few labels and lines of text with boxes


def options(default: Stage) -> Iterable[Stage]:
    yield default
    yield replace(default, name="detectors: none (labeler none)", detectors=())
    yield replace(default, name="detectors: labels", detectors=("labels",))
    yield replace(
        default,
        name="detectors: all four",
        detectors=("labels", "text", "faces", "moderation"),
    )
    yield replace(default, name="results documents: json", results=("json",))
    yield replace(default, name="results documents: json,csv", results=("json", "csv"))
    for memory in (512, 1769, 2048):
        yield replace(default, name=f"memory {memory} MB", memory_mb=memory)


def main() -> int:
    argparse.ArgumentParser(description=__doc__.split("\n")[0]).parse_args()
    m = measure()
    default = Stage("default (recommended)")
    print(
        f"measured per image at 20 ms/request: wall {m.wall_ms:.0f} ms, CPU {m.cpu_ms:.0f} ms, "
        f"{sum(m.requests.values()):.1f} requests "
        f"({', '.join(f'{op} {n:.1f}' for op, n in sorted(m.requests.items()))}), "
        f"record ~{m.item_kb:.1f} KB; "
        f"prices of {PRICES_RECORDED} (src/imgpipe/prices.json)\n"
    )
    base = costs(default, m)
    names = list(base)
    print(f"{'stage':<32}{'$/M images':>11}  " + "  ".join(f"{n}" for n in names))
    for stage in options(default):
        c = costs(stage, m)
        total = sum(c.values())
        cells = "  ".join(f"{c[n]:>{len(n)}.2f}" for n in names)
        print(f"{stage.name:<32}{total:>11.2f}  {cells}")
    stored = THUMBNAIL_KB / 1024 / 1024 * PRICES["s3_gb_month"] * MILLION
    print(f"\nplus storage: about ${stored:.0f} per million images per month for the thumbnails")
    print(
        f"default: {default.memory_mb} MB, detectors {','.join(default.detectors)}, "
        f"results documents {','.join(default.results) or 'none'}: "
        f"${sum(base.values()):.2f} per million images"
    )
    provisioned(default, m)
    return 0


def provisioned(default: Stage, m: Measured) -> None:
    """provisionedConcurrency: a fixed monthly charge per warm environment, whether used or
    not; the duration of what runs on them is billed at the lower provisioned rate."""
    gb = default.memory_mb / 1024
    month_s = 730 * 3600
    per_env = gb * month_s * PRICES["lambda_provisioned_gb_second"]
    saved = (
        (PRICES["lambda_gb_second"] - PRICES["lambda_provisioned_duration_gb_second"])
        * gb
        * m.wall_ms
        / 1000
        * MILLION
    )
    print(
        f"provisionedConcurrency: ${per_env:.2f} per warm environment per month at"
        f" {default.memory_mb} MB (1: ${per_env:.0f}, 5: ${5 * per_env:.0f}); what runs on them"
        f" is billed ${saved:.2f} per million images less"
    )


if __name__ == "__main__":
    sys.exit(main())
