"""Test harness: scripted uploads, overwrites and deletes, then every key reconciled against the
catalog, the derived bucket and the notifications sent.

Used by ``bench/chaos.py`` (``make chaos``) and the functional chaos test: after faults, crashes,
retries, the DLQ and a redrive, every key must end as its last action calls for (DONE with its
thumbnails, REJECTED, DELETED), each outcome announced at most once, and the derived bucket must
hold nothing that no live version owns. Not part of the package.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
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
from imgpipe.storage import ObjectStore

from .wait import poll


@dataclass(frozen=True, slots=True)
class Op:
    """One user action on a key: upload ``body``, or delete it (``body`` None)."""

    key: str
    body: bytes | None
    expected: Status  # the outcome if this is the key's last action: DONE, REJECTED, DELETED

    @property
    def etag(self) -> str:
        return "" if self.body is None else hashlib.md5(self.body).hexdigest()


@dataclass(frozen=True, slots=True)
class Script:
    """Rounds of actions, at most one per key per round, run one round after another while the
    pipeline works (so a key's later actions race the processing of its earlier ones)."""

    rounds: tuple[tuple[Op, ...], ...]

    @property
    def ops(self) -> list[Op]:
        return [op for round_ in self.rounds for op in round_]

    def final(self) -> dict[str, Op]:
        """Each key's last action: what its record must end as."""
        return {op.key: op for op in self.ops}

    @property
    def uploads(self) -> int:
        return sum(op.body is not None for op in self.ops)

    @property
    def deletes(self) -> int:
        return sum(op.body is None for op in self.ops)

    @property
    def overwrites(self) -> int:
        """Uploads onto a key that holds an object at that moment."""
        live: set[str] = set()
        count = 0
        for op in self.ops:
            if op.body is None:
                live.discard(op.key)
            else:
                count += op.key in live
                live.add(op.key)
        return count


NOT_AN_IMAGE = b"not an image\n"


def make_script(  # noqa: PLR0913 - one share per kind of sequence
    keys: int,
    photos: Sequence[Path],
    prefix: str,
    *,
    bad_every: int = 20,
    overwrite: float = 0.22,
    to_non_image: float = 0.08,
    delete: float = 0.15,
    delete_reupload: float = 0.14,
) -> Script:
    """``keys`` first uploads cycling through ``photos`` (every ``bad_every``-th not an image);
    then, each on keys of their own: overwrites with other bytes, photos replaced by a
    non-image, deletes, and deletes followed by a re-upload in a third round."""
    cache = [p.read_bytes() for p in photos]
    first: list[Op] = []
    for i in range(keys):
        if bad_every and i % bad_every == bad_every - 1:
            first.append(Op(f"{prefix}{i:05d}-notes.jpg", NOT_AN_IMAGE, Status.REJECTED))
        else:
            name = photos[i % len(photos)].name
            first.append(Op(f"{prefix}{i:05d}-{name}", cache[i % len(cache)], Status.DONE))
    photo_keys = [op.key for op in first if op.expected is Status.DONE]
    counts = [int(keys * share) for share in (overwrite, to_non_image, delete, delete_reupload)]
    if sum(counts) > len(photo_keys):
        raise ValueError("the shares add up to more keys than there are photos")
    groups: list[list[str]] = []
    for n in counts:
        start = sum(len(g) for g in groups)
        groups.append(photo_keys[start : start + n])
    overwritten, to_bad, deleted, recreated = groups
    # another photo's bytes (a trailing byte keeps JPEG decoders happy and the ETag new)
    second = [
        Op(k, cache[(i + 1) % len(cache)] + b"\0", Status.DONE) for i, k in enumerate(overwritten)
    ]
    second += [Op(k, NOT_AN_IMAGE, Status.REJECTED) for k in to_bad]
    second += [Op(k, None, Status.DELETED) for k in deleted + recreated]
    third = [Op(k, cache[i % len(cache)], Status.DONE) for i, k in enumerate(recreated)]
    return Script((tuple(first), tuple(second), tuple(third)))


def perform(stack: Stack, ops: Sequence[Op], workers: int = 8) -> None:
    """One round of actions, concurrently (distinct keys)."""
    from concurrent.futures import ThreadPoolExecutor

    s3 = stack.client("s3")

    def act(op: Op) -> None:
        if op.body is None:
            s3.delete_object(Bucket=stack.uploads_bucket, Key=op.key)
        else:
            s3.put_object(Bucket=stack.uploads_bucket, Key=op.key, Body=op.body)

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(act, ops))


