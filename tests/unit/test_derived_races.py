"""Derived data never outlives its source: each race that used to leave thumbnails or results
documents behind (or a document describing another version), replayed with the handler.

A race is arranged with a one-shot botocore hook: just before the first call of an operation,
another delivery runs to completion in between (``Pipeline.handle`` directly, as a concurrent
invocation would). After each, the derived bucket must hold exactly what the live record owns,
and every results document must describe the live version.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from imgpipe import aws, bootstrap, derived
from imgpipe.events import parse_body
from imgpipe.handlers import process
from imgpipe.outcomes import Reason, Status
from imgpipe.record import ImageRecord
from tests.conftest import Events, jpeg_bytes
from tests.unit.conftest import FakeStack, LambdaContext

Before = Callable[[Any, str, Callable[[], object]], None]


@pytest.fixture
def run(lambda_context: LambdaContext) -> Callable[..., object]:
    def invoke(*records: Any) -> object:
        return process.handler({"Records": list(records)}, lambda_context)

    return invoke


@pytest.fixture
def before() -> Before:
    """``before(client, "PutItem", action)``: run ``action`` once, just before the first
    PutItem of ``client`` goes out."""

    def arrange(client: Any, operation: str, action: Callable[[], object]) -> None:
        service = client.meta.service_model.service_id.hyphenize()
        fired: list[bool] = []

        def hook(**_: Any) -> None:
            if not fired:
                fired.append(True)
                action()

        client.meta.events.register(f"before-call.{service}.{operation}", hook)

    return arrange


def deliver(events: Events, key: str, etag: str, sequencer: str, **kw: Any) -> object:
    """Another delivery, handled to completion now (a concurrent invocation)."""
    event = parse_body(events.s3_body(key, etag=etag, sequencer=sequencer, **kw))[0]
    return bootstrap.pipeline().handle(event)


def retried(run: Callable[..., object], message: Any) -> None:
    """The message failed transiently: reported for retry (a batch of one fails whole)."""
    with pytest.raises(Exception, match="All records failed"):
        run(message)


def after_visibility_timeout(stack: FakeStack, key: str) -> None:
    """SQS hands a failed message back only after its visibility timeout, which is longer than
    the function's: by then the writer's invocation is over (see Pipeline._skip)."""
    record = stack.catalog.get("uploads", key)
    assert record is not None
    long_ago = (datetime.now(UTC) - timedelta(minutes=5)).isoformat(timespec="milliseconds")
    stack.catalog.put(replace(record, updated_at=long_ago))


def assert_converged(stack: FakeStack, key: str) -> ImageRecord:
    """The derived bucket holds exactly what the live record owns, nothing pending, and each
    results document describes the live version."""
    record = stack.catalog.get("uploads", key)
    assert record is not None
    assert stack.derived_keys() == sorted(derived.owned(record))
    assert record.cleanup == ()
    for doc_key in record.results:
        if doc_key.endswith(".json"):
            body = stack.s3.get_object(Bucket="derived", Key=doc_key)["Body"].read()
            assert json.loads(body)["version"] == record.version
    return record


def test_an_older_version_finishing_after_a_newer_one_leaves_only_the_newer(
    stack: FakeStack, events: Events, run: Callable[..., object], before: Before
) -> None:
    v1 = stack.upload("a.jpg", jpeg_bytes((300, 200)))

    def newer_wins_meanwhile() -> None:
        v2 = stack.upload("a.jpg", jpeg_bytes((900, 600)))
        deliver(events, "a.jpg", v2, "0B")

    # v1 has fetched and rendered; just before its catalog write, v2 completes
    before(aws.dynamodb(), "PutItem", newer_wins_meanwhile)
    run(events.upload_record("m1", "a.jpg", etag=v1, sequencer="0A"))
    record = assert_converged(stack, "a.jpg")
    assert record.image is not None and record.image.width == 900
    assert len(record.results) == 2


def test_a_delete_processed_while_a_create_is_in_flight_leaves_nothing(
    stack: FakeStack, events: Events, run: Callable[..., object], before: Before
) -> None:
    etag = stack.upload("a.jpg", jpeg_bytes())

    def deleted_meanwhile() -> None:
        stack.s3.delete_object(Bucket="uploads", Key="a.jpg")
        deliver(events, "a.jpg", "", "0B", event="ObjectRemoved:Delete")

    before(aws.dynamodb(), "PutItem", deleted_meanwhile)
    run(events.upload_record("m1", "a.jpg", etag=etag, sequencer="0A"))
    record = assert_converged(stack, "a.jpg")
    assert record.status is Status.DELETED and stack.derived_keys() == []


def test_results_written_after_a_newer_version_cleaned_up_are_removed_by_their_writer(
    stack: FakeStack, events: Events, run: Callable[..., object], before: Before
) -> None:
    """v1 wins the catalog; before its results documents land, v2 replaces it and removes
    what v1 owned (the documents are not there yet); then v1's documents land."""
    v1 = stack.upload("a.jpg", jpeg_bytes((300, 200)))

    def newer_wins_meanwhile() -> None:
        v2 = stack.upload("a.jpg", jpeg_bytes((900, 600)))
        deliver(events, "a.jpg", v2, "0B")

    def at_first_results_put(params: dict[str, Any], **_: Any) -> None:
        if params["Key"].startswith("results/") and not fired:
            fired.append(True)
            newer_wins_meanwhile()

    fired: list[bool] = []
    aws.s3().meta.events.register("before-parameter-build.s3.PutObject", at_first_results_put)
    run(events.upload_record("m1", "a.jpg", etag=v1, sequencer="0A"))
    assert fired
    record = assert_converged(stack, "a.jpg")
    assert record.image is not None and record.image.width == 900


