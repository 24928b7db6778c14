"""Move messages from the DLQ back to the images queue after an incident.

SQS ``StartMessageMoveTask`` does this server-side where the endpoint supports it. Elsewhere (moto,
older LocalStack) and whenever a cap on the number of messages is asked for, messages are moved by
hand: receive -> send to the source queue with body and attributes intact -> delete from the DLQ
only what was sent. A message is never deleted before its copy exists, so a crash mid-way can
duplicate a message (harmless: processing is idempotent) but never lose one.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from .events import MalformedEvent, parse_body

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageTypeDef

_UNSUPPORTED = {"UnsupportedOperation", "InvalidAction", "NotImplemented", "501"}
_PEEK_VISIBILITY = 30


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


def describe(message: MessageTypeDef) -> dict[str, Any]:
    """What an operator needs to know about a DLQ message: which uploads it is about."""
    try:
        keys = [f"{e.bucket}/{e.key}" for e in parse_body(message.get("Body", ""))]
    except MalformedEvent as exc:
        keys = [f"<malformed: {exc}>"]
    return {
        "message_id": message.get("MessageId", ""),
        "keys": keys,
        "receive_count": int(message.get("Attributes", {}).get("ApproximateReceiveCount", 0)),
    }


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


def _batches(sqs: SQSClient, url: str, limit: int, visibility: int) -> Iterator[list[Any]]:
    taken = 0
    while taken < limit:
        batch = _receive(sqs, url, limit - taken, visibility)
        if not batch:
            return
        taken += len(batch)
        yield batch


def peek(sqs: SQSClient, queues: Queues, max_messages: int) -> list[dict[str, Any]]:
    """List up to ``max_messages`` DLQ messages without moving them. They are hidden only for the
    moment of the listing and made visible again at once."""
    seen: dict[str, dict[str, Any]] = {}
    handles: list[tuple[str, str]] = []
    for batch in _batches(sqs, queues.dlq_url, max_messages, _PEEK_VISIBILITY):
        for message in batch:
            seen.setdefault(message["MessageId"], describe(message))
            handles.append((message["MessageId"], message["ReceiptHandle"]))
    for start in range(0, len(handles), 10):
        entries = [
            {"Id": str(i), "ReceiptHandle": handle, "VisibilityTimeout": 0}
            for i, (_, handle) in enumerate(handles[start : start + 10])
        ]
        sqs.change_message_visibility_batch(QueueUrl=queues.dlq_url, Entries=entries)  # type: ignore[arg-type]
    return list(seen.values())


def _move_task(sqs: SQSClient, queues: Queues) -> str | None:
    """Start a server-side move; None when the endpoint does not offer one."""
    try:
        resp = sqs.start_message_move_task(
            SourceArn=_arn(sqs, queues.dlq_url), DestinationArn=_arn(sqs, queues.source_url)
        )
    except ClientError as exc:
        error = exc.response.get("Error", {})
        status = str(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
        if error.get("Code") in _UNSUPPORTED or status in _UNSUPPORTED:
            return None
        raise
    return resp["TaskHandle"]


def _copy_attributes(message: MessageTypeDef) -> dict[str, Any]:
    copied: dict[str, Any] = {}
    for name, attr in message.get("MessageAttributes", {}).items():
        value = {k: v for k, v in attr.items() if k in {"DataType", "StringValue", "BinaryValue"}}
        copied[name] = value
    return copied


def move(sqs: SQSClient, queues: Queues, max_messages: int) -> int:
    """Receive -> send -> delete in batches of ten; returns how many moved."""
    moved = 0
    # Long enough for a send and a delete; short enough that a crash returns them soon.
    for batch in _batches(sqs, queues.dlq_url, max_messages, 60):
        entries = [
            {
                "Id": str(i),
                "MessageBody": m["Body"],
                "MessageAttributes": _copy_attributes(m),
            }
            for i, m in enumerate(batch)
        ]
        sent = sqs.send_message_batch(QueueUrl=queues.source_url, Entries=entries)  # type: ignore[arg-type]
        ok = {s["Id"] for s in sent.get("Successful", [])}
        deletes = [
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
            for i, m in enumerate(batch)
            if str(i) in ok
        ]
        if deletes:
            sqs.delete_message_batch(QueueUrl=queues.dlq_url, Entries=deletes)  # type: ignore[arg-type]
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
) -> dict[str, Any]:
    """Redrive the DLQ. ``max_messages=None`` means all of it. ``use_move_task=False`` skips
    StartMessageMoveTask (moto answers it with a bare 500 that looks like a real outage)."""
    before = depth(sqs, queues.dlq_url)
    limit = before if max_messages is None else max_messages
    if dry_run:
        listed = peek(sqs, queues, limit)
        return {"moved": 0, "remaining": before, "dry_run": True, "messages": listed, "task": None}
    task = _move_task(sqs, queues) if use_move_task and max_messages is None else None
    if task is not None:
        return {"moved": before, "remaining": 0, "dry_run": False, "task": task}
    moved = move(sqs, queues, limit)
    return {"moved": moved, "remaining": depth(sqs, queues.dlq_url), "dry_run": False, "task": None}


def parse_request(event: Any) -> tuple[int | None, bool]:
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
