"""Test harness: reconcile every upload against the catalog, the derived bucket and the
notifications sent.

Used by ``bench/chaos.py`` (``make chaos``) and the functional chaos test: after faults, crashes,
retries, the DLQ and a redrive, every upload must end DONE (with its thumbnails), REJECTED or
FAILED, and each outcome must have been announced exactly once. Not part of the package.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from imgpipe.catalog import Catalog
from imgpipe.deployment import Deployment as Stack
from imgpipe.outcomes import Status
from imgpipe.record import ImageRecord, from_document

from .wait import poll


@dataclass(frozen=True, slots=True)
class Upload:
    key: str
    body: bytes
    expected: Status  # DONE or REJECTED


@dataclass
class Reconciliation:
    uploads: int = 0
    done: int = 0
    rejected: int = 0
    failed: int = 0
    lost: int = 0
    wrong: int = 0  # final, but not the outcome the input calls for
    duplicates_notified: int = 0
    lost_keys: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (
            f"uploads={self.uploads} done={self.done} rejected={self.rejected} "
            f"failed={self.failed} lost={self.lost} duplicates_notified={self.duplicates_notified}"
        )


def make_uploads(
    count: int, photos: Sequence[Path], prefix: str, bad_every: int = 20
) -> list[Upload]:
    """``count`` uploads cycling through ``photos``; every ``bad_every``-th is not an image."""
    uploads = []
    cache = {p: p.read_bytes() for p in photos}
    for i in range(count):
        if bad_every and i % bad_every == bad_every - 1:
            uploads.append(Upload(f"{prefix}{i:05d}-notes.jpg", b"not an image\n", Status.REJECTED))
        else:
            photo = photos[i % len(photos)]
            uploads.append(Upload(f"{prefix}{i:05d}-{photo.name}", cache[photo], Status.DONE))
    return uploads


def subscribe_inbox(stack: Stack, name: str, filter_policy: dict[str, Any] | None = None) -> str:
    """A queue subscribed to the topic, to count what was announced. As on AWS, the queue's
    policy must let the topic send to it (MiniStack enforces that)."""
    sqs, sns = stack.client("sqs"), stack.client("sns")
    url: str = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "sns.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": arn,
                "Condition": {"ArnEquals": {"aws:SourceArn": stack.topic_arn}},
            }
        ],
    }
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(policy)})
    attributes = {"FilterPolicy": json.dumps(filter_policy)} if filter_policy else {}
    sns.subscribe(TopicArn=stack.topic_arn, Protocol="sqs", Endpoint=arn, Attributes=attributes)
    return url


def drain(stack: Stack, url: str) -> list[ImageRecord]:
    """Every notification waiting in ``url``, as the records that were published."""
    sqs = stack.client("sqs")
    out: list[ImageRecord] = []
    while True:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return out
        out.extend(from_document(json.loads(json.loads(m["Body"])["Message"])) for m in messages)
        sqs.delete_message_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)
            ],
        )


def collect(
    stack: Stack,
    url: str,
    until: Callable[[list[ImageRecord]], bool],
    timeout: float = 30.0,
) -> list[ImageRecord]:
    """Drain ``url`` repeatedly until the notifications gathered satisfy ``until`` (SNS -> SQS
    delivery is asynchronous), then once more, so that a late duplicate is counted too."""
    gathered: list[ImageRecord] = []

    def more() -> list[ImageRecord]:
        gathered.extend(drain(stack, url))
        return gathered

    poll(more, until, timeout, interval=0.2, what="the expected notifications")
    return more()


def queue_depth(stack: Stack, url: str) -> int:
    attrs = stack.client("sqs").get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) + int(
        attrs["ApproximateNumberOfMessagesNotVisible"]
    )


def wait_drained(stack: Stack, url: str, timeout: float) -> bool:
    """Until ``url`` holds nothing, visible or in flight, twice in a row (polled each second)."""
    deadline = time.monotonic() + timeout
    empty_checks = 0
    while time.monotonic() < deadline:
        empty_checks = empty_checks + 1 if queue_depth(stack, url) == 0 else 0
        if empty_checks >= 2:
            return True
        time.sleep(1.0)
    return False


def _exists(s3: Any, bucket: str, key: str) -> bool:
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except ClientError:
        return False
    return True


def reconcile(
    stack: Stack, uploads: Sequence[Upload], notifications: Sequence[ImageRecord]
) -> Reconciliation:
    catalog = Catalog(stack.client("dynamodb"), stack.table)
    s3 = stack.client("s3")
    result = Reconciliation(uploads=len(uploads))
    for upload in uploads:
        record = catalog.get(stack.uploads_bucket, upload.key)
        status = None if record is None else record.status
        if (
            record is not None
            and status is Status.DONE
            and record.thumbnails
            and all(_exists(s3, stack.derived_bucket, t.key) for t in record.thumbnails)
        ):
            result.done += 1
        elif status is Status.REJECTED:
            result.rejected += 1
        elif status is Status.FAILED:
            result.failed += 1
        else:
            result.lost += 1
            result.lost_keys.append(upload.key)
            continue
        if status is not upload.expected and status is not Status.FAILED:
            result.wrong += 1
    announced = Counter((n.bucket, n.key, n.version, n.status) for n in notifications)
    result.duplicates_notified = sum(c - 1 for c in announced.values() if c > 1)
    return result
