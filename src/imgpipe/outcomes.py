"""How an upload can end, and why: the two vocabularies every other module speaks.

Kept free of imports so that the pure imaging core can name its rejection reasons too.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Status(StrEnum):
    DONE = "DONE"
    REJECTED = "REJECTED"  # the input's fault, with a Reason; never retried
    FAILED = "FAILED"  # transient failures exhausted the receives; the message is in the DLQ
    DELETED = "DELETED"  # the source object was removed; its derivatives went with it


FINAL = frozenset(Status)


class Reason(StrEnum):
    """Machine-readable reasons, stable across releases: subscribers and alarms filter on them."""

    EMPTY = "empty"
    TOO_LARGE = "too_large"
    NOT_AN_IMAGE = "not_an_image"
    UNSUPPORTED_FORMAT = "unsupported_format"
    CORRUPT = "corrupt"
    TRUNCATED = "truncated"
    TOO_MANY_PIXELS = "too_many_pixels"
    TOO_MANY_FRAMES = "too_many_frames"
    MISSING = "missing"  # deleted before it was processed
    ARCHIVED = "archived"  # in an archive storage class: S3 answers InvalidObjectState
    KEY_TOO_LONG = "key_too_long"  # the derivatives' keys would pass S3's 1,024 bytes
    TRANSIENT = "transient"  # FAILED records: retries ran out


# What the public API says about each reason: fixed text, never the stored error detail (which
# may name buckets, roles or internal hosts).
REASON_TEXT = {
    Reason.EMPTY: "the file is empty",
    Reason.TOO_LARGE: "the file is larger than this pipeline accepts",
    Reason.NOT_AN_IMAGE: "the file is not an image",
    Reason.UNSUPPORTED_FORMAT: "the image format is not supported",
    Reason.CORRUPT: "the image data is corrupt",
    Reason.TRUNCATED: "the image data ends early",
    Reason.TOO_MANY_PIXELS: "the image has too many pixels to decode safely",
    Reason.TOO_MANY_FRAMES: "the animation has too many frames",
    Reason.MISSING: "the file was deleted before it was processed",
    Reason.ARCHIVED: "the file is in an archive storage class",
    Reason.KEY_TOO_LONG: "the key is too long for the thumbnails' keys",
    Reason.TRANSIENT: "processing failed repeatedly; an operator has been alerted",
}


class Skipped(StrEnum):
    """An event that changed nothing: never a record's status, only a handled message's."""

    SKIPPED = "SKIPPED"


@dataclass(frozen=True, slots=True)
class Outcome:
    """What handling one event came to: a final status, or SKIPPED."""

    status: Status | Skipped
    reason: Reason | None = None
