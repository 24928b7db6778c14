"""The reconciler's judgement on moto: what is a finding, what is not yet one, what each fix
does; and the scheduled handler's request parsing."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from imgpipe import config, derived
from imgpipe.backfill import requeuer
from imgpipe.events import read_body
from imgpipe.handlers.reconcile import parse_request
from imgpipe.outcomes import Reason, Status
from imgpipe.reconcile import Reconciler, Report
from imgpipe.record import ImageRecord, ThumbnailRef
from imgpipe.storage import ObjectStore
from tests.conftest import jpeg_bytes
from tests.unit.conftest import FakeStack, LambdaContext


class InProcessLambda:
    """The stage's backfill function as reconcile invokes it, run in this process: the payload
    through the real handler (its parsing, the listing of the key, the catalog check, the
    send), the answer back as Lambda returns it. ``refuse`` raises for the keys it names."""

    def __init__(self, refuse: dict[str, Exception] | None = None) -> None:
        self.refuse = refuse or {}

    def invoke(self, FunctionName: str, Payload: bytes) -> dict[str, Any]:
        from imgpipe.handlers import backfill

        request = json.loads(Payload)
        for key in request.get("keys", []):
            if key in self.refuse:
                raise self.refuse[key]
        context: Any = LambdaContext()
        answer = backfill.handler(request, context)
        return {"StatusCode": 200, "Payload": io.BytesIO(json.dumps(answer).encode())}


@pytest.fixture
def queue(stack: FakeStack, monkeypatch: pytest.MonkeyPatch) -> str:
    """The images queue the backfill function sends to."""
    url: str = stack.sqs.create_queue(QueueName="images")["QueueUrl"]
    monkeypatch.setenv("IMAGES_QUEUE_URL", url)
    config.clear_caches()
    return url


def queued(stack: FakeStack, url: str) -> list[str]:
    """The keys of the backfill messages in the queue (taken out)."""
    keys = []
    while messages := stack.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get(
        "Messages", []
    ):
        for m in messages:
            (event,) = read_body(m["Body"]).events
            assert event.is_backfill
            keys.append(event.key)
            stack.sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return keys


def reconciler(
    stack: FakeStack, min_age: timedelta = timedelta(0), lambda_: Any = None
) -> Reconciler:
    client: Any = lambda_ or InProcessLambda()
    requeue = requeuer(client, "imgpipe-test-backfill")
    return Reconciler(
        ObjectStore(stack.s3),
        stack.catalog,
        "uploads",
        "derived",
        min_age=min_age,
        requeue=requeue,
    )


def _done(stack: FakeStack, key: str, version: str = "s:0A") -> ImageRecord:
    etag = stack.upload(key, jpeg_bytes())
    thumb = derived.thumbnail_key(key, version, "small", "jpg")
    doc = derived.results_key(key, version, "json")
    record = ImageRecord(
        bucket="uploads",
        key=key,
        version=version,
        status=Status.DONE,
        etag=etag,
        thumbnails=(ThumbnailRef("small", thumb, 1, 1, 1, "image/jpeg"),),
        results=(doc,),
        revision=1,
        updated_at="2026-01-01T00:00:00.000+00:00",
    )
    stack.s3.put_object(Bucket="derived", Key=thumb, Body=b"t")
    stack.s3.put_object(Bucket="derived", Key=doc, Body=json.dumps({"version": version}).encode())
    stack.catalog.put(record)
    return record


def kinds(report: Report) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for f in report.findings:
        out.setdefault(f.kind, set()).add(f.key)
    return out


def test_a_consistent_stack_has_no_findings(stack: FakeStack) -> None:
    _done(stack, "a.jpg")
    report = reconciler(stack).run()
    assert report.findings == [] and (report.sources, report.records, report.derived) == (1, 1, 2)
    assert report.line().endswith("no_source=0 unprocessed=0 orphan=0 stale_result=0 fixed=0")


def test_young_objects_are_not_judged(stack: FakeStack) -> None:
    """Work in flight: an upload not yet processed, thumbnails written before their record."""
    stack.upload("new.jpg", jpeg_bytes())
    stack.s3.put_object(
        Bucket="derived", Key=derived.thumbnail_key("new.jpg", "s:0B", "small", "jpg"), Body=b"t"
    )
    assert reconciler(stack, min_age=timedelta(minutes=15)).run().findings == []
    assert set(kinds(reconciler(stack).run())) == {"unprocessed", "orphan"}


def test_each_kind_is_found_and_fixed(stack: FakeStack, queue: str) -> None:
    kept = _done(stack, "kept.jpg")
    gone = _done(stack, "gone.jpg")
    stack.s3.delete_object(Bucket="uploads", Key="gone.jpg")  # its delete event was lost
    stack.upload("never.jpg", jpeg_bytes())  # its create event was lost
    orphan = derived.thumbnail_key("kept.jpg", "s:09", "small", "jpg")
    stack.s3.put_object(Bucket="derived", Key=orphan, Body=b"t")
    (doc,) = kept.results
    stack.s3.put_object(Bucket="derived", Key=doc, Body=b'{"version": "s:09"}')
    found = kinds(reconciler(stack).run())
    assert found == {
        "no_source": {"gone.jpg"},
        "unprocessed": {"never.jpg"},
        "orphan": {orphan},
        "stale_result": {doc},
    }
    report = reconciler(stack).run(fix=True)
    assert {f.key: f.fixed for f in report.findings} == {
        "gone.jpg": "marked DELETED",
        "never.jpg": "re-queued (a backfill message)",
        orphan: "deleted",
        doc: "rewritten from the record",
    }
    assert queued(stack, queue) == ["never.jpg"]
    marked = stack.catalog.get("uploads", "gone.jpg")
    assert marked is not None and marked.status is Status.DELETED and marked.notified
    assert marked.version == gone.version  # any real later event still outranks it
    left = set(stack.derived_keys())
    assert left == derived.owned(kept)
    body = stack.s3.get_object(Bucket="derived", Key=doc)["Body"].read()
    assert json.loads(body)["version"] == kept.version


def test_a_requeue_leaves_the_object_untouched(stack: FakeStack, queue: str) -> None:
    """No copy onto itself: the same version, bytes, headers and metadata, and no event for
    the bucket's other subscribers; one backfill message instead."""
    stack.s3.put_object(
        Bucket="uploads",
        Key="m +%é.jpg",
        Body=jpeg_bytes(),
        ContentType="image/jpeg",
        CacheControl="max-age=60",
        Metadata={"owner": "ana"},
    )
    before = stack.s3.head_object(Bucket="uploads", Key="m +%é.jpg")
    report = reconciler(stack).run(fix=True)
    assert [(f.kind, f.fixed) for f in report.findings] == [
        ("unprocessed", "re-queued (a backfill message)")
    ]
    after = stack.s3.head_object(Bucket="uploads", Key="m +%é.jpg")
    for field in ("ETag", "LastModified", "ContentType", "CacheControl", "Metadata"):
        assert after[field] == before[field]
    assert queued(stack, queue) == ["m +%é.jpg"]


