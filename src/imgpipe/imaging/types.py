"""Value types of the imaging core and the checks that need nothing but numbers."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
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


# Output formats: (file extension, content type). PNG stands in for JPEG where the photo has
# alpha (JPEG has no alpha channel); WebP and AVIF keep alpha themselves.
FORMATS = {
    "jpeg": ("jpg", "image/jpeg"),
    "png": ("png", "image/png"),
    "webp": ("webp", "image/webp"),
    "avif": ("avif", "image/avif"),
}
FORMAT_ALIASES = {"jpg": "jpeg"}
MODES = ("fit", "cover", "pad")


@dataclass(frozen=True, slots=True)
class ThumbSpec:
    """One thumbnail size: ``fit`` inside ``width`` x ``height`` (aspect kept; the longest side
    of a square box, as in ``small=128``), ``cover`` that exact box (cropped around the photo's
    focus), or ``pad`` it (letterboxed with ``background``); written in each of ``formats``.
    Never enlarged: a photo smaller than the box stays its size (cover keeps the box's aspect)."""

    name: str
    width: int
    height: int = 0  # 0: the same as width (a square box)
    mode: str = "fit"
    formats: tuple[str, ...] = ("jpeg",)
    background: str = "#ffffff"  # pad's colour

    def __post_init__(self) -> None:
        if not self.height:
            object.__setattr__(self, "height", self.width)

    @property
    def size(self) -> int:
        """The box's longest side."""
        return max(self.width, self.height)


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


_BOX = re.compile(r"(?P<w>[0-9]{1,4})(?:x(?P<h>[0-9]{1,4}))?")
_COLOUR = re.compile(r"#?(?P<hex>[0-9a-fA-F]{6})")


def parse_sizes(text: str, default_formats: tuple[str, ...] = ("jpeg",)) -> tuple[ThumbSpec, ...]:
    """Parse the thumbnail sizes, largest first. Entries are separated by ``,`` or ``;``:

        name=SIZE[:MODE][:FORMAT[,FORMAT...]]

    SIZE is ``N`` (a square box) or ``WxH``; MODE ``fit`` (default), ``cover`` or ``pad``
    (``pad-RRGGBB`` for a colour other than white); FORMATs among jpeg, png, webp, avif
    (default: ``default_formats``). A word without ``=`` after an entry is one more format of
    it, so ``square=300x300:cover:webp,avif; large=1600`` reads as two sizes, and
    ``small=128,medium=512,large=1024`` keeps its meaning: three JPEG fits."""
    specs: list[ThumbSpec] = []
    tokens = [t.strip() for chunk in text.split(";") for t in chunk.split(",")]
    for token in tokens:
        if not token:
            raise ValueError(f"an empty entry in {text!r}")
        if "=" not in token:
            if not specs:
                raise ValueError(f"expected name=size first, got {token!r}")
            last = specs[-1]
            specs[-1] = replace(last, formats=(*last.formats, _format(token, last.name)))
            continue
        specs.append(_entry(token, default_formats))
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate thumbnail names in {text!r}")
    for spec in specs:
        if len(set(spec.formats)) != len(spec.formats):
            raise ValueError(f"{spec.name}: a format named twice")
    return tuple(sorted(specs, key=lambda s: s.size, reverse=True))


def parse_formats(text: str) -> tuple[str, ...]:
    """``"webp,jpeg"``: the formats of sizes that name none."""
    formats = tuple(_format(w.strip(), "THUMBNAIL_FORMATS") for w in text.split(",") if w.strip())
    if not formats or len(set(formats)) != len(formats):
        raise ValueError(f"one or more different formats of {', '.join(FORMATS)}: {text!r}")
    return formats


def _entry(token: str, default_formats: tuple[str, ...]) -> ThumbSpec:
    name, _, rest = (part.strip() for part in token.partition("="))
    if not name.isidentifier():
        raise ValueError(f"expected name=size, got {token!r}")
    size, *options = (part.strip() for part in rest.split(":"))
    box = _BOX.fullmatch(size)
    if box is None:
        raise ValueError(f"size for {name!r}: N or WxH pixels, got {size!r}")
    width, height = int(box["w"]), int(box["h"] or box["w"])
    if not (8 <= width <= 8192 and 8 <= height <= 8192):
        raise ValueError(f"size for {name!r} must be within 8..8192, got {size}")
    mode, background, formats = "fit", "#ffffff", default_formats
    if len(options) > 2:
        raise ValueError(f"{name!r}: name=size[:mode][:formats], got {token!r}")
    for option in options:
        if option.split("-")[0] in MODES:
            mode, background = _mode(option, name)
        else:
            formats = (_format(option, name),)
    return ThumbSpec(name, width, height, mode, tuple(formats), background)


def _mode(option: str, name: str) -> tuple[str, str]:
    mode, _, colour = option.partition("-")
    if not colour:
        return mode, "#ffffff"
    found = _COLOUR.fullmatch(colour)
    if mode != "pad" or found is None:
        raise ValueError(f"{name!r}: a colour goes with pad only, as pad-RRGGBB: {option!r}")
    return mode, f"#{found['hex'].lower()}"


def _format(word: str, name: str) -> str:
    fmt = FORMAT_ALIASES.get(word.lower(), word.lower())
    if fmt not in FORMATS:
        raise ValueError(f"{name!r}: format {word!r} is not one of {', '.join(FORMATS)}")
    return fmt


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
    jpeg_quality: int = 85  # progressive, optimised
    webp_quality: int = 85  # the SSIM of JPEG q85 (make bench: bench.formats)
    avif_quality: int = 72  # likewise
    include_gps: bool = False  # GPS is personal data: off unless asked for
    watermark: Watermark | None = None
