"""Move messages from the DLQ back to the images queue after an incident.

SQS ``StartMessageMoveTask`` does this server-side where the endpoint supports it. Elsewhere
(MiniStack, older LocalStack) and whenever a cap on the number of messages is asked for,
messages are moved by hand: receive -> send to the source queue with body and attributes
intact -> delete from the DLQ only what was sent. A message is never deleted before its copy
exists, so a crash mid-way can duplicate a message (harmless: processing is idempotent) but never
lose one.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from .codec import JsonObject, unstructure
from .errors import Unsupported, translate
from .events import MalformedEvent, parse_body

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import (
        ChangeMessageVisibilityBatchRequestEntryTypeDef,
        DeleteMessageBatchRequestEntryTypeDef,
        MessageAttributeValueOutputTypeDef,
        MessageAttributeValueTypeDef,
        MessageTypeDef,
        SendMessageBatchRequestEntryTypeDef,
    )

_PEEK_VISIBILITY = 30


@dataclass(frozen=True, slots=True)
class DlqMessage:
    """What an operator needs to know about a DLQ message: which uploads it is about."""

    message_id: str
    keys: tuple[str, ...]  # "bucket/key", or "<malformed: ...>"
    receive_count: int


@dataclass(frozen=True, slots=True)
class RedriveResult:
    moved: int
    remaining: int
    dry_run: bool
    task: str | None = None  # a StartMessageMoveTask handle
    messages: tuple[DlqMessage, ...] = ()  # dry runs list what would move

    def as_json(self) -> JsonObject:
        doc = unstructure(self)
        assert isinstance(doc, dict)
        doc.setdefault("task", None)
        if not self.dry_run:
            doc.pop("messages", None)
        return doc


@dataclass(frozen=True, slots=True)
class Queues:
    source_url: str
    dlq_url: str


def _arn(sqs: SQSClient, url: str) -> str:
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
    return attrs["QueueArn"]


def depth(sqs: SQSClient, url: str) -> int:
    attrs = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attrs.get("ApproximateNumberOfMessages", 0))


def describe(message: MessageTypeDef) -> DlqMessage:
    try:
        keys = tuple(f"{e.bucket}/{e.key}" for e in parse_body(message.get("Body", "")))
    except MalformedEvent as exc:
        keys = (f"<malformed: {exc}>",)
    return DlqMessage(
        message_id=message.get("MessageId", ""),
        keys=keys,
        receive_count=int(message.get("Attributes", {}).get("ApproximateReceiveCount", 0)),
    )


def _receive(sqs: SQSClient, url: str, count: int, visibility: int) -> list[MessageTypeDef]:
    resp = sqs.receive_message(
        QueueUrl=url,
        MaxNumberOfMessages=max(1, min(10, count)),
        WaitTimeSeconds=0,
        VisibilityTimeout=visibility,
        MessageAttributeNames=["All"],
        MessageSystemAttributeNames=["All"],
    )
    return list(resp.get("Messages", []))


def _batches(
    sqs: SQSClient, url: str, limit: int, visibility: int
) -> Iterator[list[MessageTypeDef]]:
    taken = 0
    while taken < limit:
        batch = _receive(sqs, url, limit - taken, visibility)
        if not batch:
            return
        taken += len(batch)
        yield batch


def peek(sqs: SQSClient, queues: Queues, max_messages: int) -> list[DlqMessage]:
    """List up to ``max_messages`` DLQ messages without moving them. They are hidden only for the
    moment of the listing and made visible again at once."""
    seen: dict[str, DlqMessage] = {}
    handles: list[tuple[str, str]] = []
    for batch in _batches(sqs, queues.dlq_url, max_messages, _PEEK_VISIBILITY):
        for message in batch:
            seen.setdefault(message["MessageId"], describe(message))
            handles.append((message["MessageId"], message["ReceiptHandle"]))
    for start in range(0, len(handles), 10):
        entries: list[ChangeMessageVisibilityBatchRequestEntryTypeDef] = [
            {"Id": str(i), "ReceiptHandle": handle, "VisibilityTimeout": 0}
            for i, (_, handle) in enumerate(handles[start : start + 10])
        ]
        sqs.change_message_visibility_batch(QueueUrl=queues.dlq_url, Entries=entries)
    return list(seen.values())


def _move_task(sqs: SQSClient, queues: Queues) -> str | None:
    """Start a server-side move; None when the endpoint does not offer one."""
    try:
        resp = sqs.start_message_move_task(
            SourceArn=_arn(sqs, queues.dlq_url), DestinationArn=_arn(sqs, queues.source_url)
        )
    except ClientError as exc:
        if isinstance(translate("sqs", exc), Unsupported):
            return None
        raise
    return resp["TaskHandle"]


def _copy_attribute(attr: MessageAttributeValueOutputTypeDef) -> MessageAttributeValueTypeDef:
    copied: MessageAttributeValueTypeDef = {"DataType": attr["DataType"]}
    if "StringValue" in attr:
        copied["StringValue"] = attr["StringValue"]
    if "BinaryValue" in attr:
        copied["BinaryValue"] = attr["BinaryValue"]
    return copied


def move(sqs: SQSClient, queues: Queues, max_messages: int) -> int:
    """Receive -> send -> delete in batches of ten; returns how many moved."""
    moved = 0
    # Long enough for a send and a delete; short enough that a crash returns them soon.
    for batch in _batches(sqs, queues.dlq_url, max_messages, 60):
        entries: list[SendMessageBatchRequestEntryTypeDef] = [
            {
                "Id": str(i),
                "MessageBody": m["Body"],
                "MessageAttributes": {
                    name: _copy_attribute(attr)
                    for name, attr in m.get("MessageAttributes", {}).items()
                },
            }
            for i, m in enumerate(batch)
        ]
        sent = sqs.send_message_batch(QueueUrl=queues.source_url, Entries=entries)
        ok = {s["Id"] for s in sent.get("Successful", [])}
        deletes: list[DeleteMessageBatchRequestEntryTypeDef] = [
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
            for i, m in enumerate(batch)
            if str(i) in ok
        ]
        if deletes:
            sqs.delete_message_batch(QueueUrl=queues.dlq_url, Entries=deletes)
        moved += len(deletes)
        if len(ok) < len(batch):
            failed = [f.get("Message", "") for f in sent.get("Failed", [])]
            raise RuntimeError(f"could not re-send {len(batch) - len(ok)} messages: {failed}")
    return moved


def redrive(
    sqs: SQSClient,
    queues: Queues,
    max_messages: int | None = None,
    dry_run: bool = False,
    *,
    use_move_task: bool = True,
) -> RedriveResult:
    """Redrive the DLQ. ``max_messages=None`` means all of it. ``use_move_task=False`` skips
    StartMessageMoveTask (moto answers it with a bare 500 that looks like a real outage)."""
    before = depth(sqs, queues.dlq_url)
    limit = before if max_messages is None else max_messages
    if dry_run:
        listed = tuple(peek(sqs, queues, limit))
        return RedriveResult(moved=0, remaining=before, dry_run=True, messages=listed)
    task = _move_task(sqs, queues) if use_move_task and max_messages is None else None
    if task is not None:
        return RedriveResult(moved=before, remaining=0, dry_run=False, task=task)
    moved = move(sqs, queues, limit)
    return RedriveResult(moved=moved, remaining=depth(sqs, queues.dlq_url), dry_run=False)


def parse_request(event: object) -> tuple[int | None, bool]:
    """Accept ``{"max_messages": N, "dry_run": bool}`` (a JSON string too, as ``sls invoke -d``
    may pass it). Raises ValueError with a usable message on anything else."""
    if isinstance(event, str):
        event = json.loads(event) if event.strip() else {}
    if event is None:
        event = {}
    if not isinstance(event, dict):
        raise ValueError('expected {"max_messages": N, "dry_run": true|false}')
    unknown = set(event) - {"max_messages", "dry_run"}
    if unknown:
        raise ValueError(f"unknown fields {sorted(unknown)}; expected max_messages, dry_run")
    raw_max = event.get("max_messages")
    if raw_max is not None and (
        isinstance(raw_max, bool) or not isinstance(raw_max, int) or raw_max < 1
    ):
        raise ValueError(f"max_messages must be a positive integer, got {raw_max!r}")
    dry_run = event.get("dry_run", False)
    if not isinstance(dry_run, bool):
        raise ValueError(f"dry_run must be true or false, got {dry_run!r}")
    return raw_max, dry_run
