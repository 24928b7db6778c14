"""Watermarks, pixel by pixel: where asked, on the sizes asked, upright, and nowhere else."""

from __future__ import annotations

import io

import boto3
import pytest
from moto import mock_aws
from PIL import Image, ImageChops

from imgpipe import config
from imgpipe.bootstrap import with_watermark_image
from imgpipe.imaging import Limits, Watermark, WatermarkError, parse_sizes, render
from imgpipe.imaging.types import MAX_MARK_BYTES
from imgpipe.storage import ObjectStore
from tests.conftest import jpeg_bytes

SPECS = parse_sizes("small=128,medium=512,large=1024")
ENV = {"UPLOADS_BUCKET": "uploads", "DERIVED_BUCKET": "derived", "TABLE_NAME": "t"}


def thumbs(data: bytes, mark: Watermark | None) -> dict[str, Image.Image]:
    rendered = render(data, SPECS, Limits(), watermark=mark)
    return {t.name: Image.open(io.BytesIO(t.data)).convert("RGB") for t in rendered.thumbnails}


def changed(a: Image.Image, b: Image.Image) -> tuple[int, int, int, int] | None:
    """Where two renders differ by more than JPEG's noise: the box, or None."""
    diff = ImageChops.difference(a, b).convert("L").point(lambda v: 255 if v > 24 else 0)
    return diff.getbbox()


