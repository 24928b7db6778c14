"""Backfill messages in the pipeline: they never outrank a live event, an image already made
from the same bytes under the current settings is skipped on one catalog read, and a change of
settings re-renders under a version of its own."""

from __future__ import annotations

import json

import pytest

from imgpipe import config, derived
from imgpipe.events import BACKFILL, S3ObjectEvent, backfill_body, read_body
from imgpipe.outcomes import Status
from imgpipe.pipeline import SKIPPED, Pipeline, next_render
from tests.conftest import jpeg_bytes
from tests.harness.memory_ports import MemoryCatalog, MemoryPublisher, MemoryStore, etag_of

ENV = {"UPLOADS_BUCKET": "up", "DERIVED_BUCKET": "down", "TABLE_NAME": "t", "TOPIC_ARN": "arn"}
Parts = tuple[Pipeline, MemoryCatalog, MemoryStore, MemoryPublisher]


@pytest.fixture
def parts() -> Parts:
    catalog, store, publisher = MemoryCatalog(), MemoryStore(), MemoryPublisher()
    return Pipeline(config.load(ENV), store, catalog, publisher), catalog, store, publisher


def _put(store: MemoryStore, key: str, data: bytes) -> str:
    store.objects[("up", key)] = data
    return etag_of(data)


def _live(key: str, data: bytes, sequencer: str) -> S3ObjectEvent:
    return S3ObjectEvent("ObjectCreated:Put", "up", key, len(data), etag_of(data), sequencer, "t")


def _backfill(key: str, etag: str, modified: str = "2026-01-01T00:00:00+00:00") -> S3ObjectEvent:
    (event,) = read_body(backfill_body("up", key, etag, 10, modified)).events
    return event


def _thumbs(store: MemoryStore) -> set[str]:
    return {k for b, k in store.objects if b == "down"}


def test_a_backfill_message_reads_back_as_an_event_ordered_below_every_s3_event() -> None:
    event = _backfill("a b+%.jpg", "e1")
    assert (event.event_name, event.key, event.etag, event.bucket) == (
        BACKFILL,
        "a b+%.jpg",
        "e1",
        "up",
    )
    assert event.is_created and event.is_backfill
    assert event.version < _live("k", b"x", "0").version  # "b:" < "s:"
    assert event.version < S3ObjectEvent("ObjectCreated:Put", "up", "k", 1, "e", "", "t").version
    bad = read_body(json.dumps({"imgpipe": "backfill", "bucket": "up", "key": "k"}))
    assert not bad.events and bad.malformed == (
        "backfill message: a backfill message names no ETag",
    )


def test_rerender_versions_order_above_their_base_and_below_the_next_event() -> None:
    first = next_render("s:0A")
    second = next_render(first)
    assert "s:0A" < first < second < "s:0B"
    assert (first, second) == ("s:0A~r0001", "s:0A~r0002")
    assert (
        next_render("b:2026-01-01T00:00:00+00:00:e~r0009") == "b:2026-01-01T00:00:00+00:00:e~r0010"
    )


def test_an_image_without_a_record_is_made_once_whichever_of_backfill_and_live_comes_first(
    parts: Parts,
) -> None:
    pipeline, catalog, store, publisher = parts
    data = jpeg_bytes((800, 600))
    etag = _put(store, "old.jpg", data)
    assert pipeline.handle(_backfill("old.jpg", etag)).status is Status.DONE
    record = catalog.get("up", "old.jpg")
    assert record is not None and record.settings == pipeline.settings.fingerprint != ""
    thumbs = _thumbs(store)
    # again: one catalog read, no HEAD, no GET, no notification
    heads, fetches = store.heads, store.fetches
    assert pipeline.handle(_backfill("old.jpg", etag), receive_count=1).status == SKIPPED
    assert (store.heads, store.fetches) == (heads, fetches)
    # the upload's own S3 event, late (the object was listed while its event was queued)
    assert pipeline.handle(_live("old.jpg", data, "0A")).status == SKIPPED
    assert len(publisher.sent) == 1 and _thumbs(store) == thumbs


def test_a_backfill_of_an_image_a_live_event_made_is_skipped_without_touching_s3(
    parts: Parts,
) -> None:
    pipeline, _, store, publisher = parts
    data = jpeg_bytes((640, 480))
    etag = _put(store, "k.jpg", data)
    assert pipeline.handle(_live("k.jpg", data, "0A")).status is Status.DONE
    heads, fetches = store.heads, store.fetches
    assert pipeline.handle(_backfill("k.jpg", etag)).status == SKIPPED
    assert (store.heads, store.fetches, len(publisher.sent)) == (heads, fetches, 1)


def test_a_backfill_listed_before_an_overwrite_changes_nothing(parts: Parts) -> None:
    pipeline, catalog, store, publisher = parts
    old_etag = _put(store, "k.jpg", jpeg_bytes((640, 480)))
    new = jpeg_bytes((500, 400))
    _put(store, "k.jpg", new)
    assert pipeline.handle(_live("k.jpg", new, "0B")).status is Status.DONE
    before = catalog.get("up", "k.jpg")
    assert pipeline.handle(_backfill("k.jpg", old_etag)).status == SKIPPED
    assert catalog.get("up", "k.jpg") == before and len(publisher.sent) == 1


