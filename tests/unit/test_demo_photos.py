"""The demo stands on its own: the repository's photos, each with its source and licence."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from imgpipe.cli import demo
from imgpipe.imaging.heif import register
from tests.conftest import ROOT

PHOTOS = ROOT / "demo" / "photos"


def test_every_photo_names_its_source_and_licence() -> None:
    sources = (PHOTOS / "SOURCES.md").read_text()
    images = [p for p in PHOTOS.iterdir() if p.suffix not in {".md", ".txt"}]
    assert len(images) >= 9
    for photo in images:
        assert f"| `{photo.name}` |" in sources, photo.name
    assert sum(p.stat().st_size for p in PHOTOS.iterdir()) < 3 * 1024 * 1024  # a few MB


def test_they_cover_what_imgpipe_does() -> None:
    """A HEIC, a PNG with alpha, an animated GIF, an EXIF-rotated JPEG, a broken file."""
    register()
    opened: dict[str, tuple[str | None, str, int, Image.Exif] | None] = {}
    for photo in PHOTOS.iterdir():
        if photo.suffix in {".md", ".txt"}:
            continue
        try:
            with Image.open(photo) as im:
                im.load()
                opened[photo.name] = (im.format, im.mode, getattr(im, "n_frames", 1), im.getexif())
        except OSError:
            opened[photo.name] = None
    assert opened["broken.jpg"] is None
    formats = {v[0] for v in opened.values() if v}
    assert {"JPEG", "PNG", "GIF", "HEIF"} <= formats
    assert any(v and v[0] == "PNG" and v[1] == "RGBA" for v in opened.values())
    assert any(v and v[0] == "GIF" and v[2] > 1 for v in opened.values())
    assert any(v and v[3].get(0x0112) == 6 for v in opened.values())  # EXIF orientation 6


def test_the_demo_uploads_them_without_the_shared_corpus(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(demo.PHOTOS_ENV, str(tmp_path / "no such folder"))
    names = [p.name for p in demo.demo_photos()]
    assert "grace-hopper.jpg" in names and "temple-phone.heic" in names and "broken.jpg" in names
    assert not any(n.endswith((".md", ".txt")) for n in names)
    # the shared corpus, where there is one, comes after them
    (tmp_path / "corpus").mkdir()
    Image.new("RGB", (8, 8)).save(buffer := io.BytesIO(), "JPEG")
    (tmp_path / "corpus" / "extra.jpg").write_bytes(buffer.getvalue())
    monkeypatch.setenv(demo.PHOTOS_ENV, str(tmp_path / "corpus"))
    assert [p.name for p in demo.demo_photos()][-1] == "extra.jpg"
