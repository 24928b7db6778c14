"""Upload -> queue -> runner -> real handler -> derived bucket + catalog, on a real endpoint."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageChops, ImageStat

from imgpipe.catalog import Catalog
from imgpipe.deployment import Deployment
from tests.conftest import jpeg_bytes
from tests.functional.conftest import dlq_keys, wait_for
from tests.harness.backends import Processing
from tests.harness.chaos import wait_drained

# on both endpoints: what LocalStack users run (make test-functional-localstack)
pytestmark = [pytest.mark.functional, pytest.mark.localstack_path]


def _image(s3: Any, bucket: str, key: str) -> Image.Image:
    data = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    im = Image.open(io.BytesIO(data))
    im.load()
    return im


def test_upload_becomes_done_with_upright_thumbnails_in_every_format(
    local_stack: Deployment,
    running: Processing,
    catalog: Catalog,
    s3: Any,
    corpus: Path,
    prefix: str,
) -> None:
    # GIVEN a portrait photo stored sideways with EXIF orientation 6, and its upright twin
    keys = [prefix + "Portrait_6.jpg", prefix + "Portrait_1.jpg"]
    for key in keys:
        s3.put_object(
            Bucket=local_stack.uploads_bucket,
            Key=key,
            Body=(corpus / key.rsplit("/", 1)[1]).read_bytes(),
        )
    # WHEN the pipeline has run
    records = wait_for(catalog, local_stack, keys)
    # THEN both are DONE with thumbnails of the right, upright dimensions, in each format the
    # local stage asks for (medium: AVIF and WebP too)
    rotated, upright = records[keys[0]], records[keys[1]]
    assert rotated.status == "DONE" and rotated.image is not None
    assert (rotated.image.width, rotated.image.height, rotated.image.orientation) == (1200, 1800, 6)
    dims = [(t.name, t.width, t.height, t.content_type) for t in rotated.thumbnails]
    assert dims == [
        ("small", 85, 128, "image/jpeg"),
        ("medium", 341, 512, "image/avif"),
        ("medium", 341, 512, "image/jpeg"),
        ("medium", 341, 512, "image/webp"),
        ("large", 683, 1024, "image/jpeg"),
    ]
    for thumb, twin in zip(rotated.thumbnails, upright.thumbnails, strict=True):
        im = _image(s3, local_stack.derived_bucket, thumb.key)
        assert im.format == thumb.content_type.removeprefix("image/").upper()
        assert im.size == (thumb.width, thumb.height)
        reference = _image(s3, local_stack.derived_bucket, twin.key)
        diff = ImageStat.Stat(ImageChops.difference(im.convert("RGB"), reference.convert("RGB")))
        assert sum(diff.mean) / 3 < 6, f"{thumb.key} is not upright"


def test_text_named_jpg_is_rejected_acknowledged_and_not_in_the_dlq(
    local_stack: Deployment, running: Processing, catalog: Catalog, s3: Any, prefix: str
) -> None:
    key = prefix + "notes.jpg"
    s3.put_object(Bucket=local_stack.uploads_bucket, Key=key, Body=b"meeting notes, not a photo\n")
    record = wait_for(catalog, local_stack, [key])[key]
    assert (record.status, record.reason) == ("REJECTED", "not_an_image")
    # acknowledged: deleted from the queue once its invocation returns (the record is written
    # a moment before), so soon neither waiting nor in flight; a message not acknowledged
    # would stay in flight for the visibility timeout (180 s here), far past this wait
    assert wait_drained(local_stack, local_stack.queue_url, 30)
    assert key not in dlq_keys(local_stack)


@pytest.mark.parametrize(
    "name",
    [
        "with space.jpg",
        "plus+sign.jpg",
        "percent%20literal.jpg",
        "ünïcødé/фото 日本.jpg",
        "a/b/c.jpg",
    ],
)
def test_odd_keys_round_trip(
    local_stack: Deployment, running: Processing, catalog: Catalog, s3: Any, prefix: str, name: str
) -> None:
    key = prefix + name
    s3.put_object(Bucket=local_stack.uploads_bucket, Key=key, Body=jpeg_bytes((900, 600)))
    record = wait_for(catalog, local_stack, [key])[key]
    assert record.status == "DONE" and record.key == key
    for thumb in record.thumbnails:
        assert thumb.key.startswith(f"thumbnails/{key}/")
        head = s3.head_object(Bucket=local_stack.derived_bucket, Key=thumb.key)
        assert head["ContentLength"] == thumb.bytes


def test_bad_inputs_end_rejected_with_specific_reasons(
    local_stack: Deployment, running: Processing, catalog: Catalog, s3: Any, prefix: str
) -> None:
    photo = jpeg_bytes((1200, 900))
    uploads = {
        "empty.jpg": (b"", "empty"),
        "truncated.jpg": (photo[: len(photo) // 2], "truncated"),
        "page.png": (b"<!doctype html><title>x</title>", "not_an_image"),
        "broken.png": (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "corrupt"),
    }
    for name, (body, _) in uploads.items():
        s3.put_object(Bucket=local_stack.uploads_bucket, Key=prefix + name, Body=body)
    records = wait_for(catalog, local_stack, [prefix + n for n in uploads])
    for name, (_, reason) in uploads.items():
        assert (records[prefix + name].status, records[prefix + name].reason) == (
            "REJECTED",
            reason,
        )
