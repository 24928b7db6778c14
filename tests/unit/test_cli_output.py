"""Stored data (keys, OCR text, error details) is user input: printed, it must not drive the
terminal (colours, cursor moves, window titles, hyperlinks, bidi overrides)."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from imgpipe.cli import _escape_json, main, printable, table
from tests.conftest import jpeg_bytes

HOSTILE = "a\x1b[31mred\x1b]0;pwned\x07\x9b2J\u202eexe.jpg\r\x00"


def _controls(text: str) -> list[str]:
    return [c for c in text if not c.isprintable() and c not in "\n"]


def test_printable_shows_controls_as_escapes() -> None:
    shown = printable(HOSTILE)
    assert _controls(shown) == []
    assert shown == "a\\x1b[31mred\\x1b]0;pwned\\x07\\x9b2J\\u202eexe.jpg\\r\\x00"
    assert printable("ünï cødé +%.jpg") == "ünï cødé +%.jpg"  # unicode itself is fine


def test_tables_escape_every_cell() -> None:
    out = table([("key", "status"), (HOSTILE, "DONE")])
    assert _controls(out) == [] and "DONE" in out


def test_json_output_escapes_controls_yet_reads_back_the_same() -> None:
    text = _escape_json(json.dumps({"key": HOSTILE + "\U000e0001"}, ensure_ascii=False))
    assert _controls(text) == []
    assert json.loads(text) == {"key": HOSTILE + "\U000e0001"}


def test_a_file_name_with_escapes_is_printed_escaped(tmp_path: Path) -> None:
    photo = tmp_path / "x\x1b[2Jy.jpg"
    photo.write_bytes(jpeg_bytes())
    bad = tmp_path / "z\x1b]0;t\x07.jpg"
    bad.write_bytes(b"not an image")
    result = CliRunner().invoke(
        main, ["process", str(photo), str(bad), "--out", str(tmp_path / "out")]
    )
    assert "\x1b" not in result.output and "\x07" not in result.output
    assert "x\\x1b[2Jy.jpg" in result.output and "REJECTED" in result.output
