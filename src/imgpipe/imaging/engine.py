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

from PIL import Image, ImageCms, UnidentifiedImageError

from ..outcomes import Reason
from .budget import check_decode, check_png_plausible, count_frames
from .formats import HEAD_BYTES, sniff, supported
from .metadata import bits, dhash, dominant_colour, read_exif
from .types import (
    ImageInfo,
    ImageRejected,
    Limits,
    Rendered,
    Thumbnail,
    ThumbSpec,
    Watermark,
    WatermarkError,
    check_size,
    fit,
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


def render(
    data: bytes,
    specs: Sequence[ThumbSpec],
    limits: Limits,
    *,
    jpeg_quality: int = 85,
    include_gps: bool = False,
    watermark: Watermark | None = None,
) -> Rendered:
    """Validate ``data`` and make one thumbnail per spec. Raises ImageRejected for bad input."""
    check_size(len(data), limits)
    fmt = sniff(data[:HEAD_BYTES])
    if fmt is None:
        raise ImageRejected(
            Reason.NOT_AN_IMAGE, "content is not JPEG, PNG, WebP, GIF, TIFF, BMP, AVIF or HEIF"
        )
    if not supported(fmt):
        raise ImageRejected(Reason.UNSUPPORTED_FORMAT, f"{fmt} needs a plugin this build lacks")
    with warnings.catch_warnings():
        # Pillow only warns between MAX_IMAGE_PIXELS and twice that: a bomb must be an outcome.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data), formats=[fmt]) as im:
                return _render(data, im, fmt, specs, limits, jpeg_quality, include_gps, watermark)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise ImageRejected(Reason.TOO_MANY_PIXELS, str(exc)) from None
        except UnidentifiedImageError:
            raise ImageRejected(Reason.CORRUPT, f"{fmt} header could not be parsed") from None
        except (ImageRejected, WatermarkError):
            raise  # a watermark failure is the configuration's, not this file's
        except MemoryError:
            raise ImageRejected(Reason.TOO_MANY_PIXELS, "the decode ran out of memory") from None
        except Exception as exc:  # noqa: BLE001 - decoders fail in every way on hostile bytes
            # Any decoder failure past the header (OSError, struct.error, TypeError from a
            # page without a width, ...): the file is damaged, whatever the detail.
            message = str(exc) or type(exc).__name__
            truncated = "truncated" in message.lower()
            reason = Reason.TRUNCATED if truncated else Reason.CORRUPT
            raise ImageRejected(reason, message[:300]) from None


def _render(  # noqa: PLR0913 - the decoded image and everything render() was told
    data: bytes,
    im: Image.Image,
    fmt: str,
    specs: Sequence[ThumbSpec],
    limits: Limits,
    quality: int,
    include_gps: bool,
    watermark: Watermark | None = None,
) -> Rendered:
    stored_w, stored_h = im.size
    if stored_w * stored_h > limits.max_pixels:
        raise ImageRejected(
            Reason.TOO_MANY_PIXELS,
            f"{stored_w}x{stored_h} = {stored_w * stored_h} pixels exceeds {limits.max_pixels}",
        )
    frames = count_frames(im, limits)
    mode, icc = im.mode, im.info.get("icc_profile")
    largest = max(s.size for s in specs)
    target = fit(stored_w, stored_h, largest)  # the longest side is the same either way round
    if fmt == "JPEG":
        im.draft(im.mode, target)
    if fmt == "PNG":
        check_png_plausible(data, im)
    check_decode(im, limits)
    # Decode before reading EXIF: for PNG and WebP getexif() may load the pixels itself, and
    # its defensive error handling must not swallow a damaged pixel stream.
    im.load()
    orientation, exif = read_exif(im, include_gps)
    swaps = orientation in _SWAPS_AXES
    width, height = (stored_h, stored_w) if swaps else (stored_w, stored_h)
    has_alpha = im.mode in _ALPHA_MODES or "transparency" in im.info
    work = _to_resizable(im, has_alpha)
    if work.size != target:
        work = work.resize(target, RESAMPLE, reducing_gap=REDUCING_GAP)
    if orientation in _TRANSPOSE:
        work = work.transpose(_TRANSPOSE[orientation])
    work = _to_srgb(work, icc if isinstance(icc, bytes) else None, has_alpha)
    images: list[tuple[ThumbSpec, Image.Image]] = []
    for spec in sorted(specs, key=lambda s: s.size, reverse=True):
        work = _shrink(work, fit(width, height, spec.size))
        images.append((spec, work))
    smallest = images[-1][1]
    info = ImageInfo(
        format=fmt,
        width=width,
        height=height,
        mode=mode,
        bits=bits(mode),
        has_alpha=has_alpha,
        animated=frames > 1,
        frames=frames,
        icc=icc is not None,
        orientation=orientation,
        exif=exif,
        phash=dhash(smallest),
        colour=dominant_colour(smallest),
    )
    thumbs = tuple(
        _encode(spec.name, _marked(image, spec, watermark), has_alpha, quality)
        for spec, image in reversed(images)
    )
    return Rendered(info, thumbs)


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


def _encode(name: str, im: Image.Image, has_alpha: bool, quality: int) -> Thumbnail:
    buf = io.BytesIO()
    if has_alpha:
        # JPEG has no alpha channel; PNG keeps transparency instead of a black background.
        im.save(buf, "PNG", compress_level=6)
        ext, ctype = "png", "image/png"
    else:
        im.save(buf, "JPEG", quality=quality)
        ext, ctype = "jpg", "image/jpeg"
    return Thumbnail(name, im.width, im.height, buf.getvalue(), ext, ctype)
