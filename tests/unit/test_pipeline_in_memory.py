"""A ``Pipeline`` built directly, on in-memory doubles of its catalog, store and notifier
(``ports.py``): the decisions without moto, boto3 or a handler in between."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

import pytest

from imgpipe import config, derived
from imgpipe.catalog import supersedes
from imgpipe.errors import SourceChanged, SourceMissing
from imgpipe.events import S3ObjectEvent
from imgpipe.imaging.types import Limits, Thumbnail, check_size
from imgpipe.outcomes import Reason, Status
from imgpipe.pipeline import SKIPPED, Pipeline
from imgpipe.ports import LiveObject
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


def etag_of(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


@dataclass
class MemoryStore:
    """S3 as the pipeline sees it: ETags are the bytes' MD5, reads are ``IfMatch``."""

    objects: dict[tuple[str, str], bytes] = field(default_factory=dict)
    heads: int = 0  # live() calls: HEADs S3 would bill

    def live(self, bucket: str, key: str, version_id: str = "") -> LiveObject | None:
        self.heads += 1
        data = self.objects.get((bucket, key))
        return None if data is None else LiveObject(etag_of(data))

    def fetch(self, bucket: str, key: str, etag: str, limits: Limits) -> tuple[bytes, str]:
        if (bucket, key) not in self.objects:
            raise SourceMissing(f"{key} is gone")
        data = self.objects[(bucket, key)]
        if etag and etag != etag_of(data):
            raise SourceChanged(f"{key} was replaced")
        check_size(len(data), limits)
        return data, etag_of(data)

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
    return S3ObjectEvent("ObjectCreated:Put", "up", key, len(data), etag_of(data), sequencer, "t")


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
    # the same delivery again changes nothing, announces nothing, and asks S3 nothing
    heads = store.heads
    assert pipeline.handle(event, receive_count=2).status == SKIPPED
    assert len(publisher.sent) == 1 and store.heads == heads


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


FORGED = "F" * 32  # the largest sequencer there is


def test_a_forged_removal_deletes_nothing_and_pins_nothing(
    parts: tuple[Pipeline, MemoryCatalog, MemoryStore, MemoryPublisher],
) -> None:
    """Anyone allowed to send to the queue can claim "cat.jpg was deleted" with a maximal
    sequencer. S3 still holds it: nothing is deleted, and the next real upload is DONE."""
    pipeline, catalog, store, _ = parts
    pipeline.handle(_upload(store, "cat.jpg", jpeg_bytes((800, 600)), "0A"))
    thumbs = {k for b, k in store.objects if b == "down"}
    forged = S3ObjectEvent("ObjectRemoved:Delete", "up", "cat.jpg", 0, "", FORGED, "t")
    assert pipeline.handle(forged).status == SKIPPED
    stored = catalog.get("up", "cat.jpg")
    assert stored is not None and stored.status is Status.DONE
    assert thumbs <= {k for b, k in store.objects if b == "down"}
    assert pipeline.handle(_upload(store, "cat.jpg", jpeg_bytes((640, 480)), "0B")).status is (
        Status.DONE
    )


@pytest.mark.parametrize("first", ["removal", "upload"])
def test_a_record_from_a_maximal_sequencer_gives_way_to_the_next_real_upload(
    parts: tuple[Pipeline, MemoryCatalog, MemoryStore, MemoryPublisher], first: str
) -> None:
    """A forged removal of a key that is not there, or a forged creation of what is there,
    each written with the largest sequencer: a later real upload still wins, because S3's
    state, not the sequencer, says which object is current."""
    pipeline, catalog, store, _ = parts
    if first == "removal":
        forged = S3ObjectEvent("ObjectRemoved:Delete", "up", "dog.jpg", 0, "", FORGED, "t")
        assert pipeline.handle(forged).status is Status.DELETED
    else:
        real = _upload(store, "dog.jpg", jpeg_bytes((800, 600)), "0A")
        assert pipeline.handle(replace(real, sequencer=FORGED)).status is Status.DONE
    for n, sequencer in enumerate(["0B", "0C"]):
        upload = _upload(store, "dog.jpg", jpeg_bytes((500 + n, 400)), sequencer)
        assert pipeline.handle(upload).status is Status.DONE  # first delivery
        stored = catalog.get("up", "dog.jpg")
        assert stored is not None and stored.etag == upload.etag
    # an old event of a replaced object still loses
    old = _upload(store, "dog.jpg", jpeg_bytes((300, 200)), "0A")
    store.objects[("up", "dog.jpg")] = jpeg_bytes((501, 400))
    assert pipeline.handle(old, receive_count=2).status == SKIPPED


def test_events_for_another_bucket_are_not_acted_on(
    parts: tuple[Pipeline, MemoryCatalog, MemoryStore, MemoryPublisher],
) -> None:
    pipeline, catalog, store, publisher = parts
    store.objects[("elsewhere", "x.jpg")] = jpeg_bytes()
    foreign = S3ObjectEvent(
        "ObjectCreated:Put", "elsewhere", "x.jpg", 1, etag_of(jpeg_bytes()), "0A", "t"
    )
    assert pipeline.handle(foreign).status == SKIPPED
    removal = S3ObjectEvent("ObjectRemoved:Delete", "elsewhere", "x.jpg", 0, "", "0B", "t")
    assert pipeline.handle(removal).status == SKIPPED
    assert not catalog.items and not publisher.sent
