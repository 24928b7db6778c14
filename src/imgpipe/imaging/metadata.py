"""What an image says about itself: orientation, a privacy-aware EXIF subset, bit depth, a
perceptual hash and the dominant colour. Everything defensive: EXIF is attacker-controlled."""

from __future__ import annotations

from typing import Any

from PIL import Image

from .types import ExifValue, fit

ORIENTATION = 0x0112
_MAKE, _MODEL = 0x010F, 0x0110
_EXIF_IFD, _GPS_IFD = 0x8769, 0x8825
_EXIF_TAGS = {
    0x9003: "taken_at",  # DateTimeOriginal
    0x829A: "exposure_time",
    0x829D: "f_number",
    0x8827: "iso",
    0x920A: "focal_length",
}
_MAX_TEXT = 64

_BITS = {"1": 1, "I;16": 16, "I;16B": 16, "I;16L": 16, "I;16N": 16, "I": 32, "F": 32}


def bits(mode: str) -> int:
    return _BITS.get(mode, 8)


def _text(value: Any) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        return None
    cleaned = value.replace("\x00", "").strip()
    return cleaned[:_MAX_TEXT] or None


def _number(value: Any) -> float | int | None:
    if isinstance(value, tuple) and value:  # some writers store a 1-tuple
        value = value[0]
    try:
        number = float(value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    if number != number or number in (float("inf"), float("-inf")):  # NaN from 0/0 rationals
        return None
    return int(number) if number.is_integer() else round(number, 6)


def _degrees(dms: Any, ref: Any) -> float | None:
    try:
        d, m, s = (float(x) for x in dms)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    value = d + m / 60 + s / 3600
    if _text(ref) in {"S", "W"}:
        value = -value
    return round(value, 6) if value == value else None


def read_exif(im: Image.Image, include_gps: bool) -> tuple[int, dict[str, ExifValue]]:
    """(orientation 1..8, the EXIF subset). Malformed EXIF gives (1, {"error": ...}), never an
    exception: a photo with a broken camera tag is still a photo."""
    try:
        exif = im.getexif()
        orientation = exif.get(ORIENTATION, 1)
        subset = _camera(exif)
        if include_gps:
            subset.update(_gps(exif))
    except Exception as exc:  # noqa: BLE001 - any parser failure means "no usable EXIF"
        return 1, {"error": f"unreadable EXIF: {type(exc).__name__}"}
    if not isinstance(orientation, int) or not 1 <= orientation <= 8:
        subset["orientation_invalid"] = str(orientation)[:_MAX_TEXT]
        orientation = 1
    if orientation != 1:
        subset["orientation"] = orientation
    return orientation, subset


def _camera(exif: Image.Exif) -> dict[str, ExifValue]:
    subset: dict[str, ExifValue] = {}
    for tag, name in ((_MAKE, "make"), (_MODEL, "model")):
        text = _text(exif.get(tag))
        if text:
            subset[name] = text
    details = exif.get_ifd(_EXIF_IFD)
    for tag, name in _EXIF_TAGS.items():
        if tag in details:
            value = _text(details[tag]) if name == "taken_at" else _number(details[tag])
            if value is not None:
                subset[name] = value
    return subset


def _gps(exif: Image.Exif) -> dict[str, ExifValue]:
    gps = exif.get_ifd(_GPS_IFD)
    lat, lon = _degrees(gps.get(2), gps.get(1)), _degrees(gps.get(4), gps.get(3))
    return {} if lat is None or lon is None else {"gps": {"lat": lat, "lon": lon}}


def dhash(im: Image.Image) -> str:
    """64-bit difference hash of a small copy: robust to resizing and recompression."""
    grey = im.convert("L").resize((9, 8), Image.Resampling.BILINEAR)
    px = grey.tobytes()
    value = 0
    for row in range(8):
        for col in range(8):
            value = (value << 1) | (px[row * 9 + col] > px[row * 9 + col + 1])
    return f"{value:016x}"


def dominant_colour(im: Image.Image) -> str:
    # Median cut on a 32 px copy: the colour statistics of a thumbnail, at 1/15 of the cost.
    rgb = im.convert("RGB")
    if max(rgb.size) > 32:
        rgb = rgb.resize(fit(rgb.width, rgb.height, 32), Image.Resampling.BOX)
    quantized = rgb.quantize(colors=5, method=Image.Quantize.MEDIANCUT)
    counts = quantized.getcolors() or [(1, 0)]
    _, index = max(counts)
    assert isinstance(index, int)  # a palette image counts palette indices
    palette = quantized.getpalette() or [0, 0, 0]
    r, g, b = palette[index * 3 : index * 3 + 3]
    return f"#{r:02x}{g:02x}{b:02x}"
