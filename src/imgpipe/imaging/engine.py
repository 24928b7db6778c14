"""Validate, decode at the smallest useful size, orient, convert to sRGB, thumbnail, encode.

Speed and memory come from doing the expensive steps at the smallest possible size:
- JPEG is decoded by libjpeg at 1/2, 1/4 or 1/8 scale (``draft``), the largest reduction that
  still covers the largest thumbnail: a 24 MP photo never exists at full resolution in memory.
- The one real resample goes from that reduced decode to the largest thumbnail; each smaller
  size is derived from the previous one.
- Orientation, colour management and mode conversions run on the largest thumbnail, not on the
  decoded image.
"""

from __future__ import annotations

import io
import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

from PIL import Image, ImageCms, ImageColor, UnidentifiedImageError

from ..outcomes import Reason
from . import heif
from .budget import check_decode, check_png_plausible, count_frames
from .crop import RelBox, Saliency, crop_size, faces_focus, scaled_size, window
from .formats import HEAD_BYTES, sniff, supported
from .metadata import bits, dhash, dominant_colour, read_exif
from .types import (
    FORMATS,
    ImageInfo,
    ImageRejected,
    Limits,
    Rendered,
    Thumbnail,
    ThumbSpec,
    Watermark,
    check_size,
)

# Chosen by measurement (make bench: the PSNR of the 1024 px JPEG against LANCZOS from the full
# decode, same run): from the draft-scale decode BICUBIC is within ~1 dB of sharp's and of the
# q85 ceiling for +3 ms on 12 MP; BILINEAR saves those 3 ms for -1 to -1.5 dB; LANCZOS gains
# 0.6 dB for +5 ms. libjpeg's DCT scaling already did the heavy low-pass filtering.
RESAMPLE = Image.Resampling.BICUBIC
# Above this factor, resize() first box-reduces by an integer factor (fast) and resamples the
# rest; PNG/TIFF/WebP sources benefit, JPEG rarely needs it after draft().
REDUCING_GAP = 2.0

_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_SWAPS_AXES = {5, 6, 7, 8}
_ALPHA_MODES = {"RGBA", "LA", "PA", "RGBa", "La"}


@dataclass(frozen=True, slots=True)
class Quality:
    jpeg: int = 85
    webp: int = 85
    avif: int = 72


@dataclass
class Prepared:
    """A validated, decoded photo, oriented and in sRGB: the whole photo at each spec's
    scale (uncropped), before any crop, pad, watermark or encode."""

    info: ImageInfo
    has_alpha: bool
    specs: tuple[ThumbSpec, ...]
    scaled: dict[str, Image.Image]
    # (id of an image, format) -> (that image, its bytes): the image is held, so that its id
    # cannot be reused by another image while the entry lives
    _encoded: dict[tuple[int, str], tuple[Image.Image, bytes]] = field(default_factory=dict)
    _saliency: Saliency | None = None

    def largest(self) -> Image.Image:
        return max(self.scaled.values(), key=lambda im: im.width * im.height)

    def saliency(self) -> Saliency:
        if self._saliency is None:
            self._saliency = Saliency.of(self.largest())
        return self._saliency


def render(  # noqa: PLR0913 - the photo and everything a caller may say about its thumbnails
    data: bytes,
    specs: Sequence[ThumbSpec],
    limits: Limits,
    *,
    jpeg_quality: int = 85,
    quality: Quality | None = None,
    include_gps: bool = False,
    watermark: Watermark | None = None,
    faces: Sequence[RelBox] = (),
) -> Rendered:
    """Validate ``data`` and make each spec's thumbnails. Raises ImageRejected for bad input.
    ``faces`` (relative boxes) are where cover crops centre; without them, attention."""
    prepared = prepare(data, specs, limits, include_gps=include_gps)
    chosen = quality or Quality(jpeg=jpeg_quality)
    return Rendered(prepared.info, finish(prepared, chosen, watermark, faces))


LABEL_VIEW = "_label_view"  # the uncropped photo a labeler looks at, when one is asked for
LABEL_SIDE = 1024  # pixels, its longest side: detectors need faces and letters this large


