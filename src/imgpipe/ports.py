"""What the pipeline needs from its catalog, object store and notifier: small protocols, so a
``Pipeline`` can be built with in-memory doubles (tests) as well as the DynamoDB, S3 and SNS
adapters (``catalog.Catalog``, ``storage.ObjectStore``, ``notify.Notifier``)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from .imaging.types import Limits, Thumbnail
from .record import ImageRecord


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

    def put_document(self, bucket: str, key: str, body: bytes, content_type: str) -> None: ...

    def delete(self, bucket: str, keys: Iterable[str]) -> int: ...


class Publisher(Protocol):
    def publish(self, record: ImageRecord) -> None: ...
