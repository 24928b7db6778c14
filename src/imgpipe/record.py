"""The status record: one typed value per source object, and the JSON document it publishes.

Every module takes and returns ``ImageRecord``; only this module knows the document's shape.
The document is what API clients, SNS subscribers and the results files receive, and (with the
internal ``notified`` mark) what the catalog stores. Its shape is versioned by ``schema``:
bump ``SCHEMA`` when a field changes meaning or goes away (adding one is compatible), and say so
in the README's record section. ``tests/unit/test_record.py`` pins it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from .codec import Json, JsonObject, structure, unstructure
from .events import S3ObjectEvent
from .imaging import ImageInfo
from .labels import LabelResult
from .outcomes import REASON_TEXT, Reason, Status

SCHEMA = 2  # 2: results keys added; the API answers the public shape (to_public)

_IMAGE_FIELDS = tuple(f.name for f in dataclasses.fields(ImageInfo))
_FINDINGS = ("labels", "text", "faces", "moderation")
_LABELER = ("backend", "ms", "source", "errors")


@dataclass(frozen=True, slots=True)
class ThumbnailRef:
    name: str
    key: str  # in the derived bucket
    width: int
    height: int
    bytes: int
    content_type: str


@dataclass(frozen=True, slots=True)
class ImageRecord:
    bucket: str
    key: str
    version: str  # see S3ObjectEvent.version: every write is conditional on it
    status: Status
    event_name: str = ""
    etag: str = ""
    size: int = 0
    sequencer: str = ""
    event_time: str = ""
    version_id: str = ""  # the S3 object version, in a versioned bucket
    attempts: int = 1
    reason: Reason | None = None
    detail: str = ""
    updated_at: str = ""
    notified: bool = False  # internal: the outcome was published
    image: ImageInfo | None = None  # DONE: what the image is
    thumbnails: tuple[ThumbnailRef, ...] = ()
    results: tuple[str, ...] = ()  # DONE: keys of the results documents (see derived.py)
    findings: LabelResult | None = None  # DONE: labels, text, faces, moderation
    ms: float | None = None
    thumbnail_ms: float | None = None
    # internal: derived keys that earlier versions owned and that are not yet deleted
    cleanup: tuple[str, ...] = ()
    revision: int = 0  # internal: bumped by every write that replaces the record
    # DONE/REJECTED: the fingerprint of the settings that made it (config.fingerprint)
    settings: str = ""

    @classmethod
    def of(cls, event: S3ObjectEvent, status: Status, attempts: int) -> ImageRecord:
        """A record of ``event``'s version; ``dataclasses.replace`` adds the outcome's fields."""
        return cls(
            bucket=event.bucket,
            key=event.key,
            version=event.version,
            status=status,
            event_name=event.event_name,
            etag=event.etag,
            size=event.size,
            sequencer=event.sequencer,
            event_time=event.event_time,
            version_id=event.version_id,
            attempts=attempts,
            updated_at=now(),
        )

    @property
    def thumbnail_keys(self) -> frozenset[str]:
        return frozenset(t.key for t in self.thumbnails)


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def to_document(record: ImageRecord, *, internal: bool = False) -> JsonObject:
    """The published JSON shape (``internal``: plus the catalog's bookkeeping)."""
    doc: JsonObject = {"schema": SCHEMA}
    for name in (
        "bucket",
        "key",
        "version",
        "status",
        "reason",
        "detail",
        "event_name",
        "etag",
        "size",
        "sequencer",
        "event_time",
        "version_id",
        "attempts",
        "updated_at",
        "settings",
    ):
        value = getattr(record, name)
        if value is not None and value != "":
            doc[name] = unstructure(value)
    _add_image(doc, record)
    doc["thumbnails"] = [
        {**_as_object(unstructure(t)), "format": FORMAT_OF.get(t.content_type, t.content_type)}
        for t in record.thumbnails
    ]
    doc["pictures"] = pictures(record.thumbnails)
    if record.results:
        doc["results"] = list(record.results)
    _add_findings(doc, record, _LABELER)
    for name in ("ms", "thumbnail_ms"):
        value = getattr(record, name)
        if value is not None:
            doc[name] = value
    if internal:
        doc.update(_bookkeeping(record))
    return doc


# The public document (the status API's answer): what a caller of the API may see. No bucket
# name (it holds the account id), no sequencer or version (internal ordering), no raw error
# detail (a fixed message per reason instead), no derived-bucket keys, no labeler errors.
PUBLIC_FIELDS = ("key", "status", "reason", "etag", "size", "event_time", "updated_at", "attempts")


def to_public(record: ImageRecord) -> JsonObject:
    """The documented public shape (README "The record"); the API adds thumbnail URLs."""
    doc: JsonObject = {"schema": SCHEMA}
    for name in PUBLIC_FIELDS:
        value = getattr(record, name)
        if value is not None and value != "":
            doc[name] = unstructure(value)
    if record.reason is not None:
        doc["message"] = REASON_TEXT[record.reason]
    _add_image(doc, record)
    doc["thumbnails"] = [
        {
            "name": t.name,
            "width": t.width,
            "height": t.height,
            "bytes": t.bytes,
            "content_type": t.content_type,
            "format": FORMAT_OF.get(t.content_type, t.content_type),
        }
        for t in record.thumbnails
    ]
    doc["pictures"] = pictures(record.thumbnails)
    _add_findings(doc, record, ("backend",))
    return doc


FORMAT_OF = {"image/jpeg": "jpeg", "image/png": "png", "image/webp": "webp", "image/avif": "avif"}
# A <picture> lists the most compact format first; the browser takes the first it can show,
# and the last one (JPEG or PNG, where the size has one) is the <img> every browser shows.
_PREFERENCE = {"image/avif": 0, "image/webp": 1, "image/png": 2, "image/jpeg": 3}


def pictures(thumbnails: tuple[ThumbnailRef, ...]) -> list[Json]:
    """The thumbnails grouped by size, for a page's ``<picture>``: each size's width and
    height, and its ``sources`` (type, bytes, and which of ``thumbnails`` it is), most compact
    format first. Smallest size first, so ``srcset`` widths read in order."""
    groups: dict[str, list[int]] = {}
    for index, thumb in enumerate(thumbnails):
        groups.setdefault(thumb.name, []).append(index)
    out: list[Json] = []
    for name, indexes in sorted(
        groups.items(), key=lambda g: thumbnails[g[1][0]].width * thumbnails[g[1][0]].height
    ):
        ordered = sorted(indexes, key=lambda i: _PREFERENCE.get(thumbnails[i].content_type, 9))
        first = thumbnails[ordered[0]]
        sources: list[Json] = [
            {
                "type": thumbnails[i].content_type,
                "bytes": thumbnails[i].bytes,
                "thumbnail": i,
            }
            for i in ordered
        ]
        out.append({"name": name, "width": first.width, "height": first.height, "sources": sources})
    return out


def _add_image(doc: JsonObject, record: ImageRecord) -> None:
    """The image's fields, flat in the document."""
    if record.image is not None:
        image = unstructure(record.image)
        assert isinstance(image, dict)
        doc.update(image)


def _add_findings(doc: JsonObject, record: ImageRecord, labeler: tuple[str, ...]) -> None:
    """labels, text, faces, moderation, and ``labeler`` with the named fields of the result."""
    if record.findings is not None:
        findings = unstructure(record.findings)
        assert isinstance(findings, dict)
        for name in _FINDINGS:
            doc[name] = findings.get(name, [])
        doc["labeler"] = {k: findings[k] for k in labeler if k in findings}


def _bookkeeping(record: ImageRecord) -> JsonObject:
    """What only the catalog stores: never published."""
    doc: JsonObject = {"notified": record.notified}
    if record.revision:  # 0: never written by a revision-aware release (no attribute at all)
        doc["revision"] = record.revision
    if record.cleanup:
        doc["cleanup"] = list(record.cleanup)
    return doc


def _as_object(value: Json) -> JsonObject:
    assert isinstance(value, dict)
    return value


def from_document(doc: Mapping[str, Json]) -> ImageRecord:
    """Read a document back (a catalog item, a notification); DecodeError if malformed."""
    flat = {k: v for k, v in doc.items() if k not in _IMAGE_FIELDS and k not in _FINDINGS}
    flat.pop("labeler", None)
    flat.pop("pictures", None)  # derived from the thumbnails
    if "format" in doc:
        flat["image"] = {k: doc[k] for k in _IMAGE_FIELDS if k in doc}
    if "labeler" in doc:
        labeler = doc["labeler"]
        findings: JsonObject = dict(labeler) if isinstance(labeler, dict) else {}
        findings.update({k: doc[k] for k in _FINDINGS if k in doc})
        flat["findings"] = findings
    return structure(ImageRecord, flat)
