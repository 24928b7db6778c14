"""A ``Pipeline`` built directly, on in-memory doubles of its catalog, store and notifier
(``ports.py``): the decisions without moto, boto3 or a handler in between."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import pytest

from imgpipe import config, derived, outputs
from imgpipe.errors import NotificationPending
from imgpipe.events import S3ObjectEvent
from imgpipe.outcomes import Reason, Status
from imgpipe.outputs import MARK_BACKOFF
from imgpipe.pipeline import SKIPPED, Pipeline
from imgpipe.record import ImageRecord
from tests.conftest import jpeg_bytes
from tests.harness.memory_ports import MemoryCatalog, MemoryPublisher, MemoryStore, etag_of

ENV = {"UPLOADS_BUCKET": "up", "DERIVED_BUCKET": "down", "TABLE_NAME": "t", "TOPIC_ARN": "arn"}


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


def test_a_forged_maximal_creation_cannot_stop_a_real_deletion(
    parts: tuple[Pipeline, MemoryCatalog, MemoryStore, MemoryPublisher],
) -> None:
    """A creation planted with the largest sequencer and the real ETag (through the DLQ and a
    redrive, say) is processed like any: its record claims to outrank every real event. GIVEN
    it, WHEN the user deletes the photo, THEN S3's word wins: DELETED, no thumbnail left, and
    one notice of it; a second delivery of the removal changes nothing."""
    pipeline, catalog, store, publisher = parts
    data = jpeg_bytes((800, 600))
    assert pipeline.handle(_upload(store, "pin.jpg", data, "0A")).status is Status.DONE
    planted = S3ObjectEvent(
        "ObjectCreated:Put", "up", "pin.jpg", len(data), etag_of(data), FORGED, "t"
    )
    assert pipeline.handle(planted, receive_count=2).status is Status.DONE  # stale: S3 holds it
    pinned = catalog.get("up", "pin.jpg")
    assert pinned is not None and pinned.version == "s:" + FORGED
    # the user deletes the photo: S3 says so, and its event arrives
    del store.objects[("up", "pin.jpg")]
    removal = S3ObjectEvent("ObjectRemoved:Delete", "up", "pin.jpg", 0, "", "0B", "t")
    assert pipeline.handle(removal).status is Status.DELETED
    record = catalog.get("up", "pin.jpg")
    assert record is not None and record.status is Status.DELETED
    assert [k for b, k in store.objects if b == "down"] == []
    assert pipeline.handle(removal, receive_count=2).status == SKIPPED
    assert [r.status for r in publisher.sent].count(Status.DELETED) == 1
    # and the forged creation delivered again renders nothing: its bytes are gone
    assert pipeline.handle(planted, receive_count=2).status == SKIPPED
    assert [k for b, k in store.objects if b == "down"] == []


@dataclass
class ThrottledCatalog(MemoryCatalog):
    """Its first ``throttled`` marks of a record as notified fail (the table shedding load)."""

    throttled: int = 0

    def mark_notified(self, record: ImageRecord) -> bool:
        if self.throttled > 0:
            self.throttled -= 1
            raise RuntimeError("ProvisionedThroughputExceededException")
        return super().mark_notified(record)


def _throttled(throttled: int) -> tuple[Pipeline, ThrottledCatalog, MemoryStore, MemoryPublisher]:
    catalog, store, publisher = (
        ThrottledCatalog(throttled=throttled),
        MemoryStore(),
        MemoryPublisher(),
    )
    pipeline = Pipeline(config.load(ENV), store, catalog, publisher)
    pipeline.outputs.sleep = lambda seconds: None
    return pipeline, catalog, store, publisher


def test_a_throttled_mark_is_tried_again_so_the_outcome_goes_out_once() -> None:
    """GIVEN the table refusing the first four marks, THEN the fifth lands: one announcement,
    and a redelivery of the message announces nothing more."""
    pipeline, catalog, store, publisher = _throttled(len(MARK_BACKOFF))
    event = _upload(store, "t.jpg", jpeg_bytes((640, 480)), "0A")
    assert pipeline.handle(event).status is Status.DONE
    record = catalog.get("up", "t.jpg")
    assert record is not None and record.notified and catalog.throttled == 0
    assert pipeline.handle(event, receive_count=2).status == SKIPPED
    assert len(publisher.sent) == 1


def test_a_mark_that_never_lands_is_given_up_and_the_outcome_sent_again_later(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """GIVEN every mark refused, THEN the message is still acknowledged (the image is DONE and
    announced); a redelivery while the writer may still run is retried, not announced, and
    one after the function's timeout announces it again and marks it (at least once)."""
    pipeline, catalog, store, publisher = _throttled(1 + len(MARK_BACKOFF))
    event = _upload(store, "t.jpg", jpeg_bytes((640, 480)), "0A")
    assert pipeline.handle(event).status is Status.DONE
    record = catalog.get("up", "t.jpg")
    assert record is not None and not record.notified and len(publisher.sent) == 1
    with pytest.raises(NotificationPending):
        pipeline.handle(event, receive_count=2)
    assert len(publisher.sent) == 1
    later = datetime.now(UTC) + timedelta(seconds=config.DEFAULT_TIMEOUT + 2)
    monkeypatch.setattr(outputs, "now_utc", lambda: later)
    assert pipeline.handle(event, receive_count=3).status == SKIPPED  # finished, not redone
    record = catalog.get("up", "t.jpg")
    assert record is not None and record.notified and len(publisher.sent) == 2