def test_a_requeue_of_an_object_gone_or_done_meanwhile_sends_nothing(
    stack: FakeStack, queue: str
) -> None:
    """Between the listing and the fix, the object was deleted, or processed: the backfill
    function lists the key again and the catalog says so; nothing is sent."""
    stack.upload("gone.jpg", jpeg_bytes())
    client: Any = InProcessLambda()
    requeue = requeuer(client, "imgpipe-test-backfill")
    stack.s3.delete_object(Bucket="uploads", Key="gone.jpg")
    assert requeue("gone.jpg") == ""
    etag = stack.upload("done.jpg", jpeg_bytes())
    record = ImageRecord(
        "uploads",
        "done.jpg",
        "s:0A",
        Status.DONE,
        etag=etag,
        settings=config.settings().fingerprint,
    )
    stack.catalog.put(record)
    assert requeue("done.jpg") == ""
    assert queued(stack, queue) == []


def test_what_already_says_missing_or_deleted_is_no_finding(stack: FakeStack) -> None:
    base = ImageRecord(bucket="uploads", key="x.jpg", version="s:01", status=Status.DELETED)
    stack.catalog.put(base)
    stack.catalog.put(replace(base, key="y.jpg", status=Status.REJECTED, reason=Reason.MISSING))
    assert reconciler(stack).run().findings == []


def test_a_record_from_before_per_version_results_still_owns_its_documents(
    stack: FakeStack,
) -> None:
    legacy = replace(_done(stack, "old.jpg"), results=())
    stack.catalog.put(legacy)
    for doc in derived.legacy_results_keys("old.jpg"):
        body = json.dumps({"version": legacy.version}).encode()
        stack.s3.put_object(Bucket="derived", Key=doc, Body=body)
    found = kinds(reconciler(stack).run())
    # its per-version document is no longer owned; the legacy ones are
    assert found == {"stale_result": {derived.results_key("old.jpg", legacy.version, "json")}}


