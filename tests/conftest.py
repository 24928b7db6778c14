"""Fixtures shared by every test kind: real images, made or taken from the shared corpus."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus" / "exif-orientation"


def jpeg_bytes(
    size: tuple[int, int] = (640, 480), color: tuple[int, int, int] = (200, 80, 40)
) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "JPEG", quality=90)
    return buf.getvalue()


@pytest.fixture(scope="session")
def corpus() -> Path:
    if not CORPUS.is_dir():
        pytest.fail(f"the shared corpus is missing at {CORPUS}; it ships beside the project")
    return CORPUS


def skimage_photo(name: str) -> Image.Image:
    """A photo shipped inside the scikit-image wheel (astronaut: one face; chelsea: a cat)."""
    from importlib.resources import files

    with Image.open(str(files("skimage") / "data" / name)) as im:
        return im.convert("RGB")


def sign_photo(text: str = "OPEN 24 HOURS", size: tuple[int, int] = (1200, 500)) -> Image.Image:
    """A rendered sign: dark letters on a light board, with a little texture around it."""
    from PIL import ImageDraw, ImageFont

    im = Image.linear_gradient("L").resize(size).convert("RGB")
    draw = ImageDraw.Draw(im)
    draw.rectangle((60, 120, size[0] - 60, size[1] - 120), fill=(245, 240, 225))
    font = ImageFont.load_default(size=96)
    draw.text((110, size[1] // 2 - 55), text, fill=(20, 20, 30), font=font)
    return im


def jpeg_of(im: Image.Image, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=quality)
    return buf.getvalue()