def prepare(
    data: bytes,
    specs: Sequence[ThumbSpec],
    limits: Limits,
    *,
    include_gps: bool = False,
    label_side: int = 0,
) -> Prepared:
    """Validate and decode ``data`` for ``specs`` (and, with ``label_side``, a view of the
    whole photo that size for ``label_view``). Raises ImageRejected for bad input."""
    fmt = _format_of(data, limits)
    extra = (ThumbSpec(LABEL_VIEW, label_side),) if label_side else ()
    with warnings.catch_warnings():
        # Pillow only warns between MAX_IMAGE_PIXELS and twice that: a bomb must be an outcome.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data), formats=[fmt]) as im:
                prepared = _prepare(data, im, fmt, (*specs, *extra), limits, include_gps)
                prepared.specs = tuple(specs)
                return prepared
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise ImageRejected(Reason.TOO_MANY_PIXELS, str(exc)) from None
        except UnidentifiedImageError:
            if fmt == "HEIF":  # Pillow hides libheif's reason: ask it
                raise ImageRejected(*heif.diagnose(data)) from None
            raise ImageRejected(Reason.CORRUPT, f"{fmt} header could not be parsed") from None
        except ImageRejected:
            raise
        except MemoryError:
            raise ImageRejected(Reason.TOO_MANY_PIXELS, "the decode ran out of memory") from None
        except Exception as exc:  # noqa: BLE001 - decoders fail in every way on hostile bytes
            # Any decoder failure past the header (OSError, struct.error, TypeError from a
            # page without a width, ...): the file is damaged, whatever the detail.
            message = str(exc) or type(exc).__name__
            if fmt == "HEIF":
                raise ImageRejected(*heif.classify(message)) from None
            truncated = "truncated" in message.lower()
            reason = Reason.TRUNCATED if truncated else Reason.CORRUPT
            raise ImageRejected(reason, message[:300]) from None


def _format_of(data: bytes, limits: Limits) -> str:
    """The format the content says, if this build reads it; what can be refused from the
    size and the container alone is refused here."""
    check_size(len(data), limits)
    fmt = sniff(data[:HEAD_BYTES])
    if fmt is None:
        raise ImageRejected(
            Reason.NOT_AN_IMAGE, "content is not JPEG, PNG, WebP, GIF, TIFF, BMP, AVIF or HEIF"
        )
    if not supported(fmt):
        raise ImageRejected(Reason.UNSUPPORTED_FORMAT, f"{fmt} needs a plugin this build lacks")
    if fmt == "HEIF":
        heif.check_complete(data)
    return fmt


def _prepare(
    data: bytes,
    im: Image.Image,
    fmt: str,
    specs: tuple[ThumbSpec, ...],
    limits: Limits,
    include_gps: bool,
) -> Prepared:
    stored_w, stored_h = im.size
    if stored_w * stored_h > limits.max_pixels:
        raise ImageRejected(
            Reason.TOO_MANY_PIXELS,
            f"{stored_w}x{stored_h} = {stored_w * stored_h} pixels exceeds {limits.max_pixels}",
        )
    frames = count_frames(im, limits)
    mode, icc = im.mode, im.info.get("icc_profile")
    # JPEG is decoded at a reduced scale (draft), sized before the decode: from the header's
    # orientation. Other formats read EXIF only after the decode (see below), and size then.
    orientation_hint = _orientation_hint(im) if fmt == "JPEG" else 1
    swaps_hint = orientation_hint in _SWAPS_AXES
    upright = (stored_h, stored_w) if swaps_hint else (stored_w, stored_h)
    wanted = {s.name: scaled_size(*upright, s) for s in specs}
    largest = max(wanted.values(), key=lambda wh: wh[0] * wh[1])
    target = (largest[1], largest[0]) if swaps_hint else largest
    if fmt == "JPEG":
        im.draft(im.mode, target)
    if fmt == "PNG":
        check_png_plausible(data, im)
    check_decode(im, limits)
    # Decode before reading EXIF: for PNG and WebP getexif() may load the pixels itself, and
    # its defensive error handling must not swallow a damaged pixel stream.
    im.load()
    orientation, exif = read_exif(im, include_gps)
    if fmt == "HEIF":
        # libheif applied the container's clap/irot/imir while decoding; the HEIF spec makes
        # any EXIF orientation informative only: applying it too would turn the photo twice.
        orientation = 1
        exif.pop("orientation", None)
    swaps = orientation in _SWAPS_AXES
    width, height = (stored_h, stored_w) if swaps else (stored_w, stored_h)
    if swaps != swaps_hint:  # the EXIF read after the decode disagrees: size for what it says
        wanted = {s.name: scaled_size(width, height, s) for s in specs}
        largest = max(wanted.values(), key=lambda wh: wh[0] * wh[1])
        target = (largest[1], largest[0]) if swaps else largest
    has_alpha = im.mode in _ALPHA_MODES or "transparency" in im.info
    work = _to_resizable(im, has_alpha)
    if work.size != target:
        gap = heif.REDUCING_GAP if fmt == "HEIF" else REDUCING_GAP
        work = work.resize(target, RESAMPLE, reducing_gap=gap)
    if orientation in _TRANSPOSE:
        work = work.transpose(_TRANSPOSE[orientation])
    work = _to_srgb(work, _profile(im, icc), has_alpha)
    scaled: dict[str, Image.Image] = {}
    for spec in sorted(specs, key=lambda s: wanted[s.name][0], reverse=True):
        work = _shrink(work, wanted[spec.name])
        scaled[spec.name] = work
    smallest = min(scaled.values(), key=lambda i: i.width * i.height)
    info = ImageInfo(
        format=fmt,
        width=width,
        height=height,
        mode=mode,
        bits=heif.source_bits(im) if fmt == "HEIF" else bits(mode),
        has_alpha=has_alpha,
        # a HEIF's images are a burst, a stereo pair or alternatives, not an animation
        animated=frames > 1 and fmt != "HEIF",
        frames=frames,
        icc=icc is not None,
        orientation=orientation,
        exif=exif,
        phash=dhash(smallest),
        colour=dominant_colour(smallest),
    )
    return Prepared(info, has_alpha, specs, scaled)


