"""Real payload shapes sent straight to the images queue: each is processed, or acknowledged
and logged — never retried into the DLQ."""

from __future__ import annotations

import json
from typing import Any

import pytest

from imgpipe.catalog import Catalog
from imgpipe.deployment import Deployment
from imgpipe.events import read_body
from tests.conftest import Events, jpeg_bytes, load_event
from tests.functional.conftest import dlq_keys, wait_for
from tests.harness.backends import processing
from tests.harness.chaos import wait_drained
from tests.harness.wait import poll

pytestmark = pytest.mark.functional


def _eventbridge(bucket: str, key: str, etag: str) -> str:
    doc = load_event("eventbridge-object-created.json")
    doc["detail"]["bucket"]["name"] = bucket
    doc["detail"]["object"].update(key=key, etag=etag, sequencer="0AB0")
    return json.dumps(doc)


def _swallow(stack: Deployment, keys: set[str]) -> None:
    """Take the uploads' own notifications off the queue: only the shapes sent below may
    get these keys processed."""
    sqs, waiting = stack.client("sqs"), set(keys)

    def take() -> set[str]:
        for m in sqs.receive_message(
            QueueUrl=stack.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
        ).get("Messages", []):
            sqs.delete_message(QueueUrl=stack.queue_url, ReceiptHandle=m["ReceiptHandle"])
            waiting.difference_update(e.key for e in read_body(m["Body"]).events)
        return waiting

    poll(take, lambda left: not left, 30, interval=0, what="the uploads' notifications")


def _sns(body: str) -> str:
    doc = load_event("sns-envelope-s3-put.json")
    doc["Message"] = body
    return json.dumps(doc)


def test_every_shape_is_processed_or_acknowledged(
    local_stack: Deployment, catalog: Catalog, s3: Any, sender: Any, events: Events, prefix: str
) -> None:
    bucket = local_stack.uploads_bucket

    def upload(name: str) -> tuple[str, str]:
        key = prefix + name
        etag = s3.put_object(Bucket=bucket, Key=key, Body=jpeg_bytes())["ETag"].strip('"')
        return key, etag

    sqs = sender  # only S3 and the redrive role may send to the queue
    # the uploads' own notifications are dropped: this test sends the shapes itself
    plain, sns, bridge, multi_a, multi_b = (upload(f"{n}.jpg") for n in "pqrst")
    _swallow(local_stack, {k for k, _ in (plain, sns, bridge, multi_a, multi_b)})
    good_multi = json.loads(
        events.s3_body(multi_a[0], etag=multi_a[1], bucket=bucket, sequencer="0C")
    )
    other = json.loads(events.s3_body(multi_b[0], etag=multi_b[1], bucket=bucket, sequencer="0C"))
    good_multi["Records"] += [{"eventName": "ObjectCreated:Put", "s3": {}}, other["Records"][0]]
    tagging = load_event("s3-object-tagging-put.json")
    tagging["Records"][0]["s3"]["bucket"]["name"] = bucket
    bodies = {
        "plain": events.s3_body(plain[0], etag=plain[1], bucket=bucket, sequencer="0C"),
        "sns": _sns(events.s3_body(sns[0], etag=sns[1], bucket=bucket, sequencer="0C")),
        "eventbridge": _eventbridge(bucket, *bridge),
        "multi with a bad record": json.dumps(good_multi),
        "tagging": json.dumps(tagging),
        "test event": json.dumps(load_event("s3-test-event.json")),
        "not json": "<html>oops</html>",
        "sns of garbage": _sns("garbage"),
        "an unknown document": json.dumps({"hello": "world"}),
    }
    for body in bodies.values():
        sqs.send_message(QueueUrl=local_stack.queue_url, MessageBody=body)
    # a batch that fails whole (an execution environment that dies, as Lambda's may) comes
    # back within the wait rather than after the queue's visibility timeout
    with processing(local_stack, retry_visibility=1):
        records = wait_for(
            catalog, local_stack, [k for k, _ in (plain, sns, bridge, multi_a, multi_b)]
        )
        assert wait_drained(local_stack, local_stack.queue_url, 60)
    assert {r.status for r in records.values()} == {"DONE"}
    assert not [k for k in dlq_keys(local_stack) if k.startswith(prefix)]


MAXIMAL = "F" * 32  # the largest sequencer an event can carry


def test_forged_messages_delete_nothing_and_pin_nothing(
    local_stack: Deployment, catalog: Catalog, s3: Any, sender: Any, events: Events, prefix: str
) -> None:
    """Messages that look like S3 events but are not: a removal of a photo that is still
    there, with the largest sequencer; a removal of a key that does not exist, likewise;
    an event for another bucket. Nothing is deleted, nothing is recorded for the other bucket,
    and a later real upload of each key ends DONE."""
    bucket = local_stack.uploads_bucket
    cat, ghost = prefix + "cat.jpg", prefix + "ghost.jpg"
    with processing(local_stack):
        s3.put_object(Bucket=bucket, Key=cat, Body=jpeg_bytes((800, 600)))
        before = wait_for(catalog, local_stack, [cat])[cat]
        for key in (cat, ghost):
            forged = events.s3_body(
                key, event="ObjectRemoved:Delete", bucket=bucket, sequencer=MAXIMAL
            )
            sender.send_message(QueueUrl=local_stack.queue_url, MessageBody=forged)
        foreign = events.s3_body(cat, etag=before.etag, bucket="someone-elses", sequencer="0A")
        sender.send_message(QueueUrl=local_stack.queue_url, MessageBody=foreign)
        assert wait_drained(local_stack, local_stack.queue_url, 60)
    after = catalog.get(bucket, cat)
    assert after is not None and (after.status, after.version) == ("DONE", before.version)
    derived = local_stack.derived_bucket
    for thumb in before.thumbnails:
        s3.head_object(Bucket=derived, Key=thumb.key)  # still there
    assert catalog.get("someone-elses", cat) is None
    # the forged removal of a key nobody had uploaded is recorded, with its sequencer; the
    # first real upload replaces it all the same, as does a new version of the cat
    with processing(local_stack):
        s3.put_object(Bucket=bucket, Key=ghost, Body=jpeg_bytes((640, 480)))
        s3.put_object(Bucket=bucket, Key=cat, Body=jpeg_bytes((700, 500)))

        def settled(got: dict[str, Any]) -> bool:
            return all(r is not None and r.status == "DONE" for r in got.values()) and (
                got[cat].version != before.version
            )

        records = poll(
            lambda: {k: catalog.get(bucket, k) for k in (cat, ghost)},
            settled,
            60,
            what="the real uploads after the forged messages",
        )
    assert {k: r.status for k, r in records.items() if r is not None} == {
        cat: "DONE",
        ghost: "DONE",
    }
