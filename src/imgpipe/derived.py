"""What each version of a source owns in the derived bucket, and what it leaves to clean.

Every derived key is built from the source key and a token of the source *version* (the event's
order, see ``S3ObjectEvent.version``), never from the ETag alone: two versions never share a key,
so removing what one version owns can never take away what another wrote, even when both have
the same bytes (a re-upload of the same file).

    thumbnails/<source key>/<token>/<size>.<jpg|png>
    results/<source key>/<token>.<json|csv>

A record owns its thumbnails and results documents. When a newer outcome replaces it, what the
old record owned (and whatever it still had to clean) becomes the new record's ``cleanup``: it is
written in the same conditional write that replaces the record, so it cannot be lost, and it is
cleared only after the objects are gone.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from .outcomes import Status
from .record import ImageRecord

THUMBNAILS = "thumbnails/"
RESULTS = "results/"
RENDITIONS = "renditions/"  # made on demand (renditions.py): no record lists them
RESULT_FORMATS = ("json", "csv")
THUMBNAIL_EXTENSIONS = ("jpg", "png", "webp", "avif")  # what the engine writes (imaging.types)
TOKEN_LENGTH = 16


def token(version: str, secret: bytes = b"") -> str:
    """A short, fixed-width, key-safe name for a version: 64 bits of its SHA-256, or of its
    HMAC-SHA256 under the stage's token secret where thumbnails are public to whoever holds a
    URL (delivery cdn). A version is no secret (S3's sequencer, in every event): keyed, a
    thumbnail's URL cannot be worked out from a key and a version, only handed out."""
    if secret:
        return hmac.new(secret, version.encode(), hashlib.sha256).hexdigest()[:TOKEN_LENGTH]
    return hashlib.sha256(version.encode()).hexdigest()[:TOKEN_LENGTH]


def thumbnail_key(
    source_key: str, version: str, name: str, extension: str, secret: bytes = b""
) -> str:
    return f"{THUMBNAILS}{source_key}/{token(version, secret)}/{name}.{extension}"


def results_key(source_key: str, version: str, fmt: str, secret: bytes = b"") -> str:
    return f"{RESULTS}{source_key}/{token(version, secret)}.{fmt}"


@dataclass(frozen=True, slots=True)
class Layout:
    """Where one stage's process function writes a version's derivatives: its size names and
    the key of its tokens (empty unless delivery cdn)."""

    sizes: tuple[str, ...]
    secret: bytes = field(default=b"", repr=False)

    def thumbnail_key(self, source_key: str, version: str, name: str, extension: str) -> str:
        return thumbnail_key(source_key, version, name, extension, self.secret)

    def results_key(self, source_key: str, version: str, fmt: str) -> str:
        return results_key(source_key, version, fmt, self.secret)

    def would_own(self, source_key: str, version: str) -> frozenset[str]:
        return would_own(source_key, version, self.sizes, self.secret)


def legacy_results_keys(source_key: str) -> frozenset[str]:
    """Where releases before per-version results wrote them: cleaned with their record."""
    return frozenset(f"{RESULTS}{source_key}.{fmt}" for fmt in RESULT_FORMATS)


def would_own(
    source_key: str, version: str, sizes: Iterable[str], secret: bytes = b""
) -> frozenset[str]:
    """Every key an attempt at ``version`` may have written: what a delivery that lost (or a
    crashed attempt of an older version) removes, since no other version can own these."""
    thumbs = {
        thumbnail_key(source_key, version, name, ext, secret)
        for name in sizes
        for ext in THUMBNAIL_EXTENSIONS
    }
    docs = {results_key(source_key, version, fmt, secret) for fmt in RESULT_FORMATS}
    return frozenset(thumbs | docs)


def owned(record: ImageRecord | None) -> frozenset[str]:
    if record is None:
        return frozenset()
    return record.thumbnail_keys | frozenset(record.results)


def successor(new: ImageRecord, stored: ImageRecord | None) -> ImageRecord:
    """``new`` as it replaces ``stored``: one revision on, and responsible for removing what
    ``stored`` owned or still had to remove (and what ``new`` already listed), except what
    ``new`` owns itself."""
    if stored is None:
        return replace(new, revision=1, cleanup=tuple(sorted(frozenset(new.cleanup) - owned(new))))
    leftover = owned(stored) | frozenset(stored.cleanup) | frozenset(new.cleanup)
    if stored.status is Status.DONE and not stored.results:
        leftover |= legacy_results_keys(stored.key)
    return replace(new, revision=stored.revision + 1, cleanup=tuple(sorted(leftover - owned(new))))


def source_of(derived_key: str) -> tuple[str, str] | None:
    """(source key, version token) of a derived key in the layout above, else None."""
    for area in (THUMBNAILS, RENDITIONS):
        if derived_key.startswith(area):
            parts = derived_key[len(area) :].rsplit("/", 2)
            if len(parts) == 3 and parts[0] and len(parts[1]) == TOKEN_LENGTH:
                return parts[0], parts[1]
            return None
    if derived_key.startswith(RESULTS):
        head, _, name = derived_key[len(RESULTS) :].rpartition("/")
        stem, _, fmt = name.partition(".")
        if head and len(stem) == TOKEN_LENGTH and fmt in RESULT_FORMATS:
            return head, stem
    return None


def token_of(record: ImageRecord) -> str:
    """The token of the record's version as its thumbnails carry it (keyed where the stage
    keys them, see ``token``), so renditions sit beside them without a secret of their own."""
    for thumb in record.thumbnails:
        owner = source_of(thumb.key)
        if owner is not None:
            return owner[1]
    return token(record.version)


def owns(record: ImageRecord, derived_key: str) -> bool:
    """Whether ``record`` owns ``derived_key``: what it lists, and the renditions of its own
    version while it is DONE (nobody lists those: they are made when asked for)."""
    if derived_key.startswith(RENDITIONS):
        source = source_of(derived_key)
        return (
            source is not None
            and source[0] == record.key
            and record.status is Status.DONE
            and source[1] == token_of(record)
        )
    return derived_key in owned(record)
