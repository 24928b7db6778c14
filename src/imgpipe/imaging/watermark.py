"""An optional overlay on chosen thumbnail sizes: a line of text or an image (a logo with
transparency), in a corner or the centre, at an opacity.

Applied to each chosen thumbnail after orientation and colour conversion, just before its
encode: so it is upright, sized to that thumbnail, and never carried into a smaller size or
into the image hash. A failure here is the operator's configuration, not the upload's fault:
it raises WatermarkError, which render() lets through instead of rejecting the file.
"""

from __future__ import annotations

import io
from functools import lru_cache

from PIL import Image, ImageDraw, ImageFont

from .types import Watermark, WatermarkError

TEXT_HEIGHT = 0.06  # of the thumbnail's shorter side
MAX_TEXT_WIDTH = 0.9  # of the thumbnail's width
IMAGE_WIDTH = 0.25  # of the thumbnail's width, at most the mark's own
MARGIN = 0.03  # of the shorter side
MAX_MARK_PIXELS = 4096 * 4096


def check(mark: Watermark) -> None:
    """Decode an image mark now (cached for apply): an unreadable or oversized one is found at
    start-up, not on the first upload. Raises WatermarkError."""
    if mark.image:
        _decoded(mark.image)


def apply(im: Image.Image, mark: Watermark) -> Image.Image:
    """``im`` with the mark composited on, in ``im``'s mode."""
    try:
        base = im.convert("RGBA")
        overlay = _text(base.size, mark) if mark.text else _image(base.size, mark)
        box = _place(base.size, overlay.size, mark.position)
        layer = Image.new("RGBA", base.size, (0, 0, 0, 0))
        layer.paste(overlay, box)
        return Image.alpha_composite(base, layer).convert(im.mode)
    except WatermarkError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure is the configuration's, said so
        raise WatermarkError(f"watermark failed: {type(exc).__name__}: {exc}") from None


def _text(size: tuple[int, int], mark: Watermark) -> Image.Image:
    height = max(10, round(min(size) * TEXT_HEIGHT))
    font = ImageFont.load_default(size=height)
    width = font.getlength(mark.text)
    if width > size[0] * MAX_TEXT_WIDTH:  # a long line is set smaller, never wider than this
        height = max(6, int(height * size[0] * MAX_TEXT_WIDTH / width))
        font = ImageFont.load_default(size=height)
    stroke = max(1, height // 12)
    probe = ImageDraw.Draw(Image.new("RGBA", (1, 1)))
    box = probe.textbbox((0, 0), mark.text, font=font, stroke_width=stroke)
    left, top, right, bottom = (round(v) for v in box)
    layer = Image.new("RGBA", (max(1, right - left), max(1, bottom - top)), (0, 0, 0, 0))
    alpha = round(255 * mark.opacity)
    ImageDraw.Draw(layer).text(
        (-left, -top),
        mark.text,
        font=font,
        fill=(255, 255, 255, alpha),
        stroke_width=stroke,
        stroke_fill=(0, 0, 0, alpha),
    )
    return layer


def _image(size: tuple[int, int], mark: Watermark) -> Image.Image:
    logo = _decoded(mark.image)
    width = min(logo.width, max(1, round(size[0] * IMAGE_WIDTH)))
    height = max(1, round(logo.height * width / logo.width))
    scaled = logo.resize((width, height), Image.Resampling.LANCZOS)
    if mark.opacity < 1:
        alpha = scaled.getchannel("A").point(lambda a: round(a * mark.opacity))
        scaled.putalpha(alpha)
    return scaled


@lru_cache(maxsize=4)
def _decoded(data: bytes) -> Image.Image:
    try:
        with Image.open(io.BytesIO(data)) as opened:
            if opened.width * opened.height > MAX_MARK_PIXELS:
                raise WatermarkError(f"the watermark image is {opened.width}x{opened.height}")
            return opened.convert("RGBA")
    except WatermarkError:
        raise
    except Exception as exc:  # noqa: BLE001 - say which file is wrong, whatever the decoder says
        raise WatermarkError(f"the watermark image cannot be read: {exc}") from None


def _place(size: tuple[int, int], mark: tuple[int, int], position: str) -> tuple[int, int]:
    margin = round(min(size) * MARGIN)
    width, height = size
    x = {"left": margin, "right": width - mark[0] - margin}
    y = {"top": margin, "bottom": height - mark[1] - margin}
    if position == "center":
        return (width - mark[0]) // 2, (height - mark[1]) // 2
    vertical, horizontal = position.split("-")
    return max(0, x[horizontal]), max(0, y[vertical])
