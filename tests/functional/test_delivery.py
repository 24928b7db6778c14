"""At-least-once, out-of-order delivery on a real endpoint: duplicates, reordering, deletes,
SNS filtering, and faults with a crash that must lose nothing."""

from __future__ import annotations

import json
import subprocess
import time
from typing import Any

import pytest

from imgpipe.catalog import Catalog
from imgpipe.deployment import Deployment
from imgpipe.record import ImageRecord
from tests.conftest import ROOT, jpeg_bytes
from tests.functional.conftest import dead_letter, wait_for
from tests.harness.backends import processing
from tests.harness.chaos import (
    collect,
    subscribe_inbox,
    wait_drained,
)
from tests.harness.wait import poll

pytestmark = pytest.mark.functional


@pytest.fixture(scope="module")
def inbox(local_stack: Deployment) -> str:
    return subscribe_inbox(local_stack, "delivery-inbox")


def _take_message(stack: Deployment) -> str:
    """Remove the one S3 event waiting in the images queue and return its body."""
    sqs = stack.client("sqs")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for m in sqs.receive_message(QueueUrl=stack.queue_url, WaitTimeSeconds=1).get(
            "Messages", []
        ):
            sqs.delete_message(QueueUrl=stack.queue_url, ReceiptHandle=m["ReceiptHandle"])
            if '"s3:TestEvent"' not in m["Body"]:
                return str(m["Body"])
    raise AssertionError("no S3 event arrived in the images queue")


def _mine(notes: list[ImageRecord], key: str) -> list[tuple[str, str]]:
    return [(n.etag, n.status.value) for n in notes if n.key == key]


def test_duplicates_and_an_older_version_after_a_newer_one(
    local_stack: Deployment, catalog: Catalog, s3: Any, sender: Any, inbox: str, prefix: str
) -> None:
    key = prefix + "versions.jpg"
    sqs = sender
    bucket = local_stack.uploads_bucket
    # GIVEN version 1 processed normally
    v1 = s3.put_object(Bucket=bucket, Key=key, Body=jpeg_bytes((600, 400)))["ETag"].strip('"')
    first = _take_message(local_stack)
    sqs.send_message(QueueUrl=local_stack.queue_url, MessageBody=first)
    with processing(local_stack):
        assert wait_for(catalog, local_stack, [key])[key].etag == v1
    # WHEN version 2 arrives twice and version 1's event once more, after it
    v2 = s3.put_object(Bucket=bucket, Key=key, Body=jpeg_bytes((900, 600)))["ETag"].strip('"')
    second = _take_message(local_stack)
    for body in (second, second, first):
        sqs.send_message(QueueUrl=local_stack.queue_url, MessageBody=body)
    with processing(local_stack):
        assert wait_drained(local_stack, local_stack.queue_url, 30)
    # THEN the catalog holds version 2, and each version was announced once
    record = catalog.get(bucket, key)
    assert record is not None and record.image is not None
    assert (record.etag, record.image.width) == (v2, 900)
    notes = collect(local_stack, inbox, lambda got: len(_mine(got, key)) >= 2)
    assert sorted(_mine(notes, key)) == sorted([(v1, "DONE"), (v2, "DONE")])
    # and only version 2's thumbnails remain
    left = [
        o["Key"]
        for o in s3.list_objects_v2(Bucket=local_stack.derived_bucket, Prefix=f"thumbnails/{key}/")[
            "Contents"
        ]
    ]
    assert sorted(left) == sorted(record.thumbnail_keys) and len(left) == len(record.thumbnails)


def test_delete_removes_thumbnails_and_marks_deleted(
    local_stack: Deployment, catalog: Catalog, s3: Any, prefix: str
) -> None:
    key = prefix + "short-lived.jpg"
    with processing(local_stack):
        s3.put_object(Bucket=local_stack.uploads_bucket, Key=key, Body=jpeg_bytes())
        done = wait_for(catalog, local_stack, [key])[key]
        assert done.status == "DONE"
        s3.delete_object(Bucket=local_stack.uploads_bucket, Key=key)
        poll(
            lambda: catalog.get(local_stack.uploads_bucket, key),
            lambda record: record is not None and record.status == "DELETED",
            30,
            what="a DELETED record",
        )
    listed = s3.list_objects_v2(Bucket=local_stack.derived_bucket, Prefix=f"thumbnails/{key}/")
    assert listed.get("KeyCount", 0) == 0


def test_subscribers_can_filter_on_status(
    local_stack: Deployment, catalog: Catalog, s3: Any, prefix: str
) -> None:
    sqs = local_stack.client("sqs")
    url = subscribe_inbox(
        local_stack, "rejections-only", filter_policy={"status": ["REJECTED", "FAILED"]}
    )
    good, bad = prefix + "fine.jpg", prefix + "bogus.jpg"
    with processing(local_stack):
        s3.put_object(Bucket=local_stack.uploads_bucket, Key=good, Body=jpeg_bytes())
        s3.put_object(Bucket=local_stack.uploads_bucket, Key=bad, Body=b"%PDF-1.7 not an image")
        wait_for(catalog, local_stack, [good, bad])

    # the filtered queue gets its one message; a second (the DONE one) must never come. Other
    # tests' outcomes, on an endpoint shared with other runs, are not this test's.
    def mine() -> list[Any]:
        received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        envelopes = [json.loads(m["Body"]) for m in received.get("Messages", [])]
        return [e for e in envelopes if e["MessageAttributes"]["key"]["Value"].startswith(prefix)]

    envelopes = poll(mine, bool, 30, what="a filtered notification")
    envelopes += mine()
    assert [e["MessageAttributes"]["status"]["Value"] for e in envelopes] == ["REJECTED"]
    [envelope] = envelopes
    assert envelope["MessageAttributes"]["key"]["Value"] == bad
    assert envelope["MessageAttributes"]["reason"]["Value"] == "not_an_image"
    assert json.loads(envelope["Message"])["reason"] == "not_an_image"


def _make(*args: str) -> dict[str, Any]:
    """Run a make target in the project and return the JSON object it printed last."""
    out = subprocess.run(
        ["make", "--no-print-directory", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    text = out.stdout
    result: dict[str, Any] = json.loads(text[text.rindex("\n{") :])
    return result


def test_make_redrive_invokes_the_function_with_sls_invoke(
    local_stack: Deployment, catalog: Catalog, s3: Any, sender: Any, prefix: str
) -> None:
    key = prefix + "parked.jpg"
    s3.put_object(Bucket=local_stack.uploads_bucket, Key=key, Body=jpeg_bytes())
    # GIVEN its event parked in the DLQ, as after an incident
    dead_letter(local_stack, sender, _take_message(local_stack))
    # WHEN the operator looks, then redrives, through `sls invoke local -f redrive`
    listed = _make("redrive", "DRY_RUN=1")
    assert listed["dry_run"] is True and listed["moved"] == 0
    assert f"{local_stack.uploads_bucket}/{key}" in [
        k for m in listed["messages"] for k in m["keys"]
    ]
    moved = _make("redrive")
    assert moved["moved"] >= 1 and moved["remaining"] == 0
    # THEN the upload completes
    with processing(local_stack):
        assert wait_for(catalog, local_stack, [key])[key].status == "DONE"
