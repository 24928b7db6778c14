"""Value types of the imaging core and the checks that need nothing but numbers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeAlias

from ..outcomes import Reason

# What the EXIF subset holds: text, numbers, and {"lat", "lon"} for GPS.
ExifValue: TypeAlias = str | int | float | dict[str, float]


class ImageRejected(Exception):
    """A permanent, input-caused failure, with its machine-readable reason."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class ThumbSpec:
    name: str
    size: int  # longest side in pixels


@dataclass(frozen=True, slots=True)
class Limits:
    max_bytes: int = 50 * 1024 * 1024
    max_pixels: int = 80_000_000  # decompression-bomb guard, checked from the header
    max_frames: int = 1000
    # Estimated peak bytes of a decode (see budget.py): with Python and the libraries, the
    # process stays inside 768 MiB, well within the process function's 1024 MB.
    max_decode_bytes: int = 640 * 1024 * 1024


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
    bits: int
    has_alpha: bool
    animated: bool
    frames: int
    icc: bool
    orientation: int
    exif: dict[str, ExifValue] = field(default_factory=dict)
    phash: str = ""  # 64-bit difference hash, hex: near-duplicates differ in few bits
    colour: str = ""  # dominant colour, "#rrggbb"


@dataclass(frozen=True, slots=True)
class Rendered:
    info: ImageInfo
    thumbnails: tuple[Thumbnail, ...]  # smallest first


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
        raise ImageRejected(Reason.EMPTY, "the file has zero bytes")
    if size > limits.max_bytes:
        raise ImageRejected(
            Reason.TOO_LARGE, f"{size} bytes exceeds the limit of {limits.max_bytes}"
        )


DEFAULT_SIZES = "small=128,medium=512,large=1024"

WATERMARK_POSITIONS = ("top-left", "top-right", "bottom-left", "bottom-right", "center")
MAX_MARK_BYTES = 2 * 1024 * 1024
MAX_MARK_TEXT = 200  # characters: one line, set to fit the thumbnail


class WatermarkError(RuntimeError):
    """The watermark cannot be applied (its image is unreadable, its settings invalid)."""


@dataclass(frozen=True, slots=True)
class Watermark:
    text: str = ""
    image: bytes = b""  # an image file (PNG with alpha, usually); exactly one of text/image
    position: str = "bottom-right"
    opacity: float = 0.5
    min_size: int = 256  # sizes (longest side) below this get none: unreadable when tiny
    sizes: frozenset[str] = field(default_factory=frozenset)  # names; empty: all >= min_size

    def __post_init__(self) -> None:
        if bool(self.text) == bool(self.image):
            raise WatermarkError("a watermark is a text or an image, exactly one")
        if self.position not in WATERMARK_POSITIONS:
            raise WatermarkError(
                f"position {self.position!r}: one of {', '.join(WATERMARK_POSITIONS)}"
            )
        if not 0 < self.opacity <= 1:
            raise WatermarkError(f"opacity {self.opacity}: above 0, at most 1")
        if len(self.text) > MAX_MARK_TEXT or "\n" in self.text:
            raise WatermarkError(f"the watermark text is one line of at most {MAX_MARK_TEXT}")
        if len(self.image) > MAX_MARK_BYTES:
            raise WatermarkError(f"the watermark image is over {MAX_MARK_BYTES} bytes")

    def applies_to(self, name: str, size: int) -> bool:
        return size >= self.min_size and (not self.sizes or name in self.sizes)


@dataclass(frozen=True, slots=True)
class RenderOptions:
    """Everything ``render`` is told; the defaults are the service's (config and CLI use them)."""

    sizes: tuple[ThumbSpec, ...] = parse_sizes(DEFAULT_SIZES)
    limits: Limits = Limits()
    jpeg_quality: int = 85
    include_gps: bool = False  # GPS is personal data: off unless asked for
    watermark: Watermark | None = None