def test_a_rejected_new_version_removes_the_documents_of_the_done_one(
    stack: FakeStack, events: Events, run: Callable[..., object]
) -> None:
    v1 = stack.upload("a.jpg", jpeg_bytes())
    run(events.upload_record("m1", "a.jpg", etag=v1, sequencer="0A"))
    assert any(k.startswith("results/") for k in stack.derived_keys())
    v2 = stack.upload("a.jpg", b"not an image at all")
    run(events.upload_record("m2", "a.jpg", etag=v2, sequencer="0B"))
    record = assert_converged(stack, "a.jpg")
    assert (record.status, record.reason) == (Status.REJECTED, Reason.NOT_AN_IMAGE)
    assert stack.derived_keys() == []


def _fail_deletes(times: int) -> Callable[..., None]:
    left = [times]

    def hook(**_: Any) -> None:
        if left[0] > 0:
            left[0] -= 1
            raise ClientError({"Error": {"Code": "SlowDown", "Message": "slow"}}, "DeleteObjects")

    aws.s3().meta.events.register("before-call.s3.DeleteObjects", hook)
    return hook


def test_failed_on_the_last_receive_keeps_what_it_must_still_clean(
    stack: FakeStack,
    events: Events,
    run: Callable[..., object],
    throttle: Callable[[str], Callable[..., None]],
) -> None:
    v1 = stack.upload("a.jpg", jpeg_bytes())
    run(events.upload_record("m1", "a.jpg", etag=v1, sequencer="0A"))
    done = stack.catalog.get("uploads", "a.jpg")
    assert done is not None
    # v2 fails transiently on every receive; on the last one its FAILED record replaces v1's,
    # and deleting v1's objects fails too
    v2 = stack.upload("a.jpg", jpeg_bytes((900, 600)))
    hook = throttle("a.jpg")
    _fail_deletes(1)
    retried(run, events.upload_record("m2", "a.jpg", 3, etag=v2, sequencer="0B"))
    failed = stack.catalog.get("uploads", "a.jpg")
    assert failed is not None and failed.status is Status.FAILED
    assert set(failed.cleanup) == derived.owned(done)  # not forgotten
    # the incident ends; the redriven message completes, then the photo is deleted
    aws.s3().meta.events.unregister("before-parameter-build.s3.GetObject", hook)
    run(events.upload_record("m2", "a.jpg", 1, etag=v2, sequencer="0B"))
    assert_converged(stack, "a.jpg")
    stack.s3.delete_object(Bucket="uploads", Key="a.jpg")
    run(events.upload_record("m3", "a.jpg", sequencer="0C", event="ObjectRemoved:Delete"))
    record = assert_converged(stack, "a.jpg")
    assert record.status is Status.DELETED and stack.derived_keys() == []


