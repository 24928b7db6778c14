"""The pure imaging core: sniff, validate, decode at reduced size, orient, thumbnail, describe.

Nothing here knows about AWS: bytes in, bytes and plain data out, so it runs the same in Lambda,
on the local stack and in ``imgpipe process``.

``render`` and ``sniff`` load Pillow; they are imported on first use, so modules that only need
the value types (the status record, the status API's Lambda) never pay for Pillow at cold start.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .types import (
    DEFAULT_SIZES,
    ExifValue,
    ImageInfo,
    ImageRejected,
    Limits,
    Rendered,
    RenderOptions,
    Thumbnail,
    ThumbSpec,
    Watermark,
    WatermarkError,
    check_size,
    fit,
    parse_formats,
    parse_sizes,
)

if TYPE_CHECKING:
    from .engine import render
    from .formats import sniff


def __getattr__(name: str) -> Any:
    if name == "render":
        from .engine import render

        return render
    if name == "sniff":
        from .formats import sniff

        return sniff
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DEFAULT_SIZES",
    "ExifValue",
    "ImageInfo",
    "ImageRejected",
    "Limits",
    "RenderOptions",
    "Rendered",
    "ThumbSpec",
    "Thumbnail",
    "Watermark",
    "WatermarkError",
    "check_size",
    "fit",
    "parse_formats",
    "parse_sizes",
    "render",
    "sniff",
]