@dataclass
class Reconciliation:
    uploads: int = 0
    overwrites: int = 0
    deletes: int = 0
    done: int = 0
    rejected: int = 0
    deleted: int = 0
    failed: int = 0
    lost: int = 0  # no final record of the key's last action
    wrong: int = 0  # final, but not the outcome the last action calls for
    duplicates_notified: int = 0
    # execution environments SIGKILLed: one killed between a publish and its mark may announce
    # that outcome once more (announcements are at least once, docs/reliability.md)
    killed: int = 0
    orphans: int = -1  # derived objects no live version owns (-1: not checked)
    stale_results: int = -1  # results documents owned by nobody or describing another version
    lost_keys: list[str] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (
            f"uploads={self.uploads} overwrites={self.overwrites} deletes={self.deletes} "
            f"done={self.done} rejected={self.rejected} deleted={self.deleted} "
            f"failed={self.failed} lost={self.lost} "
            f"duplicates_notified={self.duplicates_notified} "
            f"orphans={self.orphans} stale_results={self.stale_results} killed={self.killed}"
        )

    @property
    def ok(self) -> bool:
        return (
            self.lost == self.wrong == self.failed == 0
            and self.duplicates_notified <= self.killed
            and self.orphans == 0
            and self.stale_results == 0
        )


def subscribe_inbox(
    stack: Stack,
    name: str,
    filter_policy: dict[str, Any] | None = None,
    *,
    topic: str | None = None,
    raw: bool = False,
) -> str:
    """A new queue (``name`` plus a unique suffix: on a long-lived endpoint an earlier run's
    queue and subscription are still there) subscribed to ``topic`` (default: the events
    topic), to see what was sent. As on AWS, the queue's policy must let the topic send to it
    (MiniStack enforces that)."""
    topic = topic or stack.topic_arn
    sqs, sns = stack.client("sqs"), stack.client("sns")
    url: str = sqs.create_queue(QueueName=f"{name}-{uuid.uuid4().hex[:12]}")["QueueUrl"]
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
                "Condition": {"ArnEquals": {"aws:SourceArn": topic}},
            }
        ],
    }
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(policy)})
    attributes = {"FilterPolicy": json.dumps(filter_policy)} if filter_policy else {}
    if raw:
        attributes["RawMessageDelivery"] = "true"
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes=attributes)
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


def _judge(record: ImageRecord | None, last: Op, s3: Any, derived_bucket: str) -> str:
    """ "ok", "failed", "wrong" or "lost" for one key."""
    if record is None:
        return "lost"
    if record.status is Status.FAILED:
        return "failed"
    if record.status is not last.expected:
        return "wrong"
    if last.expected is Status.DONE and (
        record.etag != last.etag
        or not record.thumbnails
        or not all(_exists(s3, derived_bucket, t.key) for t in record.thumbnails)
    ):
        return "wrong"
    return "ok"


def reconcile(
    stack: Stack,
    script: Script,
    notifications: Sequence[ImageRecord],
    derived_findings: Counter[str] | None = None,
) -> Reconciliation:
    """Every key against its last action; ``derived_findings``: counts by kind from
    ``imgpipe reconcile`` (see imgpipe.reconcile), for orphans and stale results."""
    catalog = Catalog(stack.client("dynamodb"), stack.table)
    s3 = stack.client("s3")
    result = Reconciliation(
        uploads=script.uploads, overwrites=script.overwrites, deletes=script.deletes
    )
    for key, last in script.final().items():
        record = catalog.get(stack.uploads_bucket, key)
        verdict = _judge(record, last, s3, stack.derived_bucket)
        if verdict == "ok":
            counted = {Status.DONE: "done", Status.REJECTED: "rejected", Status.DELETED: "deleted"}
            name = counted[last.expected]
            setattr(result, name, getattr(result, name) + 1)
        else:
            setattr(result, verdict, getattr(result, verdict) + 1)
            result.lost_keys.append(f"{key} ({verdict}: {record.status if record else None})")
    announced = Counter((n.bucket, n.key, n.version, n.status) for n in notifications)
    result.duplicates_notified = sum(c - 1 for c in announced.values() if c > 1)
    if derived_findings is not None:
        result.orphans = derived_findings["orphan"]
        result.stale_results = derived_findings["stale_result"]
    return result


def derived_findings(stack: Stack, prefix: str) -> tuple[Counter[str], list[str]]:
    """What `imgpipe reconcile --prefix P --min-age 0` finds, in-process: counts by kind and
    one line per finding."""
    from datetime import timedelta

    from imgpipe.reconcile import Reconciler

    catalog = Catalog(stack.client("dynamodb"), stack.table)
    reconciler = Reconciler(
        ObjectStore(stack.client("s3")),
        catalog,
        stack.uploads_bucket,
        stack.derived_bucket,
        min_age=timedelta(0),
    )
    report = reconciler.run(prefix)
    lines = [f"{f.kind} {f.key}: {f.detail}" for f in report.findings]
    return Counter(f.kind for f in report.findings), lines
