"""A ``Pipeline`` built directly, on in-memory doubles of its catalog, store and notifier
(``ports.py``): the decisions without moto, boto3 or a handler in between."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace

import pytest

from imgpipe import config, derived
from imgpipe.catalog import supersedes
from imgpipe.errors import SourceMissing
from imgpipe.events import S3ObjectEvent
from imgpipe.imaging.types import Limits, Thumbnail, check_size
from imgpipe.outcomes import Reason, Status
from imgpipe.pipeline import SKIPPED, Pipeline
from imgpipe.record import ImageRecord
from tests.conftest import jpeg_bytes

ENV = {"UPLOADS_BUCKET": "up", "DERIVED_BUCKET": "down", "TABLE_NAME": "t", "TOPIC_ARN": "arn"}


@dataclass
class MemoryCatalog:
    items: dict[tuple[str, str], ImageRecord] = field(default_factory=dict)

    def get(self, bucket: str, key: str) -> ImageRecord | None:
        return self.items.get((bucket, key))

    def replace(
        self, record: ImageRecord, expected: ImageRecord | None, *, newer: bool = True
    ) -> bool:
        stored = self.items.get((record.bucket, record.key))
        if (stored is None) != (expected is None):
            return False
        if stored is not None and expected is not None:
            if stored.revision != expected.revision:
                return False
            if newer and not supersedes(stored, record.version):
                return False
        self.items[(record.bucket, record.key)] = record
        return True

    def _update(self, record: ImageRecord, **changes: object) -> bool:
        stored = self.items.get((record.bucket, record.key))
        if stored is None or stored.revision != record.revision:
            return False
        self.items[(record.bucket, record.key)] = replace(stored, **changes)  # type: ignore[arg-type]
        return True

    def mark_notified(self, record: ImageRecord) -> bool:
        return self._update(record, notified=True)

    def clear_cleanup(self, record: ImageRecord) -> bool:
        return self._update(record, cleanup=())


@dataclass
class MemoryStore:
    objects: dict[tuple[str, str], bytes] = field(default_factory=dict)

    def fetch(self, bucket: str, key: str, etag: str, limits: Limits) -> tuple[bytes, str]:
        if (bucket, key) not in self.objects:
            raise SourceMissing(f"{key} is gone")
        data = self.objects[(bucket, key)]
        check_size(len(data), limits)
        return data, etag

    def put_thumbnail(self, bucket: str, key: str, thumb: Thumbnail) -> None:
        self.objects[(bucket, key)] = thumb.data

    def put_document(self, bucket: str, key: str, body: bytes, content_type: str) -> None:
        self.objects[(bucket, key)] = body

    def delete(self, bucket: str, keys: Iterable[str]) -> int:
        gone = [k for k in set(keys) if self.objects.pop((bucket, k), None) is not None]
        return len(gone)


@dataclass
class MemoryPublisher:
    sent: list[ImageRecord] = field(default_factory=list)

    def publish(self, record: ImageRecord) -> None:
        self.sent.append(record)


@pytest.fixture
def parts() -> tuple[Pipeline, MemoryCatalog, MemoryStore, MemoryPublisher]:
    catalog, store, publisher = MemoryCatalog(), MemoryStore(), MemoryPublisher()
    return Pipeline(config.load(ENV), store, catalog, publisher), catalog, store, publisher


def _upload(store: MemoryStore, key: str, data: bytes, sequencer: str) -> S3ObjectEvent:
    store.objects[("up", key)] = data
    return S3ObjectEvent("ObjectCreated:Put", "up", key, len(data), "e1", sequencer, "t")


def test_a_photo_becomes_done_with_thumbnails_and_one_notification(
    parts: tuple[Pipeline, MemoryCatalog, MemoryStore, MemoryPublisher],
) -> None:
    pipeline, catalog, store, publisher = parts
    event = _upload(store, "a b+c.jpg", jpeg_bytes((1600, 1200)), "0A")
    assert pipeline.handle(event).status is Status.DONE
    record = catalog.get("up", "a b+c.jpg")
    assert record is not None and record.status is Status.DONE and record.notified
    token = derived.token(record.version)
    assert sorted(k for b, k in store.objects if b == "down") == [
        f"thumbnails/a b+c.jpg/{token}/{size}.jpg" for size in ("large", "medium", "small")
    ]
    assert [r.status for r in publisher.sent] == [Status.DONE]
    # the same delivery again changes nothing and announces nothing
    assert pipeline.handle(event, receive_count=2).status == SKIPPED
    assert len(publisher.sent) == 1


def test_a_corrupt_file_is_rejected_and_an_older_event_never_wins(
    parts: tuple[Pipeline, MemoryCatalog, MemoryStore, MemoryPublisher],
) -> None:
    pipeline, catalog, store, publisher = parts
    newer = _upload(store, "k.jpg", b"\xff\xd8\xff" + b"\0" * 64, "0B")
    outcome = pipeline.handle(newer)
    assert (outcome.status, outcome.reason) == (Status.REJECTED, Reason.CORRUPT)
    older = S3ObjectEvent("ObjectCreated:Put", "up", "k.jpg", 10, "e0", "0A", "t")
    assert pipeline.handle(older, receive_count=2).status == SKIPPED
    stored = catalog.get("up", "k.jpg")
    assert stored is not None and stored.status is Status.REJECTED
    assert [r.status for r in publisher.sent] == [Status.REJECTED]


def test_a_delete_removes_what_the_upload_made(
    parts: tuple[Pipeline, MemoryCatalog, MemoryStore, MemoryPublisher],
) -> None:
    pipeline, _, store, publisher = parts
    pipeline.handle(_upload(store, "k.jpg", jpeg_bytes(), "0A"))
    del store.objects[("up", "k.jpg")]
    removed = S3ObjectEvent("ObjectRemoved:Delete", "up", "k.jpg", 0, "", "0B", "t")
    assert pipeline.handle(removed).status is Status.DELETED
    assert not [k for b, k in store.objects if b == "down"]
    assert [r.status for r in publisher.sent] == [Status.DONE, Status.DELETED]
