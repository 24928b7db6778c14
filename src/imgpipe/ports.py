"""What the pipeline and the other handlers need from AWS: small protocols, so each can be
built with in-memory doubles (tests/harness/memory_ports.py) as well as with the DynamoDB, S3,
SNS and SQS adapters (``catalog.Catalog``, ``storage.ObjectStore``, ``storage.Presigned``,
``notify.Notifier``, ``redrive.SqsQueues``). ``bootstrap.py`` wires each handler."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import IO, TYPE_CHECKING, Protocol

from .imaging.types import Limits, Thumbnail
from .record import ImageRecord

if TYPE_CHECKING:
    from .catalog import PageKey
    from .outcomes import Status


class CatalogPort(Protocol):
    def get(self, bucket: str, key: str) -> ImageRecord | None: ...

    def replace(
        self, record: ImageRecord, expected: ImageRecord | None, *, newer: bool = True
    ) -> bool:
        """Store ``record`` only if the catalog still holds ``expected`` (None: nothing) and,
        with ``newer``, only if ``record`` outranks it; False when another write came first."""
        ...

    def mark_notified(self, record: ImageRecord) -> bool: ...

    def clear_cleanup(self, record: ImageRecord) -> bool: ...


@dataclass(frozen=True, slots=True)
class LiveObject:
    """An object as S3 holds it now: its ETag (unquoted) and version id ("" unversioned)."""

    etag: str
    version_id: str = ""


class StorePort(Protocol):
    def live(self, bucket: str, key: str, version_id: str = "") -> LiveObject | None:
        """What S3 holds at ``key`` now (that version, if given), or None when it is gone."""
        ...

    def fetch(self, bucket: str, key: str, etag: str, limits: Limits) -> tuple[bytes, str]:
        """The object's bytes and version id; refused by size before the body is read."""
        ...

    def put_thumbnail(self, bucket: str, key: str, thumb: Thumbnail) -> None: ...

    def listing(
        self, bucket: str, prefix: str, after: str = "", page_size: int = 1000
    ) -> Iterator[Listed]:
        """The objects under ``prefix`` (the renditions of one key), in key order."""
        ...

    def put_document(self, bucket: str, key: str, body: bytes, content_type: str) -> None: ...

    def delete(self, bucket: str, keys: Iterable[str]) -> int: ...


class Publisher(Protocol):
    def publish(self, record: ImageRecord) -> None: ...


class CatalogReader(Protocol):
    """The catalog as the status API and reconcile read it."""

    def get(self, bucket: str, key: str) -> ImageRecord | None: ...

    def page(
        self,
        bucket: str,
        *,
        prefix: str = "",
        status: Status | None = None,
        limit: int = 25,
        start: PageKey | None = None,
        max_reads: int = 0,
    ) -> tuple[list[ImageRecord], PageKey | None]: ...


class Presigner(Protocol):
    """Signed requests a client makes itself, without AWS keys."""

    def get_url(self, bucket: str, key: str, expires: int) -> str:
        """A presigned GET of one object, valid ``expires`` seconds."""
        ...

    def post_form(
        self,
        bucket: str,
        key: str,
        fields: dict[str, str],
        conditions: list[object],
        expires: int,
    ) -> tuple[str, dict[str, str]]:
        """A presigned POST for exactly ``key``: the URL and the form's fields."""
        ...


@dataclass(frozen=True, slots=True)
class QueuedMessage:
    """A message as received: what a redrive must carry over intact (body and attributes)."""

    message_id: str
    receipt: str
    body: str
    receive_count: int = 0
    # name -> (data type, string value or None, binary value or None)
    attributes: tuple[tuple[str, str, str | None, bytes | None], ...] = ()


@dataclass(frozen=True, slots=True)
class MoveTask:
    """An SQS message move task as ``ListMessageMoveTasks`` reports it."""

    status: str  # RUNNING, COMPLETED, CANCELLING, CANCELLED or FAILED
    moved: int  # ApproximateNumberOfMessagesMoved
    to_move: int | None = None  # ApproximateNumberOfMessagesToMove (set while RUNNING)
    failure_reason: str = ""
    handle: str = ""  # SQS returns it only while the task is RUNNING
    started_ms: int = 0

    @property
    def finished(self) -> bool:
        return self.status in ("COMPLETED", "CANCELLED", "FAILED")


class QueuePort(Protocol):
    """The queues as redrive uses them."""

    def depth(self, url: str) -> int:
        """Messages waiting (not those in flight)."""
        ...

    def receive(self, url: str, count: int, visibility: int) -> list[QueuedMessage]:
        """Up to ``count`` (≤ 10) messages, hidden for ``visibility`` seconds; no waiting."""
        ...

    def release(self, url: str, receipts: list[str]) -> None:
        """Make received messages visible again at once."""
        ...

    def send(self, url: str, messages: list[QueuedMessage]) -> tuple[set[int], list[str]]:
        """Copies of ``messages`` (≤ 10, body and attributes): the indices sent, and why the
        others were not."""
        ...

    def delete(self, url: str, receipts: list[str]) -> None: ...

    def start_move(self, source_url: str, destination_url: str) -> str | None:
        """A server-side move of every message; its task handle, or None where the endpoint
        offers none. Raises the endpoint's error when it refuses to start one."""
        ...

    def latest_move(self, source_url: str) -> MoveTask | None:
        """The most recent move task out of ``source_url``; None if there is none or the
        endpoint has no move tasks."""
        ...


@dataclass(frozen=True, slots=True)
class Listed:
    """An object as a listing shows it."""

    key: str
    etag: str  # unquoted
    size: int
    modified: datetime


class BucketReader(Protocol):
    """A bucket as reconcile and backfill read it: listed in key order, and read."""

    def listing(
        self, bucket: str, prefix: str, after: str = "", page_size: int = 1000
    ) -> Iterator[Listed]:
        """The objects under ``prefix`` after the key ``after``, in key order."""
        ...

    def read(self, bucket: str, key: str, limit: int) -> bytes:
        """At most ``limit`` bytes of an object; SourceMissing when it is gone."""
        ...

    def stream(self, bucket: str, key: str) -> IO[bytes]:
        """An object's body, to read as it arrives (inventory reports)."""
        ...


class ReconcileStore(StorePort, BucketReader, Protocol):
    """What reconcile reads and repairs."""


class RecordStore(CatalogPort, CatalogReader, Protocol):
    """The catalog as reconcile and backfill use it."""

    def get_many(self, bucket: str, keys: list[str]) -> dict[str, ImageRecord]: ...


class Sender(Protocol):
    """Backfill messages into the images queue, at a rate."""

    def within(self, seconds: float) -> int:
        """How many messages the rate lets out in ``seconds``."""
        ...

    def send(self, bodies: list[str]) -> None: ...
