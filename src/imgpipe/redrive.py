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

from .codec import JsonObject, unstructure
from .events import MalformedEvent, parse_body

if TYPE_CHECKING:
    from .ports import QueuedMessage, QueuePort

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


def describe(message: QueuedMessage) -> DlqMessage:
    try:
        keys = tuple(f"{e.bucket}/{e.key}" for e in parse_body(message.body))
    except MalformedEvent as exc:
        keys = (f"<malformed: {exc}>",)
    return DlqMessage(message.message_id, keys, message.receive_count)


def _batches(
    queue: QueuePort, url: str, limit: int, visibility: int
) -> Iterator[list[QueuedMessage]]:
    taken = 0
    while taken < limit:
        batch = queue.receive(url, max(1, min(10, limit - taken)), visibility)
        if not batch:
            return
        taken += len(batch)
        yield batch


def depth(queue: QueuePort, url: str) -> int:
    return queue.depth(url)


def peek(queue: QueuePort, queues: Queues, max_messages: int) -> list[DlqMessage]:
    """List up to ``max_messages`` DLQ messages without moving them. They are hidden only for the
    moment of the listing and made visible again at once."""
    seen: dict[str, DlqMessage] = {}
    receipts: list[str] = []
    for batch in _batches(queue, queues.dlq_url, max_messages, _PEEK_VISIBILITY):
        for message in batch:
            seen.setdefault(message.message_id, describe(message))
            receipts.append(message.receipt)
    queue.release(queues.dlq_url, receipts)
    return list(seen.values())


def move(queue: QueuePort, queues: Queues, max_messages: int) -> int:
    """Receive -> send -> delete in batches of ten; returns how many moved."""
    moved = 0
    # Long enough for a send and a delete; short enough that a crash returns them soon.
    for batch in _batches(queue, queues.dlq_url, max_messages, 60):
        sent, failures = queue.send(queues.source_url, batch)
        done = [m.receipt for i, m in enumerate(batch) if i in sent]
        if done:
            queue.delete(queues.dlq_url, done)
        moved += len(done)
        if len(sent) < len(batch):
            raise RuntimeError(f"could not re-send {len(batch) - len(sent)} messages: {failures}")
    return moved


def redrive(
    queue: QueuePort,
    queues: Queues,
    max_messages: int | None = None,
    dry_run: bool = False,
    *,
    use_move_task: bool = True,
) -> RedriveResult:
    """Redrive the DLQ. ``max_messages=None`` means all of it. ``use_move_task=False`` skips
    StartMessageMoveTask (moto answers it with a bare 500 that looks like a real outage).
    ``queue``: SQS (``queues.SqsQueues``) or, in tests, its in-memory double."""
    before = depth(queue, queues.dlq_url)
    limit = before if max_messages is None else max_messages
    if dry_run:
        listed = tuple(peek(queue, queues, limit))
        return RedriveResult(moved=0, remaining=before, dry_run=True, messages=listed)
    task = (
        queue.start_move(queues.dlq_url, queues.source_url)
        if use_move_task and max_messages is None
        else None
    )
    if task is not None:
        return RedriveResult(moved=before, remaining=0, dry_run=False, task=task)
    moved = move(queue, queues, limit)
    return RedriveResult(moved=moved, remaining=depth(queue, queues.dlq_url), dry_run=False)


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
