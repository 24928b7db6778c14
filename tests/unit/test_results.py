"""The results documents: the record's JSON and a CSV row per finding."""

from __future__ import annotations

import csv
import io
import json

from imgpipe.labels import Box, Face, Label, LabelResult, TextLine
from imgpipe.outcomes import Status
from imgpipe.record import ImageRecord
from imgpipe.results import to_csv, to_json

RECORD = ImageRecord(
    bucket="uploads",
    key="trip/a b.jpg",
    version="s:1",
    status=Status.DONE,
    findings=LabelResult(
        backend="local",
        ms=1.0,
        labels=(Label("Person", 97.1, (Box(0.1, 0.2, 0.3, 0.4),)), Label("Text", 99.0)),
        text=(TextLine("OPEN, 24h", 99.0),),
        faces=(Face(Box(0.5, 0.1, 0.1, 0.1), 90.0),),
    ),
)


def test_csv_has_a_row_per_finding() -> None:
    rows = list(csv.DictReader(io.StringIO(to_csv(RECORD).decode())))
    assert [(r["kind"], r["name"]) for r in rows] == [
        ("label", "Person"),
        ("label", "Text"),
        ("text", "OPEN, 24h"),  # the comma survives quoting
        ("face", ""),
    ]
    assert rows[0]["left"] == "0.1" and rows[1]["left"] == "" and rows[0]["key"] == "trip/a b.jpg"


def test_json_is_the_published_document() -> None:
    doc = json.loads(to_json(RECORD))
    assert doc["labels"][0]["name"] == "Person" and doc["schema"] == 2
    assert "revision" not in doc and "cleanup" not in doc and "notified" not in doc


def test_cells_a_spreadsheet_would_evaluate_are_escaped() -> None:
    """OWASP CSV injection: a cell starting with = + - @ (or a tab or CR) is a formula when the
    file is opened in a spreadsheet. Keys and OCR text come from users."""
    hostile = ImageRecord(
        bucket="uploads",
        key='=HYPERLINK("http://x","y").jpg',
        version="s:1",
        status=Status.DONE,
        findings=LabelResult(
            backend="local",
            ms=1.0,
            labels=(Label("@SUM(A1)", 90.0),),
            text=(
                TextLine("+1 555 0100", 99.0),
                TextLine("-2+3", 98.0),
                TextLine("\t=1", 97.0),
                TextLine("plain = fine", 96.0),
            ),
        ),
    )
    rows = list(csv.DictReader(io.StringIO(to_csv(hostile).decode())))
    names = [r["name"] for r in rows]
    assert names == ["'@SUM(A1)", "'+1 555 0100", "'-2+3", "'\t=1", "plain = fine"]
    assert {r["key"] for r in rows} == {'\'=HYPERLINK("http://x","y").jpg'}
    # numbers stay numbers (a box may start slightly left of the image: a negative left)
    assert all(not r["confidence"].startswith("'") for r in rows)