def test_a_backfill_of_an_object_deleted_since_it_was_listed_records_nothing(
    parts: Parts,
) -> None:
    pipeline, catalog, _, publisher = parts
    assert pipeline.handle(_backfill("gone.jpg", "e1")).status == SKIPPED
    assert not catalog.items and not publisher.sent


def test_a_backfill_repairs_a_record_whose_object_event_was_lost(parts: Parts) -> None:
    """The record is about an older object; S3 holds newer bytes whose event never came."""
    pipeline, catalog, store, _ = parts
    first = jpeg_bytes((640, 480))
    _put(store, "k.jpg", first)
    pipeline.handle(_live("k.jpg", first, "0A"))
    etag = _put(store, "k.jpg", jpeg_bytes((320, 240)))  # its event is lost
    assert pipeline.handle(_backfill("k.jpg", etag)).status is Status.DONE
    stored = catalog.get("up", "k.jpg")
    assert stored is not None and stored.etag == etag


def test_changed_settings_re_render_under_a_new_version_once(parts: Parts) -> None:
    pipeline, catalog, store, publisher = parts
    data = jpeg_bytes((1600, 1200))
    etag = _put(store, "k.jpg", data)
    pipeline.handle(_live("k.jpg", data, "0A"))
    old_thumbs = _thumbs(store)
    wider = config.load(ENV | {"THUMBNAIL_SIZES": "small=64,card=320x180:cover:webp,jpeg"})
    assert wider.fingerprint != pipeline.settings.fingerprint
    renderer = Pipeline(wider, store, catalog, publisher)
    # a live duplicate under new settings is still only a duplicate
    assert renderer.handle(_live("k.jpg", data, "0A"), receive_count=2).status == SKIPPED
    assert renderer.handle(_backfill("k.jpg", etag)).status is Status.DONE
    record = catalog.get("up", "k.jpg")
    assert record is not None and record.version == next_render(_live("k", b"", "0A").version)
    assert record.settings == wider.fingerprint
    assert {t.name for t in record.thumbnails} == {"small", "card"}
    assert _thumbs(store) == set(derived.owned(record)), "the old version's thumbnails are gone"
    assert not old_thumbs & _thumbs(store), "new thumbnails have keys of their own"
    assert renderer.handle(_backfill("k.jpg", etag)).status == SKIPPED
    assert [r.status for r in publisher.sent] == [Status.DONE, Status.DONE]
    # the next real upload outranks the re-render
    newer = jpeg_bytes((900, 600))
    _put(store, "k.jpg", newer)
    assert renderer.handle(_live("k.jpg", newer, "0B")).status is Status.DONE


def test_a_failed_record_of_the_same_bytes_is_processed_by_a_backfill(
    parts: Parts, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline, catalog, store, _ = parts
    data = jpeg_bytes((640, 480))
    etag = _put(store, "k.jpg", data)
    with monkeypatch.context() as patch:
        patch.setattr(store, "fetch", _throttled)
        with pytest.raises(TimeoutError):
            pipeline.handle(_live("k.jpg", data, "0A"), receive_count=3)  # the last receive
    failed = catalog.get("up", "k.jpg")
    assert failed is not None and failed.status is Status.FAILED
    assert pipeline.handle(_backfill("k.jpg", etag)).status is Status.DONE


def _throttled(*_: object) -> tuple[bytes, str]:
    raise TimeoutError("S3 timed out")


@pytest.mark.parametrize("same_bytes", [True, False])
def test_a_backfill_brings_back_an_object_uploaded_again_after_its_delete_whose_event_was_lost(
    parts: Parts, same_bytes: bool
) -> None:
    """What reconcile finds as unprocessed ("record says DELETED, the object exists") and
    re-queues as a backfill message: the DELETED record outranks it by sequencer, but S3
    holds an object that record is not about, so S3's state decides."""
    pipeline, catalog, store, _ = parts
    data = jpeg_bytes((640, 480))
    _put(store, "k.jpg", data)
    pipeline.handle(_live("k.jpg", data, "0A"))
    del store.objects[("up", "k.jpg")]
    removed = S3ObjectEvent("ObjectRemoved:Delete", "up", "k.jpg", 0, "", "0B", "t")
    assert pipeline.handle(removed).status is Status.DELETED
    again = data if same_bytes else jpeg_bytes((320, 240))
    etag = _put(store, "k.jpg", again)  # its event is lost
    assert pipeline.handle(_backfill("k.jpg", etag)).status is Status.DONE
    stored = catalog.get("up", "k.jpg")
    assert stored is not None and (stored.status, stored.etag) == (Status.DONE, etag)
    assert pipeline.handle(_backfill("k.jpg", etag)).status == SKIPPED  # once
