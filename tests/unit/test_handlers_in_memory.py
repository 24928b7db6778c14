"""The status API, the uploads form, redrive, reconcile and backfill built directly on
in-memory doubles of their ports (ports.py), as bootstrap.py builds them on DynamoDB, S3 and
SQS: what they do, without moto, boto3 or a handler in between. GIVEN / WHEN / THEN."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from imgpipe import derived
from imgpipe.api import URL_TTL, StatusApi
from imgpipe.backfill import Backfill, Checkpoint
from imgpipe.events import parse_body
from imgpipe.outcomes import Reason, Status
from imgpipe.reconcile import Reconciler
from imgpipe.record import ImageRecord, ThumbnailRef
from imgpipe.redrive import Queues, redrive
from imgpipe.uploads import answer
from tests.harness.memory_ports import (
    MemoryCatalog,
    MemoryPresigner,
    MemoryQueues,
    MemorySender,
    MemoryStore,
    etag_of,
)
from tests.harness.samples import Events


def _record(key: str, status: Status = Status.DONE) -> ImageRecord:
    thumbs = (ThumbnailRef("small", f"thumbnails/{key}/t/small.jpg", 128, 96, 900, "image/jpeg"),)
    return ImageRecord(
        "uploads",
        key,
        "s:1",
        status,
        etag="e",
        thumbnails=thumbs if status is Status.DONE else (),
        reason=Reason.CORRUPT if status is Status.REJECTED else None,
        detail="internal: s3://uploads/x failed at 10.0.0.7" if status is Status.REJECTED else "",
    )


def _doc(response: Any) -> Any:
    """A response's body as a client reads it: JSON."""
    return json.loads(json.dumps(response.body))


def _api(*records: ImageRecord, cdn_base: str = "") -> StatusApi:
    catalog = MemoryCatalog()
    for record in records:
        catalog.items[(record.bucket, record.key)] = record
    return StatusApi(catalog, MemoryPresigner(), "uploads", "derived", cdn_base=cdn_base)


def test_status_api_answers_a_record_with_signed_thumbnail_urls() -> None:
    # GIVEN a finished photo in the catalog
    api = _api(_record("trip/a b.jpg"))
    # WHEN a client asks for it
    response = api.handle("GET", "/images/trip/a b.jpg", {})
    # THEN the record comes back, its thumbnail by a URL signed for the derived bucket
    assert response.status == 200
    (thumb,) = _doc(response)["thumbnails"]
    assert thumb["url"] == (
        f"memory://derived/thumbnails/trip/a b.jpg/t/small.jpg?expires={URL_TTL}&sig=memory"
    )


def test_status_api_never_shows_the_stored_error_detail_and_404s_what_is_not_there() -> None:
    api = _api(_record("bad.jpg", Status.REJECTED))
    body = _doc(api.handle("GET", "/images/bad.jpg", {}))
    assert body["reason"] == "corrupt" and "10.0.0.7" not in json.dumps(body)
    assert api.handle("GET", "/images/missing.jpg", {}).status == 404


def test_status_api_pages_in_key_order_within_the_callers_prefix() -> None:
    # GIVEN three owners' photos
    api = _api(*(_record(f"users/{o}/{i}.jpg") for o in ("ann", "bob") for i in range(3)))
    # WHEN ann lists hers two at a time
    first = api.handle("GET", "/images", {"limit": "2"}, within="users/ann/")
    cursor = first.body["cursor"]
    assert isinstance(cursor, str)
    second = api.handle("GET", "/images", {"limit": "2", "cursor": cursor}, within="users/ann/")
    # THEN she sees exactly hers, in order, and nothing of bob's
    pages = (_doc(first)["items"], _doc(second)["items"])
    keys = [item["key"] for page in pages for item in page]
    assert keys == [f"users/ann/{i}.jpg" for i in range(3)]
    assert second.body.get("cursor") is None


def test_status_api_with_a_cdn_hands_out_unsigned_cdn_urls() -> None:
    api = _api(_record("p.jpg"), cdn_base="https://d111.cloudfront.net")
    (thumb,) = _doc(api.handle("GET", "/images/p.jpg", {}))["thumbnails"]
    assert thumb["url"] == "https://d111.cloudfront.net/p.jpg/t/small.jpg"