def test_a_prefix_limits_every_listing(stack: FakeStack) -> None:
    _done(stack, "in/a.jpg")
    stack.upload("out/b.jpg", jpeg_bytes())
    report = reconciler(stack).run("in/")
    assert (report.sources, report.records, report.findings) == (1, 1, [])


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        ({}, (False, "", 900)),
        ({"fix": True, "prefix": "trip/", "min_age": 0}, (True, "trip/", 0)),
        ({"source": "aws.events", "detail-type": "Scheduled Event"}, (False, "", 900)),
    ],
)
def test_requests(event: dict[str, Any], expected: tuple[bool, str, int]) -> None:
    assert parse_request(event, False, 900) == expected


@pytest.mark.parametrize(
    "event",
    [{"fix": "yes"}, {"prefix": 3}, {"min_age": -1}, {"min_age": True}, {"delete": "all"}],
)
def test_malformed_requests_are_refused(event: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        parse_request(event, False, 900)


def test_a_record_written_before_revisions_existed_can_still_be_replaced(
    stack: FakeStack,
) -> None:
    legacy = ImageRecord("uploads", "old.jpg", "s:01", Status.DONE)  # revision 0
    stack.catalog.put(legacy)
    report = reconciler(stack).run(fix=True)
    assert [(f.kind, f.fixed) for f in report.findings] == [("no_source", "marked DELETED")]


def test_an_error_on_one_object_is_reported_and_the_run_goes_on(
    stack: FakeStack, queue: str
) -> None:
    """One source cannot be re-queued (Lambda throttles the invoke): that finding says why,
    the others are fixed, and the report counts the error as unresolved."""
    from botocore.exceptions import ClientError

    for name in ("a.jpg", "b.jpg", "c.jpg"):
        stack.upload(name, jpeg_bytes())
    busy = ClientError({"Error": {"Code": "TooManyRequestsException", "Message": "Rate"}}, "Invoke")
    report = reconciler(stack, lambda_=InProcessLambda({"b.jpg": busy})).run(fix=True)
    by_key = {f.key: f for f in report.findings}
    assert by_key["b.jpg"].error == "TooManyRequestsException: Rate" and not by_key["b.jpg"].fixed
    assert by_key["a.jpg"].fixed and by_key["c.jpg"].fixed
    assert (report.errors, report.unresolved, report.fixed) == (1, 1, 2)
    assert "errors=1" in report.line()
    document: Any = report.to_document()
    assert document["findings"][1]["error"] == "TooManyRequestsException: Rate"
    assert sorted(queued(stack, queue)) == ["a.jpg", "c.jpg"]


def test_a_backfill_function_that_refuses_is_reported_with_its_reason(
    stack: FakeStack, queue: str
) -> None:
    stack.upload("a.jpg", jpeg_bytes())

    class Refusing:
        def invoke(self, FunctionName: str, Payload: bytes) -> dict[str, Any]:
            answer = json.dumps({"error": "keys must be 1 to 100 object keys"}).encode()
            return {"StatusCode": 200, "Payload": io.BytesIO(answer)}

    (finding,) = reconciler(stack, lambda_=Refusing()).run(fix=True).findings
    assert not finding.fixed and "keys must be 1 to 100" in finding.error


def test_without_a_backfill_function_a_requeue_is_an_error_not_a_crash(stack: FakeStack) -> None:
    stack.upload("a.jpg", jpeg_bytes())
    plain = Reconciler(
        ObjectStore(stack.s3), stack.catalog, "uploads", "derived", min_age=timedelta(0)
    )
    (finding,) = plain.run(fix=True).findings
    assert finding.kind == "unprocessed" and "backfill function" in finding.error


def test_memory_does_not_grow_with_the_bucket() -> None:
    """Listings are merged as they stream: the peak for 20,000 objects is the peak for 2,000
    (held in memory, the old way's grew tenfold). `make bench-reconcile` goes to 10^6."""
    from bench.reconcile_memory import SyntheticStack, peak_mib, streamed

    small, _ = peak_mib(streamed, SyntheticStack(2_000))
    large, found = peak_mib(streamed, SyntheticStack(20_000))
    assert found == 20
    assert large < small * 1.5 + 0.5, (small, large)


def test_a_report_keeps_a_bounded_number_of_findings() -> None:
    from imgpipe.reconcile import MAX_KEPT, Finding

    report = Report("")
    for i in range(MAX_KEPT + 5):
        report.add(Finding("orphan", f"thumbnails/{i}", "owned by no live version"))
    assert len(report.findings) == MAX_KEPT and report.left_out == 5
    assert report.count("orphan") == MAX_KEPT + 5
    assert report.to_document()["findings_left_out"] == 5
