"""HEIF/HEIC as phones write it, decoded by libheif + libde265 through ``pi_heif``.

Why this decoder (docs/engine.md): ``pi-heif-decoder`` is the decode-only build of pillow-heif:
BSD-licensed bindings with libheif and libde265 (LGPL, dynamically linked, replaceable in the
zip) and no encoder, so no GPL x265 in the Lambda zip; 1.5 MB compressed. Its wheels carry
libheif 1.23.4 and libde265 1.1.3, past the 2026 memory-safety advisories.

The rules this module owns:
- **One image**: the file's primary image (``pitm``), whatever else it holds — a burst's
  other shots, a stereo pair's second eye, thumbnails, depth and other auxiliary images are
  neither decoded nor parsed into Python (thumbnails, depth and aux images are switched off).
- **Transformations once, by the container**: libheif composes grids and overlays and applies
  ``clap``, ``irot`` and ``imir`` as the file lists them. The HEIF specification (ISO/IEC
  23008-12, 6.5.1) makes those properties normative and an EXIF orientation informative only,
  so an EXIF orientation in a HEIF is never applied again (iPhones write both; applying both
  turns a portrait sideways). ``pi_heif`` resets the EXIF tag to 1; the engine does not rely on
  that and ignores a HEIF's EXIF orientation itself.
- **Limits before decoding**: the size the header declares (``ispe`` of the primary image, a
  grid's or overlay's output size) is what ``Image.open`` reports, so the engine's pixel,
  memory and image-count checks all run before a single tile is decoded; libheif's own
  security limits (items, tiles, box nesting, memory blocks) stay on.
- **8-bit out**: 10- and 12-bit images are scaled to 8 bits by libheif (thumbnails are 8-bit);
  the record keeps the source's bit depth.
"""

from __future__ import annotations

import io
from functools import cache

from PIL import Image

from ..outcomes import Reason
from .types import ImageRejected

# Peak bytes per pixel of a HEIF decode into Pillow, measured (make bench, 12 MP grid HEIC:
# 88 MiB over the process, 7.3 B/px): libheif's YCbCr planes, its interleaved RGB(A) and
# Pillow's 4-byte-per-pixel copy alive at once. There is no reduced-size decode for HEVC.
PEAK_BYTES_PER_PIXEL = {"RGB": 8, "RGBA": 10, "RGBa": 10, "L": 4, "LA": 6}
# HEVC has no reduced-size decode (JPEG's draft): the first resize starts from every pixel.
# A box reduce down to 1.5x the target, then BICUBIC: measured on a 12 MP HEIC to 1024 px
# (make bench's photo), 54 ms instead of 170 ms at reducing_gap 2.0; the q85 JPEG's PSNR
# against LANCZOS from the full decode 35.9 dB instead of 36.1 (the encode's ceiling: 36.4).
REDUCING_GAP = 1.5
# libde265 decodes a grid's tiles on this many threads; Lambda at 1024 MB has less than one
# vCPU, the local stack and `imgpipe process` more.
DECODE_THREADS = 4


@cache
def register() -> bool:
    """Make Pillow open HEIF through pi_heif; False where it is not installed."""
    try:
        from pi_heif import options
        from pi_heif.as_plugin import register_heif_opener
    except ImportError:
        return False
    options.DISABLE_SECURITY_LIMITS = False
    register_heif_opener(
        thumbnails=False,
        depth_images=False,
        aux_images=False,
        decode_threads=DECODE_THREADS,
    )
    return True


def peak_bytes(im: Image.Image) -> int:
    """What decoding ``im`` (opened, not loaded) will cost at its peak."""
    width, height = im.size
    return width * height * PEAK_BYTES_PER_PIXEL.get(im.mode, 10)


def source_bits(im: Image.Image) -> int:
    """The bit depth the file was coded with (8, 10 or 12), before libheif scaled it to 8."""
    depth = im.info.get("bit_depth", 8)
    return depth if isinstance(depth, int) and 1 <= depth <= 16 else 8


def check_complete(data: bytes) -> None:
    """Refuse a file whose top-level boxes run past its end. libheif decodes a grid whose
    later tiles are missing without an error (their area left blank), so a phone photo cut
    short in transfer would otherwise end DONE with a grey band."""
    at = 0
    while at + 8 <= len(data):
        size = int.from_bytes(data[at : at + 4], "big")
        header = 8
        if size == 1 and at + 16 <= len(data):  # a 64-bit size follows the type
            size, header = int.from_bytes(data[at + 8 : at + 16], "big"), 16
        if size == 0:  # the last box, to the end of the file
            return
        if size < header:
            raise ImageRejected(Reason.CORRUPT, f"a box at byte {at} declares {size} bytes")
        if at + size > len(data):
            raise ImageRejected(
                Reason.TRUNCATED,
                f"the file ends at byte {len(data)}; its {data[at + 4 : at + 8]!r} box "
                f"at {at} runs to byte {at + size}",
            )
        at += size
    if at < len(data):
        raise ImageRejected(Reason.TRUNCATED, f"the file ends inside a box header at byte {at}")


def diagnose(data: bytes) -> tuple[Reason, str]:
    """Why libheif refused ``data`` (Pillow only says "cannot identify"): (reason, detail).
    Opening parses the container alone, so asking again costs no decode."""
    from pi_heif.heif import open_heif

    try:
        heif = open_heif(io.BytesIO(data))
        heif[heif.primary_index]
    except IndexError:
        return (
            Reason.UNSUPPORTED_FORMAT,
            "no image coded in HEVC (the one codec this build decodes)",
        )
    except Exception as exc:  # noqa: BLE001 - libheif's errors arrive as several types
        return classify(str(exc) or type(exc).__name__)
    return Reason.CORRUPT, "the HEIF container could not be read"


def classify(message: str) -> tuple[Reason, str]:
    """A libheif error message as (reason, detail)."""
    lowered = message.lower()
    if any(s in lowered for s in ("end of file", "too small", "cannot read full", "truncated")):
        return Reason.TRUNCATED, message[:300]
    if any(s in lowered for s in ("unsupported", "not been built in")):
        return Reason.UNSUPPORTED_FORMAT, message[:300]
    if "security limit" in lowered and "pixel" in lowered:
        return Reason.TOO_MANY_PIXELS, message[:300]
    return Reason.CORRUPT, message[:300]
