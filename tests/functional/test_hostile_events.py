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
    local_stack: Deployment, catalog: Catalog, s3: Any, events: Events, prefix: str
) -> None:
    bucket = local_stack.uploads_bucket

    def upload(name: str) -> tuple[str, str]:
        key = prefix + name
        etag = s3.put_object(Bucket=bucket, Key=key, Body=jpeg_bytes())["ETag"].strip('"')
        return key, etag

    sqs = local_stack.client("sqs")
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
