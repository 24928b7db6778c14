"""The status API, the uploads form and redrive built directly on in-memory doubles of their
ports (ports.py: CatalogReader, Presigner, QueuePort), as bootstrap.py builds them on DynamoDB,
S3 and SQS: what they do, without moto, boto3 or a handler in between. GIVEN / WHEN / THEN."""

from __future__ import annotations

import json
from typing import Any

import pytest

from imgpipe.api import URL_TTL, StatusApi
from imgpipe.outcomes import Reason, Status
from imgpipe.record import ImageRecord, ThumbnailRef
from imgpipe.redrive import Queues, redrive
from imgpipe.uploads import answer
from tests.harness.memory_ports import MemoryCatalog, MemoryPresigner, MemoryQueues
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
    assert result.task == "task-1" and sqs.depth("source") == 0  # SQS moves them itself
