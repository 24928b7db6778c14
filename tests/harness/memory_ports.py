"""In-memory doubles of the ports (``ports.py``): the pipeline, the status API, the uploads
form, reconcile, backfill and redrive built on them make their decisions without moto, boto3 or
a handler in between."""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import IO

from imgpipe.catalog import PageKey
from imgpipe.errors import SourceChanged, SourceMissing
from imgpipe.imaging.types import Limits, Thumbnail, check_size
from imgpipe.ordering import supersedes
from imgpipe.outcomes import Status
from imgpipe.ports import Listed, LiveObject, MoveTask, QueuedMessage
from imgpipe.record import ImageRecord


@dataclass
class MemoryCatalog:
    items: dict[tuple[str, str], ImageRecord] = field(default_factory=dict)

    def get(self, bucket: str, key: str) -> ImageRecord | None:
        return self.items.get((bucket, key))

    def replace(
        self, record: ImageRecord, expected: ImageRecord | None, *, newer: bool = True
    ) -> bool:
        stored = self.items.get((record.bucket, record.key))
        if (stored is None) != (expected is None):
            return False
        if stored is not None and expected is not None:
            if stored.revision != expected.revision:
                return False
            if newer and not supersedes(stored, record.version):
                return False
        self.items[(record.bucket, record.key)] = record
        return True

    def _update(self, record: ImageRecord, **changes: object) -> bool:
        stored = self.items.get((record.bucket, record.key))
        if stored is None or stored.revision != record.revision:
            return False
        self.items[(record.bucket, record.key)] = replace(stored, **changes)  # type: ignore[arg-type]
        return True

    def page(
        self,
        bucket: str,
        *,
        prefix: str = "",
        status: Status | None = None,
        limit: int = 25,
        start: PageKey | None = None,
        max_reads: int = 0,
    ) -> tuple[list[ImageRecord], PageKey | None]:
        """Key order, a status filter, and where the next page starts, as the table does
        (``max_reads`` is DynamoDB's cost, not a rule: ignored here)."""
        keys = sorted(k for b, k in self.items if b == bucket and k.startswith(prefix))
        if start is not None:
            keys = [k for k in keys if k > start.key]
        picked = [
            r
            for r in (self.items[(bucket, k)] for k in keys)
            if status is None or r.status is status
        ]
        page = picked[:limit]
        more = len(picked) > limit
        return page, (PageKey(bucket, page[-1].key) if more and page else None)

    def get_many(self, bucket: str, keys: list[str]) -> dict[str, ImageRecord]:
        return {k: self.items[(bucket, k)] for k in keys if (bucket, k) in self.items}

    def mark_notified(self, record: ImageRecord) -> bool:
        return self._update(record, notified=True)

    def clear_cleanup(self, record: ImageRecord) -> bool:
        return self._update(record, cleanup=())


