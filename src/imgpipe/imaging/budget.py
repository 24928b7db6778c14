"""What a file may cost before it is decoded: memory from its header, plausibility of its
size, and a bounded, timed frame count. Attackers choose headers; these checks read them
before any pixel is decoded."""

from __future__ import annotations

import struct
import time

from PIL import Image

from ..outcomes import Reason
from . import heif
from .types import ImageRejected, Limits

# Peak bytes per pixel while a full-size decode of this mode becomes an 8-bit thumbnail
# (decode + the conversions it needs), measured with `imgpipe process` on 25-80 MP files:
# 16-bit greys go through 32-bit integers, palettes with transparency through RGBA.
PEAK_BYTES_PER_PIXEL = {
    "1": 3,
    "L": 3,
    "P": 9,
    "LA": 6,
    "PA": 9,
    "RGB": 5,
    "YCbCr": 5,
    "RGBA": 7,
    "CMYK": 6,
    "I;16": 10,
    "I;16L": 10,
    "I;16B": 10,
    "I;16N": 10,
    "I": 10,
    "F": 10,
}
# Deflate cannot compress more than 1032:1; a PNG whose image data is smaller than its pixels
# allow under that ratio ends before its pixels do.
DEFLATE_MAX_RATIO = 1032
FRAME_COUNT_SECONDS = 2.0


def check_decode(im: Image.Image, limits: Limits) -> None:
    """Refuse an image whose decode (at the size it will be decoded at) would exceed the
    budget. For JPEG call it after ``draft``: the reduced decode is what counts."""
    width, height = im.size
    peak = width * height * PEAK_BYTES_PER_PIXEL.get(im.mode, 10)
    if im.format == "HEIF":  # no reduced decode, and libheif's own buffers beside Pillow's
        peak = heif.peak_bytes(im)
    if peak > limits.max_decode_bytes:
        raise ImageRejected(
            Reason.TOO_MANY_PIXELS,
            f"{width}x{height} {im.mode} needs about {peak >> 20} MiB to decode; "
            f"the budget is {limits.max_decode_bytes >> 20} MiB",
        )


def check_png_plausible(data: bytes, im: Image.Image) -> None:
    """A PNG's image data must be large enough for the pixels it declares."""
    width, height = im.size
    # IHDR, always the first chunk (Pillow opened the file, so it is there): bit depth, colour
    bit_depth, colour = data[24], data[25]
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}.get(colour, 1)
    raw = height * (1 + (width * channels * bit_depth + 7) // 8)
    if im.info.get("interlace"):
        raw //= 2  # Adam7 adds a filter byte per pass row; stay conservative
    idat = _png_idat_bytes(data)
    if idat * DEFLATE_MAX_RATIO < raw:
        raise ImageRejected(
            Reason.TRUNCATED,
            f"{idat} bytes of image data cannot hold {width}x{height} pixels ({raw} bytes raw)",
        )


def _png_idat_bytes(data: bytes) -> int:
    total, at = 0, 8
    while at + 8 <= len(data):
        (length,) = struct.unpack_from(">I", data, at)
        kind = data[at + 4 : at + 8]
        if kind == b"IDAT":
            total += min(length, len(data) - at - 8)
        if kind == b"IEND":
            break
        at += 12 + length
    return total


def count_frames(im: Image.Image, limits: Limits) -> int:
    """Frames, counted by seeking at most ``max_frames`` + 1 of them within a time budget
    (Pillow's own ``n_frames`` walks every frame; for TIFF it is quadratic)."""
    if not getattr(im, "is_animated", False) and im.format != "TIFF":
        return 1
    if im.format == "HEIF":  # the container lists its images: counted without a seek
        return _checked(int(getattr(im, "n_frames", 1)), limits)
    deadline = time.monotonic() + FRAME_COUNT_SECONDS
    frames = 1
    # Where the file opened: frame 0, except in a HEIF whose primary image is not its first
    # (a burst's chosen shot); counting must not move the render to another image.
    start = im.tell()
    try:
        while frames <= limits.max_frames:
            im.seek(frames)
            frames += 1
            if time.monotonic() > deadline:
                raise ImageRejected(
                    Reason.TOO_MANY_FRAMES,
                    f"more than {frames} frames in {FRAME_COUNT_SECONDS:.0f} s of counting",
                )
    except EOFError:
        pass
    finally:
        im.seek(start)
    return _checked(frames, limits)


def _checked(frames: int, limits: Limits) -> int:
    if frames > limits.max_frames:
        raise ImageRejected(Reason.TOO_MANY_FRAMES, f"more than {limits.max_frames} frames")
    return frames