def logo(colour: tuple[int, int, int, int] = (255, 0, 0, 255)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGBA", (200, 100), colour).save(buf, "PNG")
    return buf.getvalue()


PHOTO = jpeg_bytes((1600, 1200), (90, 110, 130))


def test_text_mark_on_the_sizes_from_min_size_in_the_corner_asked() -> None:
    plain = thumbs(PHOTO, None)
    marked = thumbs(PHOTO, Watermark(text="© imgpipe", min_size=256))
    assert changed(plain["small"], marked["small"]) is None  # 128 px: under min_size
    for name in ("medium", "large"):
        box = changed(plain[name], marked[name])
        assert box is not None, name
        w, h = marked[name].size
        # bottom-right, inside the margin: nothing changed in the other three quadrants
        assert box[0] > w / 2 and box[1] > h / 2 and box[2] < w and box[3] < h, (name, box)


def test_only_the_sizes_named(monkeypatch: pytest.MonkeyPatch) -> None:
    plain = thumbs(PHOTO, None)
    only_large = Watermark(image=logo(), position="top-left", opacity=1, sizes=frozenset({"large"}))
    marked = thumbs(PHOTO, only_large)
    assert changed(plain["medium"], marked["medium"]) is None
    assert changed(plain["small"], marked["small"]) is None
    large = marked["large"]
    box = changed(plain["large"], large)
    assert box is not None and box[2] < large.width / 2 and box[3] < large.height / 2
    # an opaque red logo, a quarter of the width, at the margin
    r, g, b = large.getpixel((60, 60))  # type: ignore[misc]
    assert r > 200 and g < 60 and b < 60
    # a quarter of the width at most, and never enlarged past its own 200 px
    assert box[2] - box[0] == pytest.approx(min(200, large.width * 0.25), abs=4)


def test_the_mark_is_applied_after_orientation(corpus_photo_rotated: bytes) -> None:
    plain = thumbs(corpus_photo_rotated, None)
    marked = thumbs(corpus_photo_rotated, Watermark(text="MARK", position="bottom-left"))
    large = marked["large"]
    assert large.height > large.width  # stored landscape, shown portrait (EXIF 6)
    box = changed(plain["large"], large)
    assert box is not None
    assert box[2] < large.width / 2 and box[1] > large.height * 0.8  # the upright bottom-left


@pytest.fixture
def corpus_photo_rotated() -> bytes:
    """A landscape-stored JPEG whose EXIF says rotate 90° (orientation 6)."""
    im = Image.new("RGB", (1600, 1200), (90, 110, 130))
    exif = Image.Exif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    im.save(buf, "JPEG", exif=exif.tobytes())
    return buf.getvalue()


def test_opacity_scales_the_change() -> None:
    plain = thumbs(PHOTO, None)["large"]

    def strength(opacity: float) -> float:
        marked = thumbs(PHOTO, Watermark(image=logo(), opacity=opacity, position="center"))
        diff = ImageChops.difference(plain, marked["large"]).convert("L")
        _low, high = diff.getextrema()
        assert isinstance(high, int)
        return float(high)

    assert strength(0.25) < strength(0.5) < strength(1.0)


def test_a_long_line_is_set_smaller_to_fit_and_an_endless_one_refused() -> None:
    plain = thumbs(PHOTO, None)["large"]
    line = "© Example Photography Ltd, all rights reserved " * 4  # ~190 characters
    box = changed(plain, thumbs(PHOTO, Watermark(text=line, opacity=1))["large"])
    assert box is not None and box[2] - box[0] <= plain.width * 0.9 + 2
    for text in ("x" * 201, "two\nlines"):
        with pytest.raises(WatermarkError, match="one line"):
            Watermark(text=text)


def test_a_broken_mark_is_the_configurations_fault_not_the_uploads() -> None:
    with pytest.raises(WatermarkError, match="cannot be read"):
        render(PHOTO, SPECS, Limits(), watermark=Watermark(image=b"not an image"))
    for bad in (
        {"text": "x", "position": "middle"},
        {"text": "x", "opacity": 0},
        {"text": "x", "image": b"both"},
        {},
    ):
        with pytest.raises(WatermarkError):
            Watermark(**bad)


def test_settings_off_by_default_and_checked_at_start() -> None:
    assert config.load(ENV).render.watermark is None
    on = config.load({**ENV, "WATERMARK": "text:© Example", "WATERMARK_SIZES": "large"})
    assert on.render.watermark == Watermark(text="© Example", sizes=frozenset({"large"}))
    image = config.load({**ENV, "WATERMARK": "image:watermarks/logo.png", "WATERMARK_OPACITY": "1"})
    assert image.watermark_image_key == "watermarks/logo.png" and image.render.watermark is None
    for bad in (
        {"WATERMARK": "logo.png"},
        {"WATERMARK": "image:thumbnails/x.png"},  # only the watermarks/ prefix is readable
        {"WATERMARK": "text:x", "WATERMARK_POSITION": "middle"},
        {"WATERMARK": "text:x", "WATERMARK_OPACITY": "lots"},
        {"WATERMARK": "text:x", "WATERMARK_SIZES": "huge"},
        {"WATERMARK": "image:watermarks/x.png", "WATERMARK_OPACITY": "1.5"},
    ):
        with pytest.raises(config.ConfigError, match="WATERMARK"):
            config.load({**ENV, **bad})


@mock_aws
def test_an_image_mark_is_read_once_from_the_derived_buckets_prefix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="derived")
    s3.put_object(Bucket="derived", Key="watermarks/logo.png", Body=logo())
    monkeypatch.setenv("WATERMARK_POSITION", "top-right")
    cfg = config.load({**ENV, "WATERMARK": "image:watermarks/logo.png"})
    loaded = with_watermark_image(cfg, ObjectStore(s3))
    assert loaded.render.watermark is not None
    assert loaded.render.watermark.image == logo()
    assert loaded.render.watermark.position == "top-right"
    missing = config.load({**ENV, "WATERMARK": "image:watermarks/gone.png"})
    with pytest.raises(config.ConfigError, match=r"watermarks/gone\.png"):
        with_watermark_image(missing, ObjectStore(s3))
    # the worst objects under that key fail the start, not every upload after it
    for name, body in {
        "empty.png": b"",
        "huge.png": b"\0" * (MAX_MARK_BYTES + 1),  # refused by its size, body not read
        "junk.png": b"not an image",
        "bomb.png": _bomb(),  # 20000 x 20000 declared in a few hundred bytes
    }.items():
        s3.put_object(Bucket="derived", Key=f"watermarks/{name}", Body=body)
        cfg = config.load({**ENV, "WATERMARK": f"image:watermarks/{name}"})
        with pytest.raises(config.ConfigError, match=f"watermarks/{name}"):
            with_watermark_image(cfg, ObjectStore(s3))


def _bomb() -> bytes:
    buf = io.BytesIO()
    Image.new("1", (20000, 20000)).save(buf, "PNG")
    return buf.getvalue()