def _profile(im: Image.Image, icc: object) -> bytes | None:
    """The source's colour space as an ICC profile: the embedded one, else (HEIF) one made
    from the ``nclx`` box's primaries and transfer (Display P3 phones often write only that)."""
    if isinstance(icc, bytes):
        return icc
    if im.format == "HEIF":
        from .icc import from_nclx

        return from_nclx(im.info.get("nclx_profile"))
    return None


def _orientation_hint(im: Image.Image) -> int:
    """The EXIF orientation as the header says it, before the decode (to size the decode)."""
    try:
        value = im.getexif().get(0x0112, 1)
    except Exception:  # noqa: BLE001 - hostile EXIF: the full read after the decode decides
        return 1
    return value if isinstance(value, int) else 1


def label_view(prepared: Prepared, quality: Quality) -> bytes:
    """The largest uncropped image as a JPEG (PNG with alpha): what byte-taking labelers see,
    so that their boxes are fractions of the whole photo. Shared with a fit JPEG of the same
    size, which is then not encoded twice."""
    view = prepared.scaled.get(LABEL_VIEW) or prepared.largest()
    return _encoded(prepared, view, "jpeg", quality)


def finish(
    prepared: Prepared,
    quality: Quality,
    watermark: Watermark | None = None,
    faces: Sequence[RelBox] = (),
) -> tuple[Thumbnail, ...]:
    """Each spec's thumbnails, in each of its formats, smallest first."""
    focus = faces_focus(faces)
    out: list[Thumbnail] = []
    for spec in prepared.specs:
        whole = prepared.scaled[spec.name]
        shaped = _shaped(prepared, spec, whole, focus)
        marked = _marked(shaped, spec, watermark)
        for fmt in spec.formats:
            out.append(_thumbnail(prepared, spec.name, marked, fmt, quality))
    return tuple(sorted(out, key=lambda t: (t.width * t.height, t.name, t.extension)))