def test_the_uploads_form_pins_a_server_chosen_key_the_type_and_the_size() -> None:
    # GIVEN a phone's request for a HEIC upload form
    body = json.dumps({"content_type": "image/heic", "filename": "IMG_0001.HEIC", "size": 3})
    # WHEN the route answers it
    response = answer(MemoryPresigner(), "uploads", "users/ann/", body, 1000, 300)
    # THEN the key is the server's, under the caller's prefix, and the form's policy pins the
    # key, the type and a size within the limit
    assert response.status == 201
    doc = _doc(response)
    key = doc["key"]
    assert key.startswith("users/ann/") and key.endswith(".heic")
    fields = doc["upload"]["fields"]
    assert fields["key"] == key and fields["Content-Type"] == "image/heic"
    policy = json.loads(fields["policy"])
    assert {"key": key} in policy["conditions"]
    assert ["content-length-range", 1, 1000] in policy["conditions"]
    assert policy["expires"] == 300


def test_the_uploads_form_refuses_what_the_pipeline_cannot_read_and_oversized_files() -> None:
    presigner = MemoryPresigner()
    not_image = answer(presigner, "uploads", "", '{"content_type": "text/html"}', 1000, 300)
    too_big = answer(
        presigner, "uploads", "", '{"content_type": "image/jpeg", "size": 1001}', 1000, 300
    )
    assert (not_image.status, too_big.status) == (400, 400)
    assert "content_type" in str(not_image.body["message"])


# --- redrive on an in-memory queue pair ---------------------------------------------------


def _dlq_with(n: int) -> tuple[MemoryQueues, Queues]:
    sqs, queues = MemoryQueues(), Queues(source_url="source", dlq_url="dlq")
    for i in range(n):
        body = Events().s3_body(f"k{i}.jpg")
        sqs.put("dlq", body, origin=f"test-{i}")
    return sqs, queues


def test_redrive_moves_every_message_with_its_body_and_attributes() -> None:
    # GIVEN 23 messages parked in the DLQ (more than two batches of ten)
    sqs, queues = _dlq_with(23)
    # WHEN they are redriven without a move task
    result = redrive(sqs, queues, use_move_task=False)
    # THEN all are back in the source queue, intact, and none is left or in flight
    assert (result.moved, result.remaining) == (23, 0)
    back = sqs.waiting["source"]
    origins = sorted(str(text) for m in back for name, _, text, _ in m.attributes)
    assert origins == sorted(f"test-{i}" for i in range(23))
    assert sqs.depth("dlq") == 0 and sqs.in_flight == {}


def test_redrive_deletes_only_what_was_sent() -> None:
    # GIVEN a source queue that refuses the redrive's sends (a policy, a deleted queue)
    sqs, queues = _dlq_with(3)
    sqs.refuse_sends_to.add("source")
    # WHEN a redrive tries, THEN it says so and nothing is lost from the DLQ
    with pytest.raises(RuntimeError, match="could not re-send 3 messages"):
        redrive(sqs, queues, use_move_task=False)
    sqs.release("dlq", list(sqs.in_flight))  # their visibility runs out
    assert sqs.depth("dlq") == 3


def test_a_dry_run_lists_the_keys_and_moves_nothing_and_a_cap_is_kept() -> None:
    sqs, queues = _dlq_with(15)
    listed = redrive(sqs, queues, dry_run=True)
    assert listed.moved == 0 and len(listed.messages) == 15 and sqs.depth("dlq") == 15
    assert listed.messages[0].keys == ("uploads/k0.jpg",)
    capped = redrive(sqs, queues, max_messages=12)
    assert (capped.moved, capped.remaining) == (12, 3)


def test_a_move_task_where_the_endpoint_has_one() -> None:
    sqs, queues = _dlq_with(5)
    sqs.move_task = "task-1"
    result = redrive(sqs, queues)
    assert result.task == "task-1" and sqs.depth("source") == 5  # SQS moves them itself
    assert (result.task_status, result.moved, result.copied) == ("COMPLETED", 5, False)


# --- reconcile and backfill on an in-memory bucket and catalog ----------------------------

OLD = datetime.now(UTC) - timedelta(days=1)


def _done(store: MemoryStore, catalog: MemoryCatalog, key: str, data: bytes) -> ImageRecord:
    """An upload processed as the pipeline leaves it: record and its one thumbnail."""
    store.put("uploads", key, data, OLD)
    thumb = derived.thumbnail_key(key, "s:1", "small", "jpg")
    store.put("derived", thumb, b"t", OLD)
    record = ImageRecord(
        "uploads",
        key,
        "s:1",
        Status.DONE,
        etag=etag_of(data),
        settings="fp",
        updated_at=OLD.isoformat(),
        thumbnails=(ThumbnailRef("small", thumb, 1, 1, 1, "image/jpeg"),),
    )
    catalog.items[("uploads", key)] = record
    return record


