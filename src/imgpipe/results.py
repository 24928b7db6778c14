"""The per-image results documents in the derived bucket (keys: see derived.py).

The JSON is the record's published document (metadata, thumbnails, labels). The CSV has one row
per label, text line, face and moderation label, the shape analysts open in a spreadsheet.
"""

from __future__ import annotations

import csv
import io
import json

from .labels import Box
from .record import ImageRecord, to_document

CSV_COLUMNS = ("key", "kind", "name", "confidence", "left", "top", "width", "height")


# A spreadsheet reads a cell starting with one of these as a formula (OWASP "CSV injection").
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def cell(value: str) -> str:
    """``value`` as a CSV cell no spreadsheet evaluates: formula starts get a leading quote."""
    return "'" + value if value.startswith(_FORMULA_START) else value


def to_json(record: ImageRecord) -> bytes:
    return json.dumps(to_document(record), ensure_ascii=False, indent=1).encode()


def _box(box: Box | None) -> list[float | str]:
    if box is None:
        return ["", "", "", ""]
    return [round(v, 4) for v in (box.left, box.top, box.width, box.height)]


def to_csv(record: ImageRecord) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    found = record.findings
    if found is not None:
        key = cell(record.key)
        for label in found.labels:
            for box in label.boxes or (None,):
                writer.writerow([key, "label", cell(label.name), label.confidence, *_box(box)])
        for line in found.text:
            writer.writerow([key, "text", cell(line.text), line.confidence, *_box(line.box)])
        for face in found.faces:
            writer.writerow([key, "face", "", face.confidence, *_box(face.box)])
        for mod in found.moderation:
            writer.writerow([key, "moderation", cell(mod.name), mod.confidence, *_box(None)])
    return out.getvalue().encode()
