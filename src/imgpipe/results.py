"""The per-image results documents in the derived bucket: results/<key>.json and .csv.

The JSON is the catalog record (metadata, thumbnails, labels). The CSV has one row per label,
text line, face and moderation label, the shape analysts open in a spreadsheet.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from typing import Any

CSV_COLUMNS = ("key", "kind", "name", "confidence", "left", "top", "width", "height")


def results_keys(source_key: str) -> tuple[str, str]:
    return f"results/{source_key}.json", f"results/{source_key}.csv"


def to_json(record: Mapping[str, Any]) -> bytes:
    return json.dumps(record, ensure_ascii=False, default=str, indent=1).encode()


def _box(box: Mapping[str, Any] | None) -> list[Any]:
    if not box:
        return ["", "", "", ""]
    return [round(float(box[k]), 4) for k in ("left", "top", "width", "height")]


def to_csv(record: Mapping[str, Any]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    key = record["key"]
    for label in record.get("labels", []):
        boxes = label.get("boxes") or [None]
        for box in boxes:
            writer.writerow([key, "label", label["name"], label["confidence"], *_box(box)])
    for line in record.get("text", []):
        writer.writerow([key, "text", line["text"], line["confidence"], *_box(line.get("box"))])
    for face in record.get("faces", []):
        writer.writerow([key, "face", "", face["confidence"], *_box(face["box"])])
    for mod in record.get("moderation", []):
        writer.writerow([key, "moderation", mod["name"], mod["confidence"], *_box(None)])
    return out.getvalue().encode()
