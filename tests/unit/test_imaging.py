from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image, ImageChops, ImageStat

from imgpipe.imaging import (
    ImageRejected,
    Limits,
    ThumbSpec,
    fit,
    parse_sizes,
    render,
    sniff,
)
from tests.conftest import jpeg_bytes

SPECS = parse_sizes("small=128,medium=512,large=1024")
LIMITS = Limits(max_bytes=50 * 1024 * 1024, max_pixels=100_000_000)


def _decode(data: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    im.load()
    return im


def test_parse_sizes_sorts_largest_first() -> None:
    assert [s.size for s in SPECS] == [1024, 512, 128]
    assert [s.name for s in SPECS] == ["large", "medium", "small"]


@pytest.mark.parametrize("text", ["small", "small=abc", "a=1", "a=128,a=256", "1x=128"])
def test_parse_sizes_rejects_nonsense(text: str) -> None:
    with pytest.raises(ValueError):
        parse_sizes(text)


@pytest.mark.parametrize(
    ("size", "longest", "expected"),
    [
        ((1800, 1200), 1024, (1024, 683)),
        ((1200, 1800), 512, (341, 512)),
        ((4000, 10), 128, (128, 1)),  # never zero
        ((100, 60), 1024, (100, 60)),  # never upscaled
    ],
)
def test_fit(size: tuple[int, int], longest: int, expected: tuple[int, int]) -> None:
    assert fit(*size, longest) == expected


@pytest.mark.parametrize(
    ("head", "fmt"),
    [
        (b"\xff\xd8\xff\xe0rest", "JPEG"),
        (b"\x89PNG\r\n\x1a\nrest", "PNG"),
        (b"GIF89a....", "GIF"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "WEBP"),
        (b"II*\x00rest", "TIFF"),
        (b"<!doctype html>", None),
        (b"PK\x03\x04zip", None),
        (b"", None),
    ],
)
def test_sniff(head: bytes, fmt: str | None) -> None:
    assert sniff(head) == fmt


def test_three_sizes_with_aspect_kept() -> None:
    rendered = render(jpeg_bytes((3000, 2000)), SPECS, LIMITS)
    dims = {t.name: (t.width, t.height) for t in rendered.thumbnails}
    assert dims == {"large": (1024, 683), "medium": (512, 341), "small": (128, 85)}
    for thumb in rendered.thumbnails:
        im = _decode(thumb.data)
        assert im.format == "JPEG" and im.size == (thumb.width, thumb.height)
        assert "exif" not in im.info
    assert (rendered.info.width, rendered.info.height, rendered.info.format) == (3000, 2000, "JPEG")


def test_small_image_is_never_upscaled() -> None:
    rendered = render(jpeg_bytes((300, 200)), SPECS, LIMITS)
    assert {(t.width, t.height) for t in rendered.thumbnails} == {(300, 200), (128, 85)}


def test_alpha_gives_png_not_a_broken_jpeg() -> None:
    buf = io.BytesIO()
    Image.new("RGBA", (800, 600), (10, 20, 30, 100)).save(buf, "PNG")
    rendered = render(buf.getvalue(), SPECS, LIMITS)
    assert rendered.info.has_alpha
    for thumb in rendered.thumbnails:
        im = _decode(thumb.data)
        assert thumb.content_type == "image/png" and im.mode == "RGBA"
        pixel = im.getpixel((0, 0))
        assert isinstance(pixel, tuple) and pixel[3] == 100


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (b"<html><body>not a photo</body></html>", "not_an_image"),
        (b"PK\x03\x04" + b"\x00" * 100, "not_an_image"),
        (b"\xff\xd8\xff" + b"\x00" * 50, "corrupt"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 50, "corrupt"),
    ],
)
def test_bad_inputs_are_rejected_with_a_reason(data: bytes, reason: str) -> None:
    with pytest.raises(ImageRejected) as info:
        render(data, SPECS, LIMITS)
    assert info.value.reason == reason


def test_truncated_jpeg() -> None:
    data = jpeg_bytes((1600, 1200))
    with pytest.raises(ImageRejected) as info:
        render(data[: len(data) // 2], SPECS, LIMITS)
    assert info.value.reason == "truncated"


def test_limits() -> None:
    data = jpeg_bytes((400, 300))
    with pytest.raises(ImageRejected) as info:
        render(data, SPECS, Limits(max_bytes=len(data) - 1, max_pixels=10**9))
    assert info.value.reason == "too_large"
    with pytest.raises(ImageRejected) as info:
        render(data, SPECS, Limits(max_bytes=10**9, max_pixels=400 * 300 - 1))
    assert info.value.reason == "too_many_pixels"


def _mean_abs_diff(a: Image.Image, b: Image.Image) -> float:
    return float(sum(ImageStat.Stat(ImageChops.difference(a, b)).mean) / 3)


@pytest.mark.parametrize("shape", ["Landscape", "Portrait"])
def test_corpus_thumbnails_are_upright(corpus: Path, shape: str) -> None:
    """Every EXIF orientation 0-8 of the same photo must give the same upright thumbnail."""
    spec = [ThumbSpec("medium", 512)]

    def thumb(n: int) -> Image.Image:
        data = (corpus / f"{shape}_{n}.jpg").read_bytes()
        [t] = render(data, spec, LIMITS).thumbnails
        return _decode(t.data).convert("RGB")

    reference = thumb(1)  # orientation 1: stored upright
    assert (reference.width > reference.height) == (shape == "Landscape")
    for n in range(9):
        candidate = thumb(n)
        assert candidate.size == reference.size, n
        # Same picture up to JPEG noise (~1-2); a wrong rotation or mirror differs by > 20.
        assert _mean_abs_diff(candidate, reference) < 6, n
