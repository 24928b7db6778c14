from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from imgpipe import aws
from imgpipe.catalog import Catalog
from imgpipe.handlers import process
from tests.conftest import jpeg_bytes
from tests.unit.conftest import FakeStack


class Context:
    function_name = "imgpipe-test-process"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:imgpipe-test-process"
    aws_request_id = "req-1"


def sqs_record(
    message_id: str,
    key: str,
    receive_count: int = 1,
    *,
    etag: str = "",
    sequencer: str = "",
    event: str = "ObjectCreated:Put",
) -> dict[str, Any]:
    obj = {"key": key.replace(" ", "+"), "size": 1, "eTag": etag}
    if sequencer:
        obj["sequencer"] = sequencer
    body = {
        "Records": [
            {
                "eventName": event,
                "eventTime": "2026-11-25T12:00:00.000Z",
                "s3": {"bucket": {"name": "uploads"}, "object": obj},
            }
        ]
    }
    return {
        "messageId": message_id,
        "receiptHandle": f"rh-{message_id}",
        "body": json.dumps(body),
        "attributes": {"ApproximateReceiveCount": str(receive_count)},
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:images",
        "awsRegion": "us-east-1",
    }


def upload(stack: FakeStack, key: str, body: bytes) -> str:
    etag: str = stack.s3.put_object(Bucket="uploads", Key=key, Body=body)["ETag"].strip('"')
    return etag


def throttle_get_object_of(key: str) -> Any:
    def hook(params: dict[str, Any], model: Any, **_: Any) -> None:
        if params.get("Key") == key:
            raise ClientError(
                {"Error": {"Code": "SlowDown", "Message": "Please reduce your request rate."}},
                "GetObject",
            )

    return hook


def test_partial_batch_failure_reports_only_the_transient_record(stack: FakeStack) -> None:
    # GIVEN one good photo, one corrupt file and one whose download is throttled
    good_etag = upload(stack, "good photo.jpg", jpeg_bytes((1600, 1200)))
    corrupt_etag = upload(stack, "corrupt.jpg", b"\xff\xd8\xff" + b"\0" * 64)
    slow_etag = upload(stack, "slow.jpg", jpeg_bytes())
    aws.s3().meta.events.register(
        "before-parameter-build.s3.GetObject", throttle_get_object_of("slow.jpg")
    )
    event = {
        "Records": [
            sqs_record("m-good", "good photo.jpg", etag=good_etag),
            sqs_record("m-corrupt", "corrupt.jpg", etag=corrupt_etag),
            sqs_record("m-slow", "slow.jpg", etag=slow_etag),
        ]
    }
    # WHEN the batch is processed
    response = process.handler(event, Context())
    # THEN only the transient failure is reported for retry
    assert response == {"batchItemFailures": [{"itemIdentifier": "m-slow"}]}
    catalog = Catalog(stack.ddb, "images")
    good = catalog.get("uploads", "good photo.jpg")
    assert good is not None and good["status"] == "DONE"
    assert [(t["name"], t["width"], t["height"]) for t in good["thumbnails"]] == [
        ("small", 128, 96),
        ("medium", 512, 384),
        ("large", 1024, 768),
    ]
    derived = stack.s3.list_objects_v2(Bucket="derived", Prefix="thumbnails/")["Contents"]
    assert sorted(o["Key"] for o in derived) == [
        f"thumbnails/good photo.jpg/{good_etag}/large.jpg",
        f"thumbnails/good photo.jpg/{good_etag}/medium.jpg",
        f"thumbnails/good photo.jpg/{good_etag}/small.jpg",
    ]
    corrupt = catalog.get("uploads", "corrupt.jpg")
    assert corrupt is not None
    assert (corrupt["status"], corrupt["reason"]) == ("REJECTED", "corrupt")
    # the transient one left no record: it will be retried, then DLQ'd
    assert catalog.get("uploads", "slow.jpg") is None


def test_all_records_failing_raises_so_the_whole_batch_is_retried(stack: FakeStack) -> None:
    stack.s3.put_object(Bucket="uploads", Key="slow.jpg", Body=jpeg_bytes())
    aws.s3().meta.events.register(
        "before-parameter-build.s3.GetObject", throttle_get_object_of("slow.jpg")
    )
    with pytest.raises(Exception, match="All records failed"):
        process.handler({"Records": [sqs_record("m1", "slow.jpg")]}, Context())


def test_test_event_and_missing_object(stack: FakeStack) -> None:
    test_event = sqs_record("m-test", "x")
    test_event["body"] = json.dumps({"Event": "s3:TestEvent", "Service": "Amazon S3"})
    event = {"Records": [test_event, sqs_record("m-missing", "never uploaded.jpg")]}
    assert process.handler(event, Context()) == {"batchItemFailures": []}
    missing = Catalog(stack.ddb, "images").get("uploads", "never uploaded.jpg")
    assert missing is not None and (missing["status"], missing["reason"]) == ("REJECTED", "missing")


def test_malformed_body_is_reported_for_the_dlq(stack: FakeStack) -> None:
    bad = sqs_record("m-bad", "x")
    bad["body"] = "this is not an S3 event"
    good = sqs_record("m-good", "ok.jpg", etag=upload(stack, "ok.jpg", jpeg_bytes()))
    response = process.handler({"Records": [bad, good]}, Context())
    assert response == {"batchItemFailures": [{"itemIdentifier": "m-bad"}]}


def test_metrics_are_emitted_as_emf(stack: FakeStack, capsys: pytest.CaptureFixture[str]) -> None:
    good = sqs_record("m-good", "ok.jpg", etag=upload(stack, "ok.jpg", jpeg_bytes()))
    bad = sqs_record("m-bad", "bad.jpg", etag=upload(stack, "bad.jpg", b"<html>"))
    process.handler({"Records": [good, bad]}, Context())
    blobs = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
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