def etag_of(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


@dataclass
class MemoryStore:
    """S3 as the pipeline sees it: ETags are the bytes' MD5, reads are ``IfMatch``."""

    objects: dict[tuple[str, str], bytes] = field(default_factory=dict)
    heads: int = 0  # live() calls: HEADs S3 would bill
    fetches: int = 0  # fetch() calls: GETs
    # when each object was written (LastModified); unset: a day ago
    written: dict[tuple[str, str], datetime] = field(default_factory=dict)

    def put(self, bucket: str, key: str, data: bytes, when: datetime | None = None) -> None:
        self.objects[(bucket, key)] = data
        self.written[(bucket, key)] = when or datetime.now(UTC)

    def listing(
        self, bucket: str, prefix: str, after: str = "", page_size: int = 1000
    ) -> Iterator[Listed]:
        keys = sorted(k for b, k in self.objects if b == bucket and k.startswith(prefix))
        for key in keys:
            if key > after:
                when = self.written.get((bucket, key), datetime.now(UTC) - timedelta(days=1))
                data = self.objects[(bucket, key)]
                yield Listed(key, etag_of(data), len(data), when)

    def read(self, bucket: str, key: str, limit: int) -> bytes:
        if (bucket, key) not in self.objects:
            raise SourceMissing(f"{key} is gone")
        return self.objects[(bucket, key)][:limit]

    def stream(self, bucket: str, key: str) -> IO[bytes]:
        return io.BytesIO(self.read(bucket, key, 1 << 40))

    def live(self, bucket: str, key: str, version_id: str = "") -> LiveObject | None:
        self.heads += 1
        data = self.objects.get((bucket, key))
        return None if data is None else LiveObject(etag_of(data))

    def fetch(self, bucket: str, key: str, etag: str, limits: Limits) -> tuple[bytes, str]:
        self.fetches += 1
        if (bucket, key) not in self.objects:
            raise SourceMissing(f"{key} is gone")
        data = self.objects[(bucket, key)]
        if etag and etag != etag_of(data):
            raise SourceChanged(f"{key} was replaced")
        check_size(len(data), limits)
        return data, etag_of(data)

    def put_thumbnail(self, bucket: str, key: str, thumb: Thumbnail) -> None:
        self.objects[(bucket, key)] = thumb.data

    def put_document(self, bucket: str, key: str, body: bytes, content_type: str) -> None:
        self.objects[(bucket, key)] = body

    def delete(self, bucket: str, keys: Iterable[str]) -> int:
        gone = [k for k in set(keys) if self.objects.pop((bucket, k), None) is not None]
        return len(gone)


@dataclass
class MemoryPresigner:
    """Signs nothing: says what was asked, so a test reads the URL or the form's policy."""

    secret: str = "memory"

    def get_url(self, bucket: str, key: str, expires: int) -> str:
        return f"memory://{bucket}/{key}?expires={expires}&sig={self.secret}"

    def post_form(
        self,
        bucket: str,
        key: str,
        fields: dict[str, str],
        conditions: list[object],
        expires: int,
    ) -> tuple[str, dict[str, str]]:
        policy = json.dumps({"conditions": conditions, "expires": expires}, sort_keys=True)
        return f"memory://{bucket}", {**fields, "key": key, "policy": policy}


@dataclass
class MemoryPublisher:
    sent: list[ImageRecord] = field(default_factory=list)

    def publish(self, record: ImageRecord) -> None:
        self.sent.append(record)


@dataclass
class MemoryQueues:
    """SQS as redrive sees it: FIFO enough, visibility by hand, sends can be made to fail."""

    waiting: dict[str, list[QueuedMessage]] = field(default_factory=dict)
    in_flight: dict[str, QueuedMessage] = field(default_factory=dict)  # receipt -> message
    refuse_sends_to: set[str] = field(default_factory=set)
    move_task: str | None = None  # what start_move answers (None: no move task here)
    # what latest_move reports, in turn (the last one stays); empty: a started task has moved
    # every message and COMPLETED, as SQS would
    move_states: list[MoveTask] = field(default_factory=list)
    _started: tuple[str, str] | None = None
    _moved: int = 0
    _receipts: int = 0

    def put(self, url: str, body: str, receive_count: int = 3, **attributes: str) -> None:
        number = sum(len(q) for q in self.waiting.values()) + len(self.in_flight)
        message = QueuedMessage(
            f"m{number}",
            "",
            body,
            receive_count,
            tuple((k, "String", v, None) for k, v in attributes.items()),
        )
        self.waiting.setdefault(url, []).append(message)

    def depth(self, url: str) -> int:
        return len(self.waiting.get(url, []))

    def receive(self, url: str, count: int, visibility: int) -> list[QueuedMessage]:
        queue = self.waiting.get(url, [])
        taken, self.waiting[url] = queue[:count], queue[count:]
        out = []
        for message in taken:
            self._receipts += 1
            received = replace(message, receipt=f"{url}#{self._receipts}")
            self.in_flight[received.receipt] = received
            out.append(received)
        return out

    def release(self, url: str, receipts: list[str]) -> None:
        for receipt in receipts:
            self.waiting.setdefault(url, []).append(self.in_flight.pop(receipt))

    def send(self, url: str, messages: list[QueuedMessage]) -> tuple[set[int], list[str]]:
        if url in self.refuse_sends_to:
            return set(), ["AccessDenied"] * len(messages)
        for message in messages:
            self.waiting.setdefault(url, []).append(replace(message, receipt="", receive_count=0))
        return set(range(len(messages))), []

    def delete(self, url: str, receipts: list[str]) -> None:
        for receipt in receipts:
            del self.in_flight[receipt]

    def start_move(self, source_url: str, destination_url: str) -> str | None:
        if self.move_task is not None:
            self._started = (source_url, destination_url)
        return self.move_task

    def latest_move(self, source_url: str) -> MoveTask | None:
        if self.move_states:
            return self.move_states.pop(0) if len(self.move_states) > 1 else self.move_states[0]
        if self._started is None or self._started[0] != source_url:
            return None
        moving = self.waiting.pop(source_url, [])
        self.waiting.setdefault(self._started[1], []).extend(moving)
        self._moved += len(moving)
        return MoveTask("COMPLETED", self._moved)


@dataclass
class MemorySender:
    """Backfill messages as sent, at no rate limit."""

    sent: list[str] = field(default_factory=list)

    def within(self, seconds: float) -> int:
        return 10**9

    def send(self, bodies: list[str]) -> None:
        self.sent.extend(bodies)
