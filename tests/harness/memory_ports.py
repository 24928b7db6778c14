"""In-memory doubles of the pipeline's catalog, store and notifier (``ports.py``): a
``Pipeline`` built on them makes its decisions without moto, boto3 or a handler in between."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from imgpipe.errors import SourceChanged, SourceMissing
from imgpipe.imaging.types import Limits, Thumbnail, check_size
from imgpipe.ordering import supersedes
from imgpipe.ports import LiveObject
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
class MemoryPublisher:
    sent: list[ImageRecord] = field(default_factory=list)

    def publish(self, record: ImageRecord) -> None:
        self.sent.append(record)
