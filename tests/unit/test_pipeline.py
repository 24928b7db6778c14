"""The pipeline's ordered, idempotent outcomes: duplicates, reordering, deletes, FAILED on the
last attempt, notify once."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from imgpipe import aws, derived
from imgpipe.events import parse_body
from imgpipe.handlers import process
from imgpipe.outcomes import Reason, Status
from tests.conftest import Events, jpeg_bytes
from tests.unit.conftest import FakeStack, LambdaContext

Run = Callable[..., object]


@pytest.fixture
def run(lambda_context: LambdaContext) -> Run:
    def invoke(*records: Any) -> object:
        return process.handler({"Records": list(records)}, lambda_context)

    return invoke


@pytest.fixture
def inbox(stack: FakeStack) -> str:
    """An SQS queue subscribed to the topic: every notification the pipeline sends."""
    url: str = stack.sqs.create_queue(QueueName="inbox")["QueueUrl"]
    arn = stack.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    boto3.client("sns", region_name="us-east-1").subscribe(
        TopicArn=stack.topic_arn,
        Protocol="sqs",
        Endpoint=arn["Attributes"]["QueueArn"],
        Attributes={"RawMessageDelivery": "false"},
    )
    return url


def notifications(stack: FakeStack, inbox: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while True:
        msgs = stack.sqs.receive_message(QueueUrl=inbox, MaxNumberOfMessages=10).get("Messages", [])
        if not msgs:
            return out
        for m in msgs:
            envelope = json.loads(m["Body"])
            out.append(
                {
                    "subject": envelope["Subject"],
                    "body": json.loads(envelope["Message"]),
                    "attributes": {k: v["Value"] for k, v in envelope["MessageAttributes"].items()},
                }
            )
            stack.sqs.delete_message(QueueUrl=inbox, ReceiptHandle=m["ReceiptHandle"])


def test_sequencers_are_right_padded_then_compared_as_the_s3_guide_says(events: Events) -> None:
    """The S3 User Guide (event message structure): to order two events of one key, right-pad
    the shorter sequencer with zeros, then compare the strings."""

    def version(seq: str) -> str:
        return parse_body(events.s3_body("k", sequencer=seq))[0].version

    assert version("0055AED6DCD90281E5") < version("0055AED6DCD90281E6")
    assert version("0055AED6DC") == version("0055AED6DC00000000")  # padded on the right
    assert version("0055AED6DC") < version("0055AED6DCD90281E5")
    assert version("0056") > version("0055FFFFFFFFFFFFFF")
    assert version("0055aed6dcd90281e5") == version("0055AED6DCD90281E5")
    # an event without a sequencer (an emulator's, a test's) never outranks one S3 ordered
    assert parse_body(events.s3_body("k"))[0].version < version("00")


def test_duplicate_delivery_notifies_once(
    stack: FakeStack, events: Events, run: Run, inbox: str
) -> None:
    etag = stack.upload("a.jpg", jpeg_bytes())
    record = events.upload_record("m1", "a.jpg", etag=etag, sequencer="0A")
    run(record)
    run({**record, "messageId": "m2"})  # SQS delivered it again
    sent = notifications(stack, inbox)
    assert [n["attributes"]["status"] for n in sent] == ["DONE"]
    assert sent[0]["attributes"] == {
        "status": "DONE",
        "bucket": "uploads",
        "key": "a.jpg",
        "reason": "-",
    }
    assert sent[0]["subject"] == "imgpipe DONE: a.jpg"
    assert sent[0]["body"]["status"] == "DONE" and sent[0]["body"]["width"] == 640


def test_older_version_after_newer_is_ignored(
    stack: FakeStack, events: Events, run: Run, inbox: str
) -> None:
    old_etag = stack.upload("a.jpg", jpeg_bytes((300, 200)))
    new_etag = stack.upload("a.jpg", jpeg_bytes((900, 600)))
    run(events.upload_record("m-new", "a.jpg", etag=new_etag, sequencer="0B"))
    run(events.upload_record("m-old", "a.jpg", etag=old_etag, sequencer="0A"))
    record = stack.catalog.get("uploads", "a.jpg")
    assert record is not None and record.image is not None
    assert (record.etag, record.image.width) == (new_etag, 900)
    assert len(notifications(stack, inbox)) == 1


def test_new_version_replaces_thumbnails_of_the_previous(
    stack: FakeStack, events: Events, run: Run
) -> None:
    first = stack.upload("a.jpg", jpeg_bytes((300, 200)))
    run(events.upload_record("m1", "a.jpg", etag=first, sequencer="0A"))
    second = stack.upload("a.jpg", jpeg_bytes((900, 600)))
    run(events.upload_record("m2", "a.jpg", etag=second, sequencer="0B"))
    record = stack.catalog.get("uploads", "a.jpg")
    assert record is not None and record.etag == second
    assert stack.derived_keys() == sorted(derived.owned(record))
    assert record.cleanup == ()  # nothing left pending


def test_delete_removes_derivatives_and_is_not_resurrected(
    stack: FakeStack, events: Events, run: Run, inbox: str
) -> None:
    etag = stack.upload("gone.jpg", jpeg_bytes())
    created = events.upload_record("m1", "gone.jpg", etag=etag, sequencer="0A")
    run(created)
    other = stack.upload("gone.jpg/inside.jpg", jpeg_bytes())  # shares the key as a prefix
    run(events.upload_record("m-other", "gone.jpg/inside.jpg", etag=other, sequencer="01"))
    stack.s3.delete_object(Bucket="uploads", Key="gone.jpg")
    run(events.upload_record("m2", "gone.jpg", sequencer="0B", event="ObjectRemoved:Delete"))
    run({**created, "messageId": "m3"})  # a late redelivery of the creation
    record = stack.catalog.get("uploads", "gone.jpg")
    assert record is not None and record.status is Status.DELETED
    left = stack.derived_keys()
    # what belonged to gone.jpg went; what belongs to gone.jpg/inside.jpg stays
    assert sorted(k.split("/")[0] for k in left) == ["results"] * 2 + ["thumbnails"] * 3
    assert all("gone.jpg/inside.jpg" in k for k in left)
    assert [n["attributes"]["status"] for n in notifications(stack, inbox)] == [
        "DONE",
        "DONE",
        "DELETED",
    ]


def test_last_attempt_records_failed_then_redrive_completes(
    stack: FakeStack,
    events: Events,
    run: Run,
    inbox: str,
    throttle: Callable[[str], Callable[..., None]],
) -> None:
    etag = stack.upload("slow.jpg", jpeg_bytes())
    hook = throttle("slow.jpg")
    ok = stack.upload("ok.jpg", jpeg_bytes())
    # receive 2 of 3: reported for retry, nothing recorded
    response = run(
        events.upload_record("m1", "slow.jpg", 2, etag=etag, sequencer="0A"),
        events.upload_record("m-ok", "ok.jpg", etag=ok, sequencer="01"),
    )
    assert response == {"batchItemFailures": [{"itemIdentifier": "m1"}]}
    assert stack.catalog.get("uploads", "slow.jpg") is None
    # receive 3 of 3: FAILED with the last error, still reported (SQS moves it to the DLQ)
    response = run(
        events.upload_record("m1", "slow.jpg", 3, etag=etag, sequencer="0A"),
        events.upload_record("m-ok2", "ok.jpg", etag=ok, sequencer="01"),
    )
    assert response == {"batchItemFailures": [{"itemIdentifier": "m1"}]}
    failed = stack.catalog.get("uploads", "slow.jpg")
    assert failed is not None
    assert (failed.status, failed.reason) == (Status.FAILED, Reason.TRANSIENT)
    assert failed.detail == "GetObject: SlowDown: Please reduce your request rate."
    # the incident is over; the redriven message completes the same version
    aws.s3().meta.events.unregister("before-parameter-build.s3.GetObject", hook)
    assert run(events.upload_record("m1", "slow.jpg", 1, etag=etag, sequencer="0A")) == {
        "batchItemFailures": []
    }
    done = stack.catalog.get("uploads", "slow.jpg")
    assert done is not None and done.status is Status.DONE
    statuses = [
        (n["attributes"]["key"], n["attributes"]["status"]) for n in notifications(stack, inbox)
    ]
    assert statuses == [("ok.jpg", "DONE"), ("slow.jpg", "FAILED"), ("slow.jpg", "DONE")]


def test_failed_publish_is_retried_and_sent_once(
    stack: FakeStack, events: Events, run: Run, inbox: str
) -> None:
    etag = stack.upload("a.jpg", jpeg_bytes())
    record = events.upload_record("m1", "a.jpg", etag=etag, sequencer="0A")

    def fail_publish(**_: Any) -> None:
        raise ClientError({"Error": {"Code": "Throttling", "Message": "slow"}}, "Publish")

    aws.sns().meta.events.register("before-parameter-build.sns.Publish", fail_publish)
    with pytest.raises(Exception, match="All records failed"):
        run(record)
    stored = stack.catalog.get("uploads", "a.jpg")
    assert stored is not None and stored.status is Status.DONE and stored.notified is False
    aws.sns().meta.events.unregister("before-parameter-build.sns.Publish", fail_publish)
    # SQS returns the message after its visibility timeout, longer than the function's timeout
    stack.catalog.put(replace(stored, updated_at=_ago(seconds=120)))
    run(record)  # the retry finds the record written but not announced
    run(record)  # and a further duplicate sends nothing
    assert [n["attributes"]["key"] for n in notifications(stack, inbox)].count("a.jpg") == 1


def test_an_overlapping_delivery_waits_for_the_writer_instead_of_announcing_twice(
    stack: FakeStack, events: Events, run: Run, inbox: str
) -> None:
    # GIVEN a delivery that has just written DONE and is announcing it (not yet marked)
    etag = stack.upload("a.jpg", jpeg_bytes())
    record = events.upload_record("m1", "a.jpg", etag=etag, sequencer="0A")
    run(record)
    done = stack.catalog.get("uploads", "a.jpg")
    assert done is not None
    stack.catalog.put(replace(done, notified=False, updated_at=_ago(seconds=0)))
    notifications(stack, inbox)  # the writer's own announcement
    # WHEN SQS hands a second copy of the same message to another environment
    # THEN that copy is retried later (a batch of only it fails whole), not announced now
    with pytest.raises(Exception, match="All records failed"):
        run({**record, "messageId": "m2"})
    assert notifications(stack, inbox) == []
    # and once the writer has marked it, the retried copy sends nothing either
    stack.catalog.mark_notified(done)
    assert run({**record, "messageId": "m2"}) == {"batchItemFailures": []}
    assert notifications(stack, inbox) == []


def _ago(seconds: float) -> str:
    return (datetime.now(UTC) - timedelta(seconds=seconds)).isoformat(timespec="milliseconds")


def test_updated_at_is_when_the_outcome_was_written(
    stack: FakeStack, events: Events, run: Run
) -> None:
    before = datetime.now(UTC)
    etag = stack.upload("a.jpg", jpeg_bytes((2400, 1800)))
    run(events.upload_record("m1", "a.jpg", etag=etag, sequencer="0A"))
    record = stack.catalog.get("uploads", "a.jpg")
    assert record is not None and record.ms is not None
    written = datetime.fromisoformat(record.updated_at)
    # after the processing it reports, not when the work began
    assert (written - before).total_seconds() * 1000 >= record.ms


def test_deleting_an_old_version_leaves_the_live_record(
    stack: FakeStack, events: Events, run: Run
) -> None:
    stack.s3.put_bucket_versioning(
        Bucket=stack.uploads, VersioningConfiguration={"Status": "Enabled"}
    )
    old = stack.s3.put_object(Bucket=stack.uploads, Key="v.jpg", Body=jpeg_bytes((300, 200)))
    etag = stack.upload("v.jpg", jpeg_bytes())
    live = stack.s3.head_object(Bucket=stack.uploads, Key="v.jpg")["VersionId"]
    created = json.loads(events.s3_body("v.jpg", etag=etag, sequencer="0A"))
    created["Records"][0]["s3"]["object"]["versionId"] = live
    run(events.sqs_record("m1", json.dumps(created)))
    stack.s3.delete_object(Bucket=stack.uploads, Key="v.jpg", VersionId=old["VersionId"])
    removed = json.loads(events.s3_body("v.jpg", event="ObjectRemoved:Delete", sequencer="0B"))
    removed["Records"][0]["s3"]["object"]["versionId"] = old["VersionId"]
    run(events.sqs_record("m2", json.dumps(removed)))
    record = stack.catalog.get("uploads", "v.jpg")
    assert record is not None and (record.status, record.version_id) == (Status.DONE, live)
    assert len(stack.derived_keys("thumbnails/")) == 3
    # deleting the live version itself is a deletion
    stack.s3.delete_object(Bucket=stack.uploads, Key="v.jpg", VersionId=live)
    removed["Records"][0]["s3"]["object"]["versionId"] = live
    removed["Records"][0]["s3"]["object"]["sequencer"] = "0C"
    run(events.sqs_record("m3", json.dumps(removed)))
    record = stack.catalog.get("uploads", "v.jpg")
    assert record is not None and record.status is Status.DELETED


def test_a_key_too_long_for_its_derivatives_is_rejected_not_retried(
    stack: FakeStack, events: Events, run: Run
) -> None:
    key = "k" * 1000 + ".jpg"  # a legal source key; "thumbnails/<key>/<etag>/..." is not

    def s3_key_limit(params: dict[str, Any], **_: Any) -> None:  # S3's answer; moto lacks it
        if len(params["Key"].encode()) > 1024:
            raise ClientError(
                {"Error": {"Code": "KeyTooLongError", "Message": "Your key is too long"}},
                "PutObject",
            )

    aws.s3().meta.events.register("before-parameter-build.s3.PutObject", s3_key_limit)
    etag = stack.upload(key, jpeg_bytes())
    assert run(events.upload_record("m1", key, etag=etag, sequencer="0A")) == {
        "batchItemFailures": []
    }
    record = stack.catalog.get("uploads", key)
    assert record is not None
    assert (record.status, record.reason) == (Status.REJECTED, Reason.KEY_TOO_LONG)
    assert stack.derived_keys() == []


def test_thumbnails_are_cached_privately_for_as_long_as_their_urls_live(
    stack: FakeStack, events: Events, run: Run
) -> None:
    """Handed out by 15-minute presigned URLs: no shared cache may keep a private photo, and a
    year-long `immutable` outlives every URL that could fetch it."""
    from imgpipe.api import URL_TTL

    etag = stack.upload("c.jpg", jpeg_bytes())
    run(events.upload_record("m1", "c.jpg", etag=etag, sequencer="0A"))
    [record] = [r for r in [stack.catalog.get("uploads", "c.jpg")] if r is not None]
    for thumb in record.thumbnails:
        head = stack.s3.head_object(Bucket=stack.derived, Key=thumb.key)
        assert head["CacheControl"] == f"private, max-age={URL_TTL}"