@pytest.mark.parametrize("second", ["overwrite", "delete"])
def test_when_the_catalog_write_wins_but_the_cleanup_fails_the_retry_finishes_it(
    stack: FakeStack, events: Events, run: Callable[..., object], second: str
) -> None:
    v1 = stack.upload("a.jpg", jpeg_bytes())
    run(events.upload_record("m1", "a.jpg", etag=v1, sequencer="0A"))
    if second == "overwrite":
        etag = stack.upload("a.jpg", jpeg_bytes((900, 600)))
        message = events.upload_record("m2", "a.jpg", etag=etag, sequencer="0B")
    else:
        stack.s3.delete_object(Bucket="uploads", Key="a.jpg")
        message = events.upload_record("m2", "a.jpg", sequencer="0B", event="ObjectRemoved:Delete")
    _fail_deletes(1)
    retried(run, message)
    pending = stack.catalog.get("uploads", "a.jpg")
    assert pending is not None and pending.cleanup  # written, and what it must still remove
    # SQS redelivers (after the writer's invocation is over): a duplicate of the stored
    # version, which finishes the cleanup
    after_visibility_timeout(stack, "a.jpg")
    assert run(message) == {"batchItemFailures": []}
    assert_converged(stack, "a.jpg")


def test_deletions_s3_refuses_inside_a_200_answer_are_retried(
    stack: FakeStack, events: Events, run: Callable[..., object]
) -> None:
    """DeleteObjects answers 200 with per-key Errors (e.g. AccessDenied, SlowDown)."""
    v1 = stack.upload("a.jpg", jpeg_bytes())
    run(events.upload_record("m1", "a.jpg", etag=v1, sequencer="0A"))

    def partial(parsed: dict[str, Any], **_: Any) -> None:
        if not refused:
            refused.append(True)
            parsed["Errors"] = [{"Key": "x", "Code": "InternalError", "Message": "try again"}]

    refused: list[bool] = []
    aws.s3().meta.events.register("after-call.s3.DeleteObjects", partial)
    v2 = stack.upload("a.jpg", jpeg_bytes((900, 600)))
    message = events.upload_record("m2", "a.jpg", etag=v2, sequencer="0B")
    retried(run, message)
    after_visibility_timeout(stack, "a.jpg")
    assert run(message) == {"batchItemFailures": []}
    assert_converged(stack, "a.jpg")


def test_an_attempt_that_crashed_after_writing_thumbnails_is_cleaned_when_it_returns(
    stack: FakeStack, events: Events, run: Callable[..., object], before: Before
) -> None:
    """v1 writes its thumbnails and dies before its catalog write; v2 completes; when SQS
    hands v1's message back it is older than the record and removes what it had written."""
    v1 = stack.upload("a.jpg", jpeg_bytes((300, 200)))

    def crash() -> None:
        raise RuntimeError("the execution environment died")

    before(aws.dynamodb(), "PutItem", crash)
    message = events.upload_record("m1", "a.jpg", etag=v1, sequencer="0A")
    retried(run, message)
    assert stack.derived_keys("thumbnails/")  # written, owned by nobody
    v2 = stack.upload("a.jpg", jpeg_bytes((900, 600)))
    run(events.upload_record("m2", "a.jpg", etag=v2, sequencer="0B"))
    run(message)
    assert_converged(stack, "a.jpg")


def test_a_same_bytes_reupload_keeps_its_own_thumbnails(
    stack: FakeStack, events: Events, run: Callable[..., object]
) -> None:
    """Same ETag, new version: keys are per version, so removing v1's never hits v2's."""
    body = jpeg_bytes()
    v1 = stack.upload("a.jpg", body)
    run(events.upload_record("m1", "a.jpg", etag=v1, sequencer="0A"))
    v2 = stack.upload("a.jpg", body)
    assert v1 == v2
    run(events.upload_record("m2", "a.jpg", etag=v2, sequencer="0B"))
    run(events.upload_record("m1", "a.jpg", etag=v1, sequencer="0A"))  # late copy of v1
    record = assert_converged(stack, "a.jpg")
    assert record.version.startswith("s:0B") and len(record.thumbnails) == 3


