"""At-least-once, out-of-order delivery on a real endpoint: duplicates, reordering, deletes,
SNS filtering, and faults with a crash that must lose nothing."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from imgpipe.catalog import Catalog
from imgpipe.deployment import Deployment
from imgpipe.record import ImageRecord
from tests.conftest import ROOT, jpeg_bytes
from tests.functional.conftest import dead_letter, require_local_functions, wait_for
from tests.harness.backends import processing
from tests.harness.chaos import (
    collect,
    derived_findings,
    drain,
    make_script,
    perform,
    queue_depth,
    reconcile,
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


@pytest.mark.chaos  # loads both cores: make test runs it alone, after the suites
def test_chaos_faults_and_a_crash_lose_nothing(
    local_stack: Deployment, catalog: Catalog, s3: Any, inbox: str, corpus: Path, prefix: str
) -> None:
    require_local_functions(local_stack)
    # 30 keys: 3 not images; 6 overwritten, 3 photos replaced by a non-image, 4 deleted, 4
    # deleted then uploaded again
    script = make_script(
        30,
        sorted(corpus.glob("*.jpg")),
        prefix,
        bad_every=10,
        overwrite=0.2,
        to_non_image=0.1,
        delete=0.14,
        delete_reupload=0.14,
    )
    first, second, third = script.rounds
    drain(local_stack, inbox)
    # GIVEN a fifth of all S3/DynamoDB/SNS calls failing, and the workers killed mid-batch
    with processing(local_stack, fault_rate=0.2, retry_visibility=1) as running:
        perform(local_stack, first)
        # kill the execution environments once processing is under way, most work to go
        poll(
            lambda: sum(
                catalog.get(local_stack.uploads_bucket, op.key) is not None for op in first
            ),
            lambda final: final >= 3,
            # under a fifth of calls failing, an image needs several attempts: on a slow
            # machine (this one's bench-e2e: 294 ms of handler CPU per image) a minute is not
            # always enough for three
            240,
            interval=0.05,
            what="the first uploads processed",
        )
        perform(local_stack, second)  # while the first round is still being processed
        # environments come and go with the batches: kill the next ones that run
        killed = poll(running.crash, lambda n: n > 0, 120, interval=0.1, what="a kill")
        perform(local_stack, third)
        # a batch killed mid-flight returns after the queue's visibility timeout (72 s)
        assert wait_drained(local_stack, local_stack.queue_url, 180)
    # WHEN the DLQ is redriven with the faults gone, by the redrive function as an operator
    # invokes it (the images queue accepts no other sender)
    answer = local_stack.client("lambda").invoke(
        FunctionName=local_stack.redrive_function, Payload=b"{}"
    )
    assert "FunctionError" not in answer, answer["Payload"].read()
    with processing(local_stack):
        assert wait_drained(local_stack, local_stack.queue_url, 150)
    # THEN every key ends as its last action calls for, and the derived bucket holds exactly
    # what the live versions own; announced once, but for an environment killed between a
    # publish and its mark (at least once, docs/reliability.md): one more at most per kill
    final = script.final()
    notes = [
        n
        for n in collect(
            local_stack,
            inbox,
            lambda got: all(
                any(n.key == k and n.status is op.expected for n in got) for k, op in final.items()
            ),
        )
        if n.key in final
    ]
    counts, details = derived_findings(local_stack, prefix)
    result = reconcile(local_stack, script, notes, counts)
    result.killed = killed
    assert result.ok, (result.line(), result.lost_keys, details)
    assert result.line() == (
        "uploads=43 overwrites=9 deletes=8 done=20 rejected=6 deleted=4 failed=0 lost=0 "
        f"duplicates_notified={result.duplicates_notified} orphans=0 stale_results=0 "
        f"killed={killed}"
    ), (result.lost_keys, details)
    assert queue_depth(local_stack, local_stack.dlq_url) == 0


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
