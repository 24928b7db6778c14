"""Reconcile every upload against the catalog, the derived bucket and the notifications sent.

Used by ``bench/chaos.py`` (``make chaos``) and the functional chaos test: after faults, crashes,
retries, the DLQ and a redrive, every upload must end DONE (with its thumbnails), REJECTED or
FAILED, and each outcome must have been announced exactly once.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from ..catalog import Catalog
from .stack import Stack


@dataclass(frozen=True, slots=True)
class Upload:
    key: str
    body: bytes
    expected: str  # DONE or REJECTED


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
            uploads.append(Upload(f"{prefix}{i:05d}-notes.jpg", b"not an image\n", "REJECTED"))
        else:
            photo = photos[i % len(photos)]
            uploads.append(Upload(f"{prefix}{i:05d}-{photo.name}", cache[photo], "DONE"))
    return uploads


def subscribe_inbox(stack: Stack, name: str) -> str:
    """A queue subscribed to the topic, to count what was announced."""
    sqs, sns = stack.client("sqs"), stack.client("sns")
    url: str = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
    sns.subscribe(TopicArn=stack.topic_arn, Protocol="sqs", Endpoint=arn["QueueArn"])
    return url


def drain(stack: Stack, url: str) -> list[dict[str, Any]]:
    """Every notification waiting in ``url``, as the JSON records that were published."""
    sqs = stack.client("sqs")
    out: list[dict[str, Any]] = []
    while True:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return out
        out.extend(json.loads(json.loads(m["Body"])["Message"]) for m in messages)
        sqs.delete_message_batch(
            QueueUrl=url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)
            ],
        )


def queue_depth(stack: Stack, url: str) -> int:
    attrs = stack.client("sqs").get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) + int(
        attrs["ApproximateNumberOfMessagesNotVisible"]
    )


def wait_drained(stack: Stack, url: str, timeout: float) -> bool:
    """Until ``url`` holds nothing, visible or in flight, twice in a row."""
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
    stack: Stack, uploads: Sequence[Upload], notifications: Sequence[dict[str, Any]]
) -> Reconciliation:
    catalog = Catalog(stack.client("dynamodb"), stack.table)
    s3 = stack.client("s3")
    result = Reconciliation(uploads=len(uploads))
    for upload in uploads:
        record = catalog.get(stack.uploads_bucket, upload.key) or {}
        status = record.get("status")
        thumbs = record.get("thumbnails", [])
        if (
            status == "DONE"
            and thumbs
            and all(_exists(s3, stack.derived_bucket, t["key"]) for t in thumbs)
        ):
            result.done += 1
        elif status == "REJECTED":
            result.rejected += 1
        elif status == "FAILED":
            result.failed += 1
        else:
            result.lost += 1
            result.lost_keys.append(upload.key)
            continue
        if status != upload.expected and status != "FAILED":
            result.wrong += 1
    announced = Counter((n["bucket"], n["key"], n["version"], n["status"]) for n in notifications)
    result.duplicates_notified = sum(c - 1 for c in announced.values() if c > 1)
    return result
