"""The pure imaging core: sniff, validate, decode at reduced size, orient, thumbnail, describe.

Nothing here knows about AWS: bytes in, bytes and plain data out, so it runs the same in Lambda,
in the local runner and in ``imgpipe process``.
"""

from .render import render
from .sniff import sniff
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
    check_size,
    fit,
    parse_sizes,
)

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
    "check_size",
    "fit",
    "parse_sizes",
    "render",
    "sniff",
]
