"""The results documents: the record's JSON and a CSV row per finding."""

from __future__ import annotations

import csv
import io
import json

from imgpipe.labels import Box, Face, Label, LabelResult, TextLine
from imgpipe.outcomes import Status
from imgpipe.record import ImageRecord
from imgpipe.results import results_keys, to_csv, to_json

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


def test_json_and_keys() -> None:
    doc = json.loads(to_json(RECORD))
    assert doc["labels"][0]["name"] == "Person" and doc["schema"] == 1
    assert results_keys("trip/a b.jpg") == ("results/trip/a b.jpg.json", "results/trip/a b.jpg.csv")
