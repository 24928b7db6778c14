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
