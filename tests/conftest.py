"""Fixtures shared by every test kind: real images, made or taken from the shared corpus. The
helpers themselves live in tests/harness/samples.py, which bench/ imports too."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.harness.samples import (
    CORPUS,
    EVENTS,
    ROOT,
    SKIMAGE_VARIED,
    Events,
    jpeg_bytes,
    jpeg_of,
    load_event,
    sign_photo,
    skimage_photo,
    varied_photos,
)

__all__ = [
    "CORPUS",
    "EVENTS",
    "ROOT",
    "SKIMAGE_VARIED",
    "Events",
    "jpeg_bytes",
    "jpeg_of",
    "load_event",
    "sign_photo",
    "skimage_photo",
    "varied_photos",
]


@pytest.fixture
def events() -> Events:
    return Events()


@pytest.fixture(scope="session")
def corpus() -> Path:
    if not CORPUS.is_dir():
        pytest.fail(f"the shared corpus is missing at {CORPUS}; it ships beside the project")
    return CORPUS