def test_reconcile_finds_and_repairs_each_kind_of_disagreement() -> None:
    # GIVEN a good photo, one whose source is gone, one never processed, and an orphan
    store, catalog, requeued = MemoryStore(), MemoryCatalog(), []
    _done(store, catalog, "good.jpg", b"1")
    gone = _done(store, catalog, "gone.jpg", b"2")
    del store.objects[("uploads", "gone.jpg")]
    store.put("uploads", "lost-event.jpg", b"3", OLD)
    store.put("derived", "thumbnails/nobody.jpg/0123456789abcdef/small.jpg", b"x", OLD)
    reconciler = Reconciler(
        store,
        catalog,
        "uploads",
        "derived",
        min_age=timedelta(minutes=15),
        requeue=lambda key: requeued.append(key) or "re-queued",  # type: ignore[func-returns-value]
    )
    # WHEN it runs with --fix
    report = reconciler.run(fix=True)
    # THEN each is found once, fixed, and the good photo is left alone
    found = sorted((f.kind, f.key, f.fixed) for f in report.findings)
    assert found == [
        ("no_source", "gone.jpg", "marked DELETED"),
        ("orphan", "thumbnails/nobody.jpg/0123456789abcdef/small.jpg", "deleted"),
        ("unprocessed", "lost-event.jpg", "re-queued"),
    ]
    assert requeued == ["lost-event.jpg"]
    marked = catalog.get("uploads", "gone.jpg")
    assert marked is not None and marked.status is Status.DELETED
    assert ("derived", gone.thumbnails[0].key) not in store.objects
    untouched = _done(MemoryStore(), MemoryCatalog(), "good.jpg", b"1")
    assert catalog.get("uploads", "good.jpg") == untouched
    # AND a second pass finds only the re-queued photo (until the pipeline processes it)
    again = reconciler.run()
    assert [(f.kind, f.key) for f in again.findings] == [("unprocessed", "lost-event.jpg")]


def test_reconcile_leaves_work_in_flight_alone() -> None:
    store, catalog = MemoryStore(), MemoryCatalog()
    store.put("uploads", "just-now.jpg", b"1")  # written now: its event may be on its way
    reconciler = Reconciler(store, catalog, "uploads", "derived", min_age=timedelta(minutes=15))
    assert reconciler.run().findings == []


def test_backfill_queues_what_has_no_current_result_and_nothing_else() -> None:
    # GIVEN one photo current under these settings, one made under others, one never
    # processed, one uploaded a moment ago
    store, catalog, sender = MemoryStore(), MemoryCatalog(), MemorySender()
    _done(store, catalog, "current.jpg", b"1")
    stale = _done(store, catalog, "old-settings.jpg", b"2")
    catalog.items[("uploads", "old-settings.jpg")] = replace(stale, settings="before")
    store.put("uploads", "never.jpg", b"3", OLD)
    store.put("uploads", "recent.jpg", b"4")
    run = Backfill(store, catalog, sender, "uploads", "fp", min_age=timedelta(minutes=5))
    # WHEN a backfill runs over the bucket
    checkpoint = run.run(Checkpoint())
    # THEN the two that need work are queued, as backfill messages of their bytes
    assert checkpoint.done
    assert [parse_body(b)[0].key for b in sender.sent] == ["never.jpg", "old-settings.jpg"]
    assert all(parse_body(b)[0].is_backfill for b in sender.sent)
    assert {k: checkpoint.counts[k] for k in ("listed", "queued", "current", "recent")} == {
        "listed": 4,
        "queued": 2,
        "current": 1,
        "recent": 1,
    }


def test_backfill_resumes_after_its_checkpoint_and_a_dry_run_sends_nothing() -> None:
    store, catalog, sender = MemoryStore(), MemoryCatalog(), MemorySender()
    for i in range(5):
        store.put("uploads", f"k{i}.jpg", bytes([i]), OLD)
    dry = Backfill(store, catalog, None, "uploads", "fp", min_age=timedelta(0)).run(Checkpoint())
    assert dry.counts["queued"] == 5 and sender.sent == []
    run = Backfill(store, catalog, sender, "uploads", "fp", min_age=timedelta(0))
    first = run.run(Checkpoint(), max_messages=2)
    rest = run.run(first)
    assert [parse_body(b)[0].key for b in sender.sent] == [f"k{i}.jpg" for i in range(5)]
    assert (first.done, rest.done) == (False, True)