def _shaped(
    prepared: Prepared,
    spec: ThumbSpec,
    whole: Image.Image,
    focus: tuple[float, float] | None,
) -> Image.Image:
    if spec.mode == "cover":
        cut = crop_size(whole.width, whole.height, spec)
        if cut == whole.size:
            return whole
        at = focus or prepared.saliency().focus(cut[0] / whole.width, cut[1] / whole.height)
        return whole.crop(window(whole.size, cut, at))
    if spec.mode == "pad" and whole.size != (spec.width, spec.height):
        colour = ImageColor.getrgb(spec.background)
        canvas = Image.new(whole.mode, (spec.width, spec.height), _fill(whole.mode, colour))
        canvas.paste(whole, ((spec.width - whole.width) // 2, (spec.height - whole.height) // 2))
        return canvas
    return whole


def _fill(mode: str, colour: tuple[int, ...]) -> int | tuple[int, ...]:
    r, g, b = colour[:3]
    if mode == "L":
        return round(0.299 * r + 0.587 * g + 0.114 * b)
    if mode == "LA":
        return (round(0.299 * r + 0.587 * g + 0.114 * b), 255)
    return (r, g, b, 255) if mode == "RGBA" else (r, g, b)


def _marked(im: Image.Image, spec: ThumbSpec, watermark: Watermark | None) -> Image.Image:
    """The thumbnail as encoded: with the watermark where it applies (on a copy, so that the
    smaller sizes made from this one carry none)."""
    if watermark is None or not watermark.applies_to(spec.name, spec.size):
        return im
    from .watermark import apply

    return apply(im, watermark)


def _shrink(im: Image.Image, size: tuple[int, int]) -> Image.Image:
    """``im`` at ``size``. An exact integer ratio (1024 -> 512 -> 128) is a box reduce, five
    times cheaper than a resample and as good at these factors; the box drops at most the
    last row or column the rounding of the target left over."""
    if im.size == size:
        return im
    factor = im.width // size[0]
    if factor > 1 and im.height // size[1] == factor and max(im.size) == factor * max(size):
        return im.reduce(factor, box=(0, 0, size[0] * factor, size[1] * factor))
    return im.resize(size, RESAMPLE, reducing_gap=REDUCING_GAP)


def _to_resizable(im: Image.Image, has_alpha: bool) -> Image.Image:
    """A mode resize() handles with a real filter: palettes and 1-bit would fall back to
    NEAREST, 16/32-bit greys must come down to 8 bits (scaled, not clipped)."""
    if im.mode in {"RGB", "RGBA", "L", "LA", "CMYK"}:
        return im
    if im.mode in {"I;16", "I;16B", "I;16L", "I;16N", "I", "F"}:
        low, high = (0.0, 65535.0) if im.mode.startswith("I;16") else _extrema(im)
        span = (high - low) or 1.0
        source = im if im.mode == "F" else im.convert("I")
        return source.point(lambda v: (v - low) * (255 / span)).convert("L")
    if im.mode == "1":
        return im.convert("L")
    return im.convert("RGBA" if has_alpha else "RGB")


def _extrema(im: Image.Image) -> tuple[float, float]:
    low, high = im.getextrema()
    assert isinstance(low, int | float) and isinstance(high, int | float)
    return float(low), float(high)


_per_thread = threading.local()


def _srgb() -> ImageCms.ImageCmsProfile:
    """One sRGB profile per thread: LittleCMS reads a profile's tags lazily while it builds a
    transform, so a profile handle must not be used by two threads at once."""
    profile: ImageCms.ImageCmsProfile | None = getattr(_per_thread, "srgb", None)
    if profile is None:
        profile = _per_thread.srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
    return profile


def _to_srgb(im: Image.Image, icc: bytes | None, has_alpha: bool) -> Image.Image:
    """Thumbnails are untagged, so browsers read them as sRGB: convert from the embedded
    profile (Display P3, Adobe RGB, CMYK press profiles) on the small image, not the decode."""
    target_mode = ("RGBA" if has_alpha else "RGB") if im.mode not in {"L", "LA"} else im.mode
    if icc:
        try:
            profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            if "srgb" not in ImageCms.getProfileDescription(profile).lower() or im.mode == "CMYK":
                alpha = im.getchannel("A") if im.mode in {"RGBA", "LA"} else None
                base = im.convert(im.mode.rstrip("A") or "L") if alpha is not None else im
                out_mode = "RGB" if base.mode in {"RGB", "CMYK"} else base.mode
                converted = ImageCms.profileToProfile(base, profile, _srgb(), outputMode=out_mode)
                if converted is not None:
                    if alpha is not None:
                        converted.putalpha(alpha)
                    im = converted
        except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
            pass  # a broken profile: fall through to the plain conversion below
    return im if im.mode == target_mode else im.convert(target_mode)


def _thumbnail(
    prepared: Prepared, name: str, im: Image.Image, fmt: str, quality: Quality
) -> Thumbnail:
    if fmt == "jpeg" and prepared.has_alpha:
        fmt = "png"  # JPEG has no alpha channel: PNG keeps transparency, not a black ground
    ext, ctype = FORMATS[fmt]
    return Thumbnail(name, im.width, im.height, _encoded(prepared, im, fmt, quality), ext, ctype)


def _encoded(prepared: Prepared, im: Image.Image, fmt: str, quality: Quality) -> bytes:
    if fmt == "jpeg" and prepared.has_alpha:
        fmt = "png"
    key = (id(im), fmt)
    if key not in prepared._encoded:
        prepared._encoded[key] = (im, encode(im, fmt, quality))
    return prepared._encoded[key][1]


def encode(im: Image.Image, fmt: str, quality: Quality) -> bytes:
    """One image in one format. JPEG progressive with optimised Huffman tables (smaller, and
    shown whole at once while loading); WebP and AVIF keep alpha; AVIF at libavif's speed 8
    (make bench: a fraction of speed 6's time for a few percent more bytes)."""
    buf = io.BytesIO()
    if fmt == "jpeg":
        im.save(buf, "JPEG", quality=quality.jpeg, progressive=True, optimize=True)
    elif fmt == "png":
        im.save(buf, "PNG", compress_level=6)
    elif fmt == "webp":
        im.save(buf, "WEBP", quality=quality.webp, method=4)
    elif fmt == "avif":
        im.save(buf, "AVIF", quality=quality.avif, speed=8)
    else:
        raise ValueError(f"no encoder for {fmt!r}")
    return buf.getvalue()
