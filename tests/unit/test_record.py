"""The record's published JSON shapes (schema 2: full and public), pinned, and round trips."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from imgpipe.catalog import from_item, to_item
from imgpipe.codec import DecodeError, structure
from imgpipe.events import parse_body
from imgpipe.imaging import ImageInfo
from imgpipe.labels import Box, Face, Label, LabelResult, ModerationLabel, TextLine
from imgpipe.outcomes import REASON_TEXT, Reason, Status
from imgpipe.record import (
    SCHEMA,
    ImageRecord,
    ThumbnailRef,
    from_document,
    to_document,
    to_public,
)
from tests.conftest import Events


@pytest.fixture
def done(events: Events) -> ImageRecord:
    [event] = parse_body(events.s3_body("trip/a b.jpg", etag="e1", sequencer="0A", size=2048))
    base = ImageRecord.of(event, Status.DONE, 2)
    return replace(
        base,
        updated_at="2026-11-25T12:00:01.000+00:00",
        image=ImageInfo(
            format="JPEG",
            width=1800,
            height=1200,
            mode="RGB",
            bits=8,
            has_alpha=False,
            animated=False,
            frames=1,
            icc=False,
            orientation=6,
            exif={"make": "Canon", "iso": 100, "gps": {"lat": 1.5, "lon": -2.25}},
            phash="0123456789abcdef",
            colour="#102030",
        ),
        thumbnails=(
            ThumbnailRef(
                "small", "thumbnails/trip/a b.jpg/e1/small.jpg", 128, 85, 4000, "image/jpeg"
            ),
        ),
        findings=LabelResult(
            backend="local",
            ms=12.5,
            labels=(Label("Person", 97.5, (Box(0.1, 0.2, 0.3, 0.4),)),),
            text=(TextLine("OPEN", 99.0, None),),
            faces=(Face(Box(0.5, 0.1, 0.1, 0.1), 90.0),),
            moderation=(ModerationLabel("Explicit Nudity", 80.0),),
            source="thumbnail",
            errors={"faces": "ImageTooLargeException"},
        ),
        ms=45.0,
        thumbnail_ms=30.5,
    )


def test_document_shape_of_a_done_record_is_pinned(done: ImageRecord) -> None:
    doc = to_document(done)
    assert doc == {
        "schema": 2,
        "bucket": "uploads",
        "key": "trip/a b.jpg",
        "version": "s:0A" + "0" * 30,
        "status": "DONE",
        "event_name": "ObjectCreated:Put",
        "etag": "e1",
        "size": 2048,
        "sequencer": "0A",
        "event_time": "2026-11-25T12:00:00.000Z",
        "attempts": 2,
        "updated_at": "2026-11-25T12:00:01.000+00:00",
        "format": "JPEG",
        "width": 1800,
        "height": 1200,
        "mode": "RGB",
        "bits": 8,
        "has_alpha": False,
        "animated": False,
        "frames": 1,
        "icc": False,
        "orientation": 6,
        "exif": {"make": "Canon", "iso": 100, "gps": {"lat": 1.5, "lon": -2.25}},
        "phash": "0123456789abcdef",
        "colour": "#102030",
        "thumbnails": [
            {
                "name": "small",
                "key": "thumbnails/trip/a b.jpg/e1/small.jpg",
                "width": 128,
                "height": 85,
                "bytes": 4000,
                "content_type": "image/jpeg",
                "format": "jpeg",
            }
        ],
        "pictures": [
            {
                "name": "small",
                "width": 128,
                "height": 85,
                "sources": [{"type": "image/jpeg", "bytes": 4000, "thumbnail": 0}],
            }
        ],
        "labels": [
            {
                "name": "Person",
                "confidence": 97.5,
                "boxes": [{"left": 0.1, "top": 0.2, "width": 0.3, "height": 0.4}],
                "parents": [],
            }
        ],
        "text": [{"text": "OPEN", "confidence": 99.0}],
        "faces": [
            {"box": {"left": 0.5, "top": 0.1, "width": 0.1, "height": 0.1}, "confidence": 90.0}
        ],
        "moderation": [{"name": "Explicit Nudity", "confidence": 80.0}],
        "labeler": {
            "backend": "local",
            "ms": 12.5,
            "source": "thumbnail",
            "errors": {"faces": "ImageTooLargeException"},
        },
        "ms": 45.0,
        "thumbnail_ms": 30.5,
    }
    assert SCHEMA == 2
    assert "notified" not in doc and "revision" not in doc  # bookkeeping stays in the catalog


def test_public_shape_is_pinned_and_exposes_nothing_internal(done: ImageRecord) -> None:
    """What the status API answers: no bucket (it holds the account id), no version or
    sequencer, no raw error detail, no derived keys, no labeler errors."""
    failed = replace(
        done,
        status=Status.FAILED,
        reason=Reason.TRANSIENT,
        detail="PutObject: AccessDenied: arn:aws:iam::123456789012:role/imgpipe-dev-process",
        results=("results/trip/a b.jpg/0123456789abcdef.json",),
    )
    doc = to_public(failed)
    assert doc == {
        "schema": 2,
        "key": "trip/a b.jpg",
        "status": "FAILED",
        "reason": "transient",
        "message": "processing failed repeatedly; an operator has been alerted",
        "etag": "e1",
        "size": 2048,
        "event_time": "2026-11-25T12:00:00.000Z",
        "updated_at": "2026-11-25T12:00:01.000+00:00",
        "attempts": 2,
        "format": "JPEG",
        "width": 1800,
        "height": 1200,
        "mode": "RGB",
        "bits": 8,
        "has_alpha": False,
        "animated": False,
        "frames": 1,
        "icc": False,
        "orientation": 6,
        "exif": {"make": "Canon", "iso": 100, "gps": {"lat": 1.5, "lon": -2.25}},
        "phash": "0123456789abcdef",
        "colour": "#102030",
        "thumbnails": [
            {
                "name": "small",
                "width": 128,
                "height": 85,
                "bytes": 4000,
                "content_type": "image/jpeg",
                "format": "jpeg",
            }
        ],
        "pictures": [
            {
                "name": "small",
                "width": 128,
                "height": 85,
                "sources": [{"type": "image/jpeg", "bytes": 4000, "thumbnail": 0}],
            }
        ],
        "labels": [
            {
                "name": "Person",
                "confidence": 97.5,
                "boxes": [{"left": 0.1, "top": 0.2, "width": 0.3, "height": 0.4}],
                "parents": [],
            }
        ],
        "text": [{"text": "OPEN", "confidence": 99.0}],
        "faces": [
            {"box": {"left": 0.5, "top": 0.1, "width": 0.1, "height": 0.1}, "confidence": 90.0}
        ],
        "moderation": [{"name": "Explicit Nudity", "confidence": 80.0}],
        "labeler": {"backend": "local"},
    }
    text = json.dumps(doc)
    for secret in ("uploads", "123456789012", "s:0A", "results/", "ImageTooLarge"):
        assert secret not in text


def test_every_reason_has_a_public_message() -> None:
    assert set(REASON_TEXT) == set(Reason)


def test_rejected_and_deleted_documents(done: ImageRecord) -> None:
    rejected = ImageRecord(
        "uploads", "x.jpg", "s:1", Status.REJECTED, reason=Reason.CORRUPT, detail="bad header"
    )
    assert to_document(rejected) == {
        "schema": 2,
        "bucket": "uploads",
        "key": "x.jpg",
        "version": "s:1",
        "status": "REJECTED",
        "reason": "corrupt",
        "detail": "bad header",
        "size": 0,
        "attempts": 1,
        "thumbnails": [],
        "pictures": [],
    }
    deleted = replace(done, status=Status.DELETED, image=None, thumbnails=(), findings=None)
    assert "width" not in to_document(deleted) and "labels" not in to_document(deleted)


def test_round_trips_through_json_and_dynamodb(done: ImageRecord) -> None:
    assert from_document(json.loads(json.dumps(to_document(done)))) == done
    notified = replace(done, notified=True)
    assert from_item(to_item(notified)) == notified
    rejected = ImageRecord("u", "k", "t:1", Status.REJECTED, reason=Reason.TOO_LARGE)
    assert from_item(to_item(rejected)) == rejected


def test_unknown_fields_are_ignored_and_bad_ones_refused(done: ImageRecord) -> None:
    doc = to_document(done)
    assert from_document({**doc, "added_in_schema_2": [1, 2]}) == done
    with pytest.raises(DecodeError, match="status"):
        from_document({**doc, "status": "LOST"})
    with pytest.raises(DecodeError, match="width"):
        from_document({**doc, "width": "wide"})
    with pytest.raises(DecodeError, match="has_alpha"):
        from_document({**doc, "has_alpha": 1})  # a number is not a flag
    with pytest.raises(DecodeError):
        structure(ThumbnailRef, {"name": "small"})  # required fields missing
