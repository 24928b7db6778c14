"""The local labeler through the whole pipeline: photos with known content in, findings in the
catalog and in the results documents (JSON and CSV)."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest

from imgpipe.catalog import Catalog
from imgpipe.deployment import Deployment
from imgpipe.record import ImageRecord
from tests.conftest import jpeg_of, sign_photo, skimage_photo
from tests.functional.conftest import wait_for
from tests.harness.backends import processing

# on both endpoints: what LocalStack users run (make test-functional-localstack)
pytestmark = [pytest.mark.functional, pytest.mark.localstack_path]


def _doc(record: ImageRecord, fmt: str) -> str:
    """The record names its own results documents (per version, see derived.py)."""
    (key,) = [k for k in record.results if k.endswith("." + fmt)]
    return key


def test_faces_text_and_labels_end_to_end(
    local_stack: Deployment, catalog: Catalog, s3: Any, prefix: str
) -> None:
    assert local_stack.process is not None
    assert local_stack.process.environment["LABELER"] == "local"
    photos = {
        prefix + "astronaut.jpg": jpeg_of(skimage_photo("astronaut.png")),
        prefix + "sign.jpg": jpeg_of(sign_photo("OPEN 24 HOURS")),
        prefix + "cat.jpg": jpeg_of(skimage_photo("chelsea.png")),
    }
    with processing(local_stack):
        for key, body in photos.items():
            s3.put_object(Bucket=local_stack.uploads_bucket, Key=key, Body=body)
        records = wait_for(catalog, local_stack, list(photos), timeout=120)
    astronaut, sign, cat = (
        records[prefix + name].findings for name in ("astronaut.jpg", "sign.jpg", "cat.jpg")
    )
    assert astronaut is not None and sign is not None and cat is not None
    assert records[prefix + "astronaut.jpg"].status == "DONE" and len(astronaut.faces) == 1
    assert [x.name for x in astronaut.labels] == ["Person"]
    assert astronaut.backend == "local"
    assert [t.text for t in sign.text] == ["OPEN 24 HOURS"]
    assert "Text" in [x.name for x in sign.labels] and sign.faces == ()
    assert "Cat" in [x.name for x in cat.labels]
    # the results documents in the derived bucket
    derived = local_stack.derived_bucket
    doc = json.loads(
        s3.get_object(Bucket=derived, Key=_doc(records[prefix + "sign.jpg"], "json"))["Body"].read()
    )
    assert [t["text"] for t in doc["text"]] == ["OPEN 24 HOURS"] and doc["status"] == "DONE"
    rows = list(
        csv.DictReader(
            io.StringIO(
                s3.get_object(Bucket=derived, Key=_doc(records[prefix + "astronaut.jpg"], "csv"))[
                    "Body"
                ]
                .read()
                .decode()
            )
        )
    )
    assert [(r["kind"], r["name"]) for r in rows if r["kind"] != "moderation"] == [
        ("label", "Person"),
        ("face", ""),
    ]


def test_a_phone_heic_ends_done_upright_with_its_labels(
    local_stack: Deployment, catalog: Catalog, s3: Any, prefix: str
) -> None:
    """As an iPhone writes one: a grid of tiles, the sensor's sideways pixels turned upright by
    an irot box, EXIF orientation 6 beside it (not to be applied twice), camera EXIF."""
    import pillow_heif
    from PIL import Image

    upright = skimage_photo("astronaut.png")  # 512 x 512: made portrait, as a phone holds it
    portrait = upright.resize((384, 512))
    exif = Image.Exif()
    exif[0x010F], exif[0x0110], exif[0x0112] = "Apple", "iPhone 15", 6
    buf = io.BytesIO()
    pillow_heif.from_pillow(portrait.transpose(Image.Transpose.ROTATE_90)).save(
        buf, quality=85, tile_size=128, exif=exif.tobytes()
    )
    key = prefix + "IMG_0001.HEIC"
    with processing(local_stack):
        s3.put_object(Bucket=local_stack.uploads_bucket, Key=key, Body=buf.getvalue())
        record = wait_for(catalog, local_stack, [key], timeout=120)[key]
    assert record.status == "DONE", record.detail
    assert record.image is not None
    assert (record.image.format, record.image.width, record.image.height) == ("HEIF", 384, 512)
    assert record.image.exif.get("model") == "iPhone 15"
    assert record.findings is not None and len(record.findings.faces) == 1
    assert "Person" in [x.name for x in record.findings.labels]
    large = max(record.thumbnails, key=lambda t: t.width * t.height)
    assert large.height > large.width
    body = s3.get_object(Bucket=local_stack.derived_bucket, Key=large.key)["Body"].read()
    with Image.open(io.BytesIO(body)) as thumb:
        assert thumb.height > thumb.width  # upright: turned once, not twice