@pytest.mark.parametrize(
    ("setting", "formats"), [("none", []), ("json", ["json"]), ("json,csv", ["csv", "json"])]
)
def test_results_documents_are_written_only_as_configured(
    stack: FakeStack,
    events: Events,
    run: Callable[..., object],
    monkeypatch: pytest.MonkeyPatch,
    setting: str,
    formats: list[str],
) -> None:
    monkeypatch.setenv("RESULTS_DOCUMENTS", setting)
    etag = stack.upload("a.jpg", jpeg_bytes())
    run(events.upload_record("m1", "a.jpg", etag=etag, sequencer="0A"))
    record = assert_converged(stack, "a.jpg")
    docs = stack.derived_keys("results/")
    assert sorted(k.rsplit(".", 1)[1] for k in docs) == formats
    assert list(record.results) == sorted(record.results, key=lambda k: k.endswith(".csv"))


def test_a_failed_versions_thumbnails_go_once_its_bytes_are_gone(
    stack: FakeStack, events: Events, run: Callable[..., object]
) -> None:
    """v1 writes its thumbnails, then its catalog writes fail on every receive: FAILED, to
    the DLQ. The photo is replaced; the redriven v1 finds other bytes (IfMatch fails): v1 can
    never be rendered again, so what it wrote goes (found by `make test`'s chaos run)."""
    v1 = stack.upload("a.jpg", jpeg_bytes((300, 200)))

    def done_write_fails(params: dict[str, Any], **_: Any) -> None:
        if params.get("Item", {}).get("status", {}).get("S") == "DONE":
            raise ClientError({"Error": {"Code": "InternalServerError", "Message": "x"}}, "PutItem")

    aws.dynamodb().meta.events.register("before-parameter-build.dynamodb.PutItem", done_write_fails)
    retried(run, events.upload_record("m1", "a.jpg", 3, etag=v1, sequencer="0A"))
    failed = stack.catalog.get("uploads", "a.jpg")
    assert failed is not None and failed.status is Status.FAILED
    assert stack.derived_keys("thumbnails/")  # written by v1, owned by no record
    aws.dynamodb().meta.events.unregister(
        "before-parameter-build.dynamodb.PutItem", done_write_fails
    )
    v2 = stack.upload("a.jpg", jpeg_bytes((900, 600)))
    run(events.upload_record("m1", "a.jpg", 1, etag=v1, sequencer="0A"))  # the redrive
    assert stack.derived_keys("thumbnails/") == []
    run(events.upload_record("m2", "a.jpg", etag=v2, sequencer="0B"))
    record = assert_converged(stack, "a.jpg")
    assert record.status is Status.DONE and record.etag == v2


def test_a_rejected_version_takes_an_earlier_attempts_thumbnails_to_clean(
    stack: FakeStack, events: Events, run: Callable[..., object]
) -> None:
    """v1's attempt wrote thumbnails and died; its retry finds the object deleted (REJECTED
    missing): nothing owns those thumbnails but the REJECTED record's cleanup."""
    v1 = stack.upload("a.jpg", jpeg_bytes())

    def crash(params: dict[str, Any], **_: Any) -> None:
        raise RuntimeError("the execution environment died")

    aws.dynamodb().meta.events.register("before-parameter-build.dynamodb.PutItem", crash)
    retried(run, events.upload_record("m1", "a.jpg", etag=v1, sequencer="0A"))
    aws.dynamodb().meta.events.unregister("before-parameter-build.dynamodb.PutItem", crash)
    assert stack.derived_keys("thumbnails/")
    stack.s3.delete_object(Bucket="uploads", Key="a.jpg")
    run(events.upload_record("m1", "a.jpg", 2, etag=v1, sequencer="0A"))
    record = assert_converged(stack, "a.jpg")
    assert (record.status, record.reason) == (Status.REJECTED, Reason.MISSING)
    assert stack.derived_keys() == []
