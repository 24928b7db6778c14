"""Identify the format by content (magic bytes), never by name or Content-Type."""

from __future__ import annotations

from functools import cache

from PIL import features

# (magic, offset, format). An HTML page or a zip named ".jpg" matches none of these.
_MAGIC: tuple[tuple[bytes, int, str], ...] = (
    (b"\xff\xd8\xff", 0, "JPEG"),
    (b"\x89PNG\r\n\x1a\n", 0, "PNG"),
    (b"GIF87a", 0, "GIF"),
    (b"GIF89a", 0, "GIF"),
    (b"II*\x00", 0, "TIFF"),
    (b"MM\x00*", 0, "TIFF"),
    (b"BM", 0, "BMP"),
)
# HEVC-coded HEIF: still images (heic, heix, heim, heis) and sequences (hevc, hevx, hevm, hevs)
_HEIF_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs"}
_AVIF_BRANDS = {b"avif", b"avis"}
# Brands that name the container but not the codec: libheif reads it, and says so if the
# coded items are not HEVC (libavif reads AV1 only under an avif brand).
_GENERIC_BRANDS = {b"mif1", b"msf1", b"miaf", b"mif2", b"MiHE"}


HEAD_BYTES = 64  # enough for the magic numbers and an ISO-BMFF ftyp box's brands


def sniff(head: bytes) -> str | None:
    """The format named by the first bytes (``HEAD_BYTES``), or None for anything else."""
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if len(head) >= 12 and head[4:8] == b"ftyp":
        return _isobmff(head)
    for magic, offset, fmt in _MAGIC:
        if head[offset:].startswith(magic):
            return fmt
    return None


def _isobmff(head: bytes) -> str | None:
    """AVIF or HEIF by the ftyp box's major *and* compatible brands: encoders often write the
    generic ``mif1`` as major brand and ``avif`` among the compatible ones."""
    size = int.from_bytes(head[0:4], "big")
    brands = {head[8:12]} | {head[i : i + 4] for i in range(16, min(size, len(head)) - 3, 4)}
    if brands & _AVIF_BRANDS:
        return "AVIF"
    if brands & (_HEIF_BRANDS | _GENERIC_BRANDS):
        return "HEIF"
    return None


@cache
def supported(fmt: str) -> bool:
    """Whether this Pillow can decode ``fmt`` (AVIF is built into Pillow >= 11.3 wheels;
    HEIF is read by pi-heif-decoder, a dependency: see heif.py)."""
    if fmt == "AVIF":
        return bool(features.check("avif"))
    if fmt == "HEIF":
        from .heif import register

        return register()
    return True
