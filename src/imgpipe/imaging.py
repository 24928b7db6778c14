"""The pure imaging core: sniff, validate, decode at reduced size, orient, thumbnail, describe.

Nothing here knows about AWS; it takes bytes and returns bytes and plain data, so it runs the
same in Lambda, in the local runner and in ``imgpipe process``.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

# Magic numbers of the formats we accept. Checked before Pillow sees the bytes, so an HTML page
# or a zip named ``.jpg`` is rejected by content, whatever its extension or Content-Type claims.
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"BM", "BMP"),
)

_ORIENTATION_TAG = 0x0112
_SWAPS_AXES = {5, 6, 7, 8}


class ImageRejected(Exception):
    """A permanent, input-caused failure. ``reason`` is a short machine-readable code."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class ThumbSpec:
    name: str
    size: int  # longest side in pixels


@dataclass(frozen=True, slots=True)
class Limits:
    max_bytes: int
    max_pixels: int


@dataclass(frozen=True, slots=True)
class Thumbnail:
    name: str
    width: int
    height: int
    data: bytes
    extension: str
    content_type: str


@dataclass(frozen=True, slots=True)
class ImageInfo:
    format: str
    width: int  # after EXIF orientation
    height: int
    mode: str
    orientation: int
    has_alpha: bool


@dataclass(frozen=True, slots=True)
class Rendered:
    info: ImageInfo
    thumbnails: tuple[Thumbnail, ...]


def parse_sizes(text: str) -> tuple[ThumbSpec, ...]:
    """Parse ``"small=128,medium=512,large=1024"`` into specs, largest first."""
    specs: list[ThumbSpec] = []
    for part in text.split(","):
        name, sep, size = part.strip().partition("=")
        if not sep or not name.strip().isidentifier() or not size.strip().isdigit():
            raise ValueError(f"expected name=pixels, got {part.strip()!r}")
        value = int(size)
        if not 8 <= value <= 8192:
            raise ValueError(f"size for {name.strip()!r} must be within 8..8192, got {value}")
        specs.append(ThumbSpec(name.strip(), value))
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate thumbnail names in {text!r}")
    return tuple(sorted(specs, key=lambda s: s.size, reverse=True))


def sniff(head: bytes) -> str | None:
    """The image format named by the first bytes, or None when they are no image we accept."""
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    for magic, fmt in _MAGIC:
        if head.startswith(magic):
            return fmt
    return None


def fit(width: int, height: int, longest: int) -> tuple[int, int]:
    """Scale (width, height) so the longest side is ``longest``; never upscale; keep aspect."""
    side = max(width, height)
    if side <= longest:
        return width, height
    scale = longest / side
    return max(1, round(width * scale)), max(1, round(height * scale))


def check_size(size: int, limits: Limits) -> None:
    """Reject by byte count alone, so callers can refuse an object before downloading it."""
    if size == 0:
        raise ImageRejected("empty", "the file has zero bytes")
    if size > limits.max_bytes:
        raise ImageRejected("too_large", f"{size} bytes exceeds the limit of {limits.max_bytes}")


def render(
    data: bytes, specs: Sequence[ThumbSpec], limits: Limits, *, jpeg_quality: int = 85
) -> Rendered:
    """Validate ``data`` and make one thumbnail per spec. Raises ImageRejected for bad input."""
    check_size(len(data), limits)
    fmt = sniff(data[:16])
    if fmt is None:
        raise ImageRejected("not_an_image", "content is not JPEG, PNG, WebP, GIF, TIFF or BMP")
    try:
        with Image.open(io.BytesIO(data), formats=[fmt]) as im:
            return _render_open(im, fmt, specs, limits, jpeg_quality)
    except Image.DecompressionBombError as exc:
        raise ImageRejected("too_many_pixels", str(exc)) from None
    except UnidentifiedImageError:
        raise ImageRejected("corrupt", f"{fmt} header could not be parsed") from None


def _render_open(
    im: Image.Image, fmt: str, specs: Sequence[ThumbSpec], limits: Limits, quality: int
) -> Rendered:
    width, height = im.size
    if width * height > limits.max_pixels:
        raise ImageRejected(
            "too_many_pixels",
            f"{width}x{height} = {width * height} pixels exceeds the limit of {limits.max_pixels}",
        )
    orientation = _orientation(im)
    if orientation in _SWAPS_AXES:
        width, height = height, width
    mode = im.mode
    largest = max(s.size for s in specs)
    if fmt == "JPEG":
        # Let libjpeg decode at 1/2, 1/4 or 1/8 scale: the DCT does the first, cheap
        # downscale and the full-resolution bitmap is never allocated.
        box = fit(im.size[0], im.size[1], largest)
        im.draft(im.mode, box)
    try:
        im.load()
        oriented = ImageOps.exif_transpose(im)
    except OSError as exc:
        message = str(exc)
        reason = "truncated" if "truncated" in message else "corrupt"
        raise ImageRejected(reason, message) from None
    except (SyntaxError, ValueError, EOFError) as exc:
        raise ImageRejected("corrupt", str(exc) or type(exc).__name__) from None
    has_alpha = _has_alpha(oriented)
    work = oriented.convert("RGBA" if has_alpha else "RGB")
    thumbs: list[Thumbnail] = []
    for spec in sorted(specs, key=lambda s: s.size, reverse=True):
        target = fit(width, height, spec.size)
        if work.size != target:
            # Each size is derived from the previous, larger one: one expensive resize only.
            work = work.resize(target, Image.Resampling.BICUBIC, reducing_gap=2.0)
        thumbs.append(_encode(spec.name, work, has_alpha, quality))
    info = ImageInfo(fmt, width, height, mode, orientation, has_alpha)
    return Rendered(info, tuple(sorted(thumbs, key=lambda t: t.width * t.height)))


def _orientation(im: Image.Image) -> int:
    try:
        value = im.getexif().get(_ORIENTATION_TAG, 1)
    except (OSError, SyntaxError, ValueError, TypeError):
        return 1  # unreadable EXIF: treat as upright rather than refuse the picture
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _has_alpha(im: Image.Image) -> bool:
    return im.mode in {"RGBA", "LA", "PA", "RGBa", "La"} or (
        im.mode == "P" and "transparency" in im.info
    )


def _encode(name: str, im: Image.Image, has_alpha: bool, quality: int) -> Thumbnail:
    buf = io.BytesIO()
    if has_alpha:
        # JPEG has no alpha channel; PNG keeps transparency instead of a black background.
        im.save(buf, "PNG", optimize=False, compress_level=6)
        ext, ctype = "png", "image/png"
    else:
        im.save(buf, "JPEG", quality=quality, optimize=False)
        ext, ctype = "jpg", "image/jpeg"
    return Thumbnail(name, im.width, im.height, buf.getvalue(), ext, ctype)
