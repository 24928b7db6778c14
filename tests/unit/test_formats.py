"""Every accepted format and every bad-input class, with fixtures generated in the test."""

from __future__ import annotations

import io
import struct
import zlib
from typing import Any

import pytest
from PIL import Image, ImageCms, ImageDraw

from imgpipe.imaging import ImageRejected, Limits, Rendered, parse_sizes, render

SPECS = parse_sizes("small=128,medium=512,large=1024")
LIMITS = Limits(max_bytes=50 * 1024 * 1024, max_pixels=80_000_000, max_frames=100)


def encode(im: Image.Image, fmt: str, **params: Any) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **params)
    return buf.getvalue()


def scene(mode: str = "RGB", size: tuple[int, int] = (1600, 1000)) -> Image.Image:
    """Not a flat colour: a gradient and shapes, so resampling and hashing mean something."""
    im = Image.linear_gradient("L").resize(size).convert("RGB")
    draw = ImageDraw.Draw(im)
    draw.rectangle((size[0] // 4, size[1] // 4, size[0] // 2, size[1] // 2), fill=(220, 30, 30))
    draw.ellipse((size[0] // 2, size[1] // 3, size[0] - 50, size[1] - 50), fill=(30, 30, 220))
    return im.convert(mode)


def decode(data: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    im.load()
    return im


def dims(r: Rendered) -> list[tuple[str, int, int]]:
    return [(t.name, t.width, t.height) for t in r.thumbnails]


EXPECTED = [("small", 128, 80), ("medium", 512, 320), ("large", 1024, 640)]


@pytest.mark.parametrize(
    ("fmt", "params"),
    [
        ("JPEG", {"quality": 90}),
        ("JPEG", {"quality": 90, "progressive": True}),
        ("PNG", {}),
        ("WEBP", {"quality": 90}),
        ("TIFF", {}),
        ("BMP", {}),
        ("AVIF", {"quality": 80}),
        ("GIF", {}),
    ],
)
def test_every_accepted_format(fmt: str, params: dict[str, Any]) -> None:
    rendered = render(encode(scene(), fmt, **params), SPECS, LIMITS)
    assert rendered.info.format == fmt and dims(rendered) == EXPECTED
    for thumb in rendered.thumbnails:
        out = decode(thumb.data)
        assert out.format == "JPEG" and out.mode == "RGB"
        assert "exif" not in out.info and "icc_profile" not in out.info


def test_rgba_la_and_palette_transparency_give_png() -> None:
    rgba = scene("RGBA")
    rgba.putalpha(128)
    la = scene("LA")
    palette = scene("RGB").convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    for data in (encode(rgba, "PNG"), encode(la, "PNG"), encode(palette, "PNG", transparency=0)):
        rendered = render(data, SPECS, LIMITS)
        assert rendered.info.has_alpha
        for thumb in rendered.thumbnails:
            assert thumb.content_type == "image/png"
            assert decode(thumb.data).mode in {"RGBA", "LA"}


def test_cmyk_jpeg_is_converted_to_rgb() -> None:
    cyan = Image.new("CMYK", (800, 600), (255, 0, 0, 0))
    rendered = render(encode(cyan, "JPEG", quality=95), SPECS, LIMITS)
    assert rendered.info.mode == "CMYK"
    r, g, b = decode(rendered.thumbnails[0].data).getpixel((10, 10))  # type: ignore[misc]
    assert r < 40 and g > 200 and b > 200


def test_sixteen_bit_grey_is_scaled_not_clipped() -> None:
    grey = Image.linear_gradient("L").resize((1000, 800)).convert("I")
    sixteen = grey.point(lambda v: v * 257).convert("I;16")
    rendered = render(encode(sixteen, "PNG"), SPECS, LIMITS)
    assert (rendered.info.mode, rendered.info.bits) == ("I;16", 16)
    out = decode(rendered.thumbnails[-1].data)
    assert out.mode == "L"
    low, high = out.getextrema()
    assert isinstance(low, int) and isinstance(high, int)
    assert low < 20 and high > 235  # clipping would make everything 255


def test_one_bit_image() -> None:
    rendered = render(encode(scene("1"), "PNG"), SPECS, LIMITS)
    assert rendered.info.bits == 1 and decode(rendered.thumbnails[0].data).mode == "L"


def test_animated_gif_uses_the_first_frame() -> None:
    frames = [Image.new("RGB", (400, 300), c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)
    rendered = render(data, SPECS, LIMITS)
    assert (rendered.info.animated, rendered.info.frames) == (True, 3)
    r, g, b = decode(rendered.thumbnails[0].data).getpixel((5, 5))  # type: ignore[misc]
    assert r > 200 and g < 50 and b < 50
    with pytest.raises(ImageRejected) as info:
        render(data, SPECS, Limits(10**8, 10**8, max_frames=2))
    assert info.value.reason == "too_many_frames"


def test_icc_profile_is_applied_and_broken_ones_do_not_crash() -> None:
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    tagged = render(encode(scene(), "JPEG", icc_profile=profile), SPECS, LIMITS)
    assert tagged.info.icc
    broken = render(encode(scene(), "JPEG", icc_profile=b"not a profile" * 10), SPECS, LIMITS)
    assert broken.info.icc and dims(broken) == EXPECTED


def test_heif_is_read_by_default_and_a_header_alone_is_a_damaged_file() -> None:
    """pi-heif-decoder is a dependency (not an extra): HEIF is never unsupported_format."""
    heic_head = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64
    with pytest.raises(ImageRejected) as info:
        render(heic_head, SPECS, LIMITS)
    assert info.value.reason in {"corrupt", "truncated"}


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims width x height in its IHDR and carries one tiny IDAT."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 16))
        + chunk(b"IEND", b"")
    )


def test_decompression_bombs_are_rejected_before_decoding() -> None:
    with pytest.raises(ImageRejected) as info:
        render(_png_header_only(100_000, 100_000), SPECS, LIMITS)
    assert info.value.reason == "too_many_pixels"
    # a limit set above Pillow's own: its warning becomes the same outcome, not a log line
    with pytest.raises(ImageRejected) as info:
        render(_png_header_only(12_000, 12_000), SPECS, Limits(10**9, 10**9))
    assert info.value.reason == "too_many_pixels"


def _flip_middle(data: bytes) -> bytes:
    """Damage the compressed pixel data but keep the length and the headers."""
    middle = len(data) // 2
    return data[:middle] + bytes(b ^ 0x5A for b in data[middle : middle + 64]) + data[middle + 64 :]


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda: b"", "empty"),
        (lambda: b"<!DOCTYPE html><html><body>hi</body></html>", "not_an_image"),
        (lambda: b"PK\x03\x04\x14\x00" + b"\x00" * 200, "not_an_image"),
        (lambda: b"%PDF-1.7\n" + b"\x00" * 100, "not_an_image"),
        (lambda: encode(scene(), "JPEG")[:3000], "truncated"),
        (lambda: encode(scene(), "PNG")[:2000], "truncated"),
        (lambda: _flip_middle(encode(scene(), "PNG")), "corrupt"),
        (lambda: _flip_middle(encode(scene(), "WEBP")), "corrupt"),
        (lambda: b"GIF89a" + b"\xff" * 40, "corrupt"),
        (lambda: b"RIFF\x00\x00\x00\x00WEBPVP8 " + b"\x00" * 30, "corrupt"),
    ],
)
def test_bad_input_classes(make: Any, reason: str) -> None:
    with pytest.raises(ImageRejected) as info:
        render(make(), SPECS, LIMITS)
    assert info.value.reason == reason


def test_too_large_is_rejected_by_size_alone() -> None:
    data = encode(scene(), "JPEG")
    with pytest.raises(ImageRejected) as info:
        render(data, SPECS, Limits(max_bytes=len(data) - 1, max_pixels=10**9))
    assert info.value.reason == "too_large"


def test_polyglot_jpeg_with_a_zip_tail_is_rendered_clean() -> None:
    payload = b"PK\x03\x04" + b"secret payload" * 100
    rendered = render(encode(scene(), "JPEG") + payload, SPECS, LIMITS)
    assert all(b"secret payload" not in t.data for t in rendered.thumbnails)


def _with_exif(**tags: Any) -> bytes:
    im = scene()
    exif = Image.Exif()
    for tag, value in tags.get("base", {}).items():
        exif[tag] = value
    if "details" in tags:
        exif.get_ifd(0x8769).update(tags["details"])
    if "gps" in tags:
        exif.get_ifd(0x8825).update(tags["gps"])
    return encode(im, "JPEG", exif=exif)


def test_exif_subset_and_gps_only_when_enabled() -> None:
    data = _with_exif(
        base={0x010F: "Acme", 0x0110: "Shooter 3000"},
        details={0x9003: "2026:11:25 10:00:00", 0x8827: 200, 0x829A: 0.004},
        gps={1: "N", 2: (52.0, 30.0, 0.0), 3: "W", 4: (1.0, 15.0, 0.0)},
    )
    plain = render(data, SPECS, LIMITS).info.exif
    assert plain == {
        "make": "Acme",
        "model": "Shooter 3000",
        "taken_at": "2026:11:25 10:00:00",
        "iso": 200,
        "exposure_time": 0.004,
    }
    located = render(data, SPECS, LIMITS, include_gps=True).info.exif
    assert located["gps"] == {"lat": 52.5, "lon": -1.25}
    for thumb in render(data, SPECS, LIMITS, include_gps=True).thumbnails:
        assert b"Acme" not in thumb.data and "exif" not in decode(thumb.data).info


@pytest.mark.parametrize("value", [9, 0, 65535])
def test_invalid_orientation_is_treated_as_upright(value: Any) -> None:
    rendered = render(_with_exif(base={0x0112: value}), SPECS, LIMITS)
    assert rendered.info.orientation == 1 and dims(rendered) == EXPECTED
    assert "orientation_invalid" in rendered.info.exif


def test_garbage_exif_does_not_fail_the_image() -> None:
    data = encode(
        scene(), "JPEG", exif=b"Exif\x00\x00II*\x00\x08\x00\x00\x00\xff\xff" + b"\x01" * 64
    )
    rendered = render(data, SPECS, LIMITS)
    assert dims(rendered) == EXPECTED and rendered.info.orientation == 1


def test_hash_and_colour() -> None:
    big = render(encode(scene(size=(1600, 1000)), "JPEG"), SPECS, LIMITS).info
    small = render(encode(scene(size=(800, 500)), "PNG"), SPECS, LIMITS).info
    distance = bin(int(big.phash, 16) ^ int(small.phash, 16)).count("1")
    assert distance <= 6, "the same picture at another size must hash alike"
    other = render(
        encode(scene().transpose(Image.Transpose.FLIP_LEFT_RIGHT), "JPEG"), SPECS, LIMITS
    )
    assert bin(int(big.phash, 16) ^ int(other.info.phash, 16)).count("1") > 12
    red = render(encode(Image.new("RGB", (300, 200), (250, 10, 10)), "PNG"), SPECS, LIMITS)
    assert red.info.colour == "#fa0a0a"
