from __future__ import annotations

import csv
import io
import json

import pytest

from imgpipe.config import ConfigError, load
from imgpipe.results import results_keys, to_csv, to_json

RECORD = {
    "key": "trip/a b.jpg",
    "labels": [
        {
            "name": "Person",
            "confidence": 97.1,
            "boxes": [{"left": 0.1, "top": 0.2, "width": 0.3, "height": 0.4}],
        },
        {"name": "Text", "confidence": 99.0, "boxes": []},
    ],
    "text": [{"text": "OPEN, 24h", "confidence": 99.0, "box": None}],
    "faces": [{"box": {"left": 0.5, "top": 0.1, "width": 0.1, "height": 0.1}, "confidence": 90.0}],
    "moderation": [],
}


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
    assert json.loads(to_json(RECORD))["labels"][0]["name"] == "Person"
    assert results_keys("trip/a b.jpg") == ("results/trip/a b.jpg.json", "results/trip/a b.jpg.csv")


BASE = {"UPLOADS_BUCKET": "u", "DERIVED_BUCKET": "d", "TABLE_NAME": "t"}


def test_label_settings_from_env() -> None:
    cfg = load({**BASE, "LABELER": "local", "MIN_CONFIDENCE": "60", "DETECTORS": "faces,text"})
    assert (cfg.labels.backend, cfg.labels.min_confidence) == ("local", 60.0)
    assert cfg.labels.detectors == {"faces", "text"}
    assert load(BASE).labels.backend == "none"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"LABELER": "openai"}, "LABELER must be one of"),
        ({"DETECTORS": "faces,celebrities"}, "unknown celebrities"),
        ({"MIN_CONFIDENCE": "101"}, "at most 100"),
    ],
)
def test_bad_label_settings(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load({**BASE, **env})
