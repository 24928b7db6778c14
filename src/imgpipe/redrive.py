"""Move messages from the DLQ back to the images queue after an incident.

SQS ``StartMessageMoveTask`` does this server-side where the endpoint supports it, and SQS
decides later whether it worked: the task is followed with ``ListMessageMoveTasks`` until it
ends or the invocation runs short of time, and its real outcome is reported (RUNNING with the
count so far, COMPLETED with SQS's own count, FAILED or CANCELLED with SQS's reason).

The copy path moves messages by hand: receive -> send to the source queue with body and
attributes intact -> delete from the DLQ only what was sent. A message is never deleted before
its copy exists, so a crash mid-way can duplicate a message (harmless: processing is idempotent)
but never lose one. It runs where there are no move tasks (MiniStack, older LocalStack), when a
cap on the number of messages is asked for, and as the fallback when a task cannot be started
or FAILED: its sends are the redrive role's own, which the images queue's policy names, while
whether SQS evaluates that policy against the role for a move task is not documented. A
CANCELLED task is someone's decision and is not overridden.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from .codec import JsonObject, unstructure
from .errors import describe as describe_error
from .events import MalformedEvent, parse_body
from .ports import MoveTask

if TYPE_CHECKING:
    from .ports import QueuedMessage, QueuePort

_PEEK_VISIBILITY = 30
POLL_SECONDS = 2.0  # between ListMessageMoveTasks calls while a task runs
TIME_MARGIN = 5.0  # seconds of the invocation kept to answer after the last poll
# How long the function follows a task before it answers RUNNING (and the CLI follows on): a
# synchronous invoke's caller waits for the answer, and botocore's read timeout is 60 s.
FOLLOW_IN_FUNCTION = 40.0


@dataclass(frozen=True, slots=True)
class DlqMessage:
    """What an operator needs to know about a DLQ message: which uploads it is about."""

    message_id: str
    keys: tuple[str, ...]  # "bucket/key", or "<malformed: ...>"
    receive_count: int


@dataclass(frozen=True, slots=True)
class RedriveResult:
    moved: int  # the move task's count (SQS's own) plus what the copy path moved
    remaining: int
    dry_run: bool
    task: str | None = None  # a StartMessageMoveTask handle
    messages: tuple[DlqMessage, ...] = ()  # dry runs list what would move
    # the task's last known state: RUNNING (still moving when the invocation had to answer),
    # COMPLETED, CANCELLING, CANCELLED or FAILED; "" when no task ran
    task_status: str = ""
    task_moved: int = 0
    task_to_move: int | None = None
    failure_reason: str = ""  # SQS's FailureReason, or why no task could be started
    copied: bool = False  # the copy path ran (no task, a capped move, or the fallback)

    @property
    def task_failed(self) -> bool:
        return self.task_status in ("FAILED", "CANCELLED", "CANCELLING")

    def as_json(self) -> JsonObject:
        doc = unstructure(self)
        assert isinstance(doc, dict)
        doc.setdefault("task", None)
        if not self.dry_run:
            doc.pop("messages", None)
        return doc

    def summary(self) -> str:
        """One line for the operator: what SQS did, then what the copy path did."""
        left = f"{self.remaining} left in the DLQ"
        if not self.task_status:
            why = self.failure_reason
            return f"moved {self.moved}, {left}" + (
                f" (by copy: the move task could not start: {why})" if why else ""
            )
        task = f"move task {self.task or ''} {self.task_status}".replace("  ", " ")
        if self.task_status == "RUNNING":
            of = f" of {self.task_to_move}" if self.task_to_move is not None else ""
            return f"{task}: {self.task_moved}{of} moved so far, {left}"
        if self.task_status == "COMPLETED":
            return f"{task}: moved {self.task_moved} (SQS's count), {left}"
        line = f"{task}: {self.failure_reason or 'no reason given'}; it moved {self.task_moved}"
        if self.copied:
            line += f"; the copy path then moved {self.moved - self.task_moved}"
        return f"{line}, {left}"


@dataclass(frozen=True, slots=True)
class Patience:
    """How long a started move task may be followed: the invocation's remaining seconds (the
    CLI: its own deadline), and how to wait between polls."""

    time_left: Callable[[], float] = lambda: FOLLOW_IN_FUNCTION
    sleep: Callable[[float], None] = time.sleep

    @classmethod
    def within(cls, seconds: float, clock: Callable[[], float] = time.monotonic) -> Patience:
        """At most ``seconds`` from now."""
        deadline = clock() + seconds
        return cls(time_left=lambda: deadline - clock())


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


def follow(
    queue: QueuePort,
    dlq_url: str,
    patience: Patience,
    on_progress: Callable[[MoveTask], None] | None = None,
) -> MoveTask | None:
    """Poll the DLQ's latest move task until it ends or ``patience`` runs out (keeping
    TIME_MARGIN to answer); its last known state. Only one task runs per source queue, so the
    latest is the one just started (SQS returns no handle once a task has ended)."""
    while True:
        task = queue.latest_move(dlq_url)
        if task is None or task.finished:
            return task
        if on_progress is not None:
            on_progress(task)
        if patience.time_left() < POLL_SECONDS + TIME_MARGIN:
            return task
        patience.sleep(POLL_SECONDS)


def redrive(
    queue: QueuePort,
    queues: Queues,
    max_messages: int | None = None,
    dry_run: bool = False,
    *,
    use_move_task: bool = True,
    patience: Patience = Patience(),
) -> RedriveResult:
    """Redrive the DLQ. ``max_messages=None`` means all of it. ``use_move_task=False`` skips
    StartMessageMoveTask (moto answers it with a bare 500 that looks like a real outage).
    ``queue``: SQS (``queues.SqsQueues``) or, in tests, its in-memory double."""
    before = depth(queue, queues.dlq_url)
    limit = before if max_messages is None else max_messages
    if dry_run:
        listed = tuple(peek(queue, queues, limit))
        return RedriveResult(moved=0, remaining=before, dry_run=True, messages=listed)
    if not use_move_task or max_messages is not None:
        return _copied(queue, queues, limit)
    try:
        handle = queue.start_move(queues.dlq_url, queues.source_url)
        refused = ""
    except ClientError as exc:  # e.g. AccessDenied, or a task already running
        handle, refused = None, describe_error(exc)
    # Not started (refused, or "unsupported", which SQS may also answer while another task
    # runs): follow a task that is RUNNING rather than race it; copy when there is none.
    if handle is None:
        running = queue.latest_move(queues.dlq_url)
        if running is None or running.status != "RUNNING":
            return _copied(queue, queues, limit, failure_reason=refused)
    task = follow(queue, queues.dlq_url, patience)
    if task is None:  # started, but SQS lists no task (yet): say so rather than guess
        task = MoveTask("UNKNOWN", 0, failure_reason="ListMessageMoveTasks lists no task yet")
    result = RedriveResult(
        moved=task.moved,
        remaining=depth(queue, queues.dlq_url),
        dry_run=False,
        task=handle or task.handle or None,
        task_status=task.status,
        task_moved=task.moved,
        task_to_move=task.to_move,
        failure_reason=task.failure_reason,
    )
    if task.status != "FAILED":
        return result
    copied = move(queue, queues, depth(queue, queues.dlq_url))
    return replace(
        result, moved=task.moved + copied, remaining=depth(queue, queues.dlq_url), copied=True
    )


def _copied(
    queue: QueuePort, queues: Queues, limit: int, failure_reason: str = ""
) -> RedriveResult:
    moved = move(queue, queues, limit)
    return RedriveResult(
        moved=moved,
        remaining=depth(queue, queues.dlq_url),
        dry_run=False,
        failure_reason=failure_reason,
        copied=True,
    )


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
