"""The process handler: partial batch responses, test events, metrics."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from imgpipe import bootstrap, derived
from imgpipe.handlers import process
from imgpipe.outcomes import Reason, Status
from tests.conftest import Events, jpeg_bytes, load_event, varied_photos
from tests.unit.conftest import FakeStack, LambdaContext


def test_partial_batch_failure_reports_only_the_transient_record(
    stack: FakeStack,
    events: Events,
    lambda_context: LambdaContext,
    throttle: Callable[[str], object],
) -> None:
    # GIVEN one good photo, one corrupt file and one whose download is throttled
    good_etag = stack.upload("good photo.jpg", jpeg_bytes((1600, 1200)))
    corrupt_etag = stack.upload("corrupt.jpg", b"\xff\xd8\xff" + b"\0" * 64)
    slow_etag = stack.upload("slow.jpg", jpeg_bytes())
    throttle("slow.jpg")
    event = events.sqs_event(
        events.upload_record("m-good", "good photo.jpg", etag=good_etag),
        events.upload_record("m-corrupt", "corrupt.jpg", etag=corrupt_etag),
        events.upload_record("m-slow", "slow.jpg", etag=slow_etag),
    )
    # WHEN the batch is processed
    response = process.handler(event, lambda_context)
    # THEN only the transient failure is reported for retry
    assert response == {"batchItemFailures": [{"itemIdentifier": "m-slow"}]}
    good = stack.catalog.get("uploads", "good photo.jpg")
    assert good is not None and good.status is Status.DONE
    assert [(t.name, t.width, t.height) for t in good.thumbnails] == [
        ("small", 128, 96),
        ("medium", 512, 384),
        ("large", 1024, 768),
    ]
    token = derived.token(good.version)
    assert stack.derived_keys("thumbnails/") == [
        f"thumbnails/good photo.jpg/{token}/large.jpg",
        f"thumbnails/good photo.jpg/{token}/medium.jpg",
        f"thumbnails/good photo.jpg/{token}/small.jpg",
    ]
    corrupt = stack.catalog.get("uploads", "corrupt.jpg")
    assert corrupt is not None
    assert (corrupt.status, corrupt.reason) == (Status.REJECTED, Reason.CORRUPT)
    # the transient one left no record: it will be retried, then DLQ'd
    assert stack.catalog.get("uploads", "slow.jpg") is None


def test_all_records_failing_raises_so_the_whole_batch_is_retried(
    stack: FakeStack,
    events: Events,
    lambda_context: LambdaContext,
    throttle: Callable[[str], object],
) -> None:
    stack.upload("slow.jpg", jpeg_bytes())
    throttle("slow.jpg")
    with pytest.raises(Exception, match="All records failed"):
        process.handler(
            events.sqs_event(events.upload_record("m1", "slow.jpg")),
            lambda_context,
        )


def test_test_event_and_missing_object(
    stack: FakeStack, events: Events, lambda_context: LambdaContext
) -> None:
    test_event = events.sqs_record("m-test", json.dumps(load_event("s3-test-event.json")))
    event = events.sqs_event(test_event, events.upload_record("m-missing", "never uploaded.jpg"))
    assert process.handler(event, lambda_context) == {"batchItemFailures": []}
    missing = stack.catalog.get("uploads", "never uploaded.jpg")
    assert missing is not None
    assert (missing.status, missing.reason) == (Status.REJECTED, Reason.MISSING)


@pytest.mark.parametrize(
    "body",
    [
        "this is not an S3 event",
        json.dumps({"Records": "x"}),
        json.dumps([1, 2]),
        json.dumps({"Type": "Notification", "Message": "not json"}),
        "[" * 100_000,  # deep enough to exhaust the JSON parser's recursion
    ],
)
def test_malformed_bodies_are_acknowledged_logged_and_counted_not_retried(
    stack: FakeStack,
    events: Events,
    lambda_context: LambdaContext,
    capsys: pytest.CaptureFixture[str],
    body: str,
) -> None:
    bad = events.sqs_record("m-bad", body)
    good = events.upload_record("m-good", "ok.jpg", etag=stack.upload("ok.jpg", jpeg_bytes()))
    # the logger's stream was fixed at import; point it at this test's captured stdout
    handler = process.logger.registered_handler
    previous = handler.setStream(sys.stdout)  # type: ignore[attr-defined]
    try:
        response = process.handler(events.sqs_event(bad, good), lambda_context)
    finally:
        handler.setStream(previous)  # type: ignore[attr-defined]
    assert response == {"batchItemFailures": []}  # retrying cannot repair it
    out = capsys.readouterr().out
    logged = [json.loads(line) for line in out.splitlines() if '"malformed record' in line]
    assert [(x["level"], x["message_id"]) for x in logged] == [("ERROR", "m-bad")]
    [emf] = [json.loads(line) for line in out.splitlines() if '"_aws"' in line]
    assert emf["Malformed"] == [1.0] and emf["Done"] == [1.0]
    record = stack.catalog.get("uploads", "ok.jpg")
    assert record is not None and record.status is Status.DONE


def test_metrics_are_emitted_as_emf(
    stack: FakeStack,
    events: Events,
    lambda_context: LambdaContext,
    capsys: pytest.CaptureFixture[str],
) -> None:
    good = events.upload_record("m-good", "ok.jpg", etag=stack.upload("ok.jpg", jpeg_bytes()))
    bad = events.upload_record("m-bad", "bad.jpg", etag=stack.upload("bad.jpg", b"<html>"))
    process.handler(events.sqs_event(good, bad), lambda_context)
    blobs: list[Any] = [
        json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line
    ]
    assert len(blobs) == 1, "one EMF blob per invocation"
    [directive] = blobs[0]["_aws"]["CloudWatchMetrics"]
    names = {m["Name"] for m in directive["Metrics"]}
    assert {
        "Done",
        "Rejected",
        "Rejected.not_an_image",
        "ThumbnailMs",
        "BytesIn",
        "BytesOut",
    } <= names
    assert blobs[0]["Done"] == [1.0] and blobs[0]["Rejected"] == [1.0]


class ShortContext(LambdaContext):
    """An invocation with almost no time left."""

    def get_remaining_time_in_millis(self) -> int:
        return 1500


@pytest.mark.parametrize(("receive", "recorded"), [(1, None), (3, Status.FAILED)])
def test_no_record_is_started_without_time_to_finish_it(
    stack: FakeStack, events: Events, receive: int, recorded: Status | None
) -> None:
    # GIVEN an invocation with 1.5 s left, less than the reserve a record needs
    etag = stack.upload("late.jpg", jpeg_bytes())
    record = events.upload_record("m1", "late.jpg", receive, etag=etag, sequencer="0A")
    # WHEN it is handled THEN nothing is processed and the message is retried...
    with pytest.raises(Exception, match="All records failed"):
        process.handler(events.sqs_event(record), ShortContext())
    assert stack.derived_keys() == []
    stored = stack.catalog.get("uploads", "late.jpg")
    # ...and on its last receive the catalog says so before SQS moves it to the DLQ
    assert (stored.status if stored else None) == recorded
    if stored is not None:
        assert stored.reason is Reason.TRANSIENT and "DeadlineNear" in stored.detail


def test_four_lanes_label_like_one(
    stack: FakeStack,
    events: Events,
    lambda_context: LambdaContext,
    monkeypatch: pytest.MonkeyPatch,
    corpus: Path,
) -> None:
    """The local labeler (the local stage's, and the container image's on AWS) in the
    batch's lanes: each record's findings equal what one lane finds."""
    monkeypatch.setenv("LABELER", "local")
    photos = varied_photos(corpus)
    findings = {}
    for workers in ("1", "4"):
        monkeypatch.setenv("RECORD_WORKERS", workers)
        bootstrap.reset()
        records = [
            events.upload_record(
                f"m{i}", f"w{workers}/{name}", etag=stack.upload(f"w{workers}/{name}", data)
            )
            for i, (name, data) in enumerate(photos.items())
        ]
        assert process.handler(events.sqs_event(*records), lambda_context) == {
            "batchItemFailures": []
        }
        found = {}
        for name in photos:
            record = stack.catalog.get("uploads", f"w{workers}/{name}")
            assert record is not None and record.status is Status.DONE and record.findings
            found[name] = replace(record.findings, ms=0.0)
        findings[workers] = found
    assert any(f.faces for f in findings["1"].values())
    assert any(f.text for f in findings["1"].values())
    assert findings["4"] == findings["1"]
