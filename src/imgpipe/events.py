"""S3 event notifications as they arrive in SQS message bodies, parsed into typed records."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

_SEQUENCER_WIDTH = 32


class MalformedEvent(ValueError):
    """The message body is not an S3 event notification: it belongs in the DLQ for a human."""


@dataclass(frozen=True, slots=True)
class S3ObjectEvent:
    event_name: str  # e.g. "ObjectCreated:Put", "ObjectRemoved:Delete"
    bucket: str
    key: str  # decoded: S3 sends keys form-encoded (space as "+", "+" as "%2B")
    size: int
    etag: str
    sequencer: str
    event_time: str

    @property
    def version(self) -> str:
        """An order over the events of one key, comparable as plain strings.

        S3's ``sequencer`` is a hexadecimal value whose length varies: left-padded to a fixed
        width it compares correctly as a string (and in a DynamoDB condition). Emulators that
        omit it get eventTime (ISO-8601, millisecond precision, so it sorts as text), then the
        kind (a removal after a creation in the same millisecond), then the ETag."""
        if self.sequencer:
            return "s:" + self.sequencer.upper().rjust(_SEQUENCER_WIDTH, "0")
        return f"t:{self.event_time}:{int(self.is_removed)}:{self.etag}"

    @property
    def is_created(self) -> bool:
        return self.event_name.startswith("ObjectCreated:")

    @property
    def is_removed(self) -> bool:
        return self.event_name.startswith("ObjectRemoved:")


def parse_body(body: str) -> list[S3ObjectEvent]:
    """All object events in one SQS body. ``s3:TestEvent`` (sent when a notification is
    configured) yields an empty list so that it is acknowledged instead of poisoning the queue."""
    try:
        doc = json.loads(body)
    except json.JSONDecodeError as exc:
        raise MalformedEvent(f"body is not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise MalformedEvent("body is not a JSON object")
    if doc.get("Event") == "s3:TestEvent":
        return []
    records = doc.get("Records")
    if not isinstance(records, list):
        raise MalformedEvent("body has no Records list and is not an s3:TestEvent")
    return [_parse_record(r) for r in records]


def _parse_record(record: Any) -> S3ObjectEvent:
    try:
        s3 = record["s3"]
        obj = s3["object"]
        return S3ObjectEvent(
            event_name=str(record["eventName"]),
            bucket=str(s3["bucket"]["name"]),
            key=unquote_plus(str(obj["key"])),
            size=int(obj.get("size", 0)),
            etag=str(obj.get("eTag", "")).strip('"'),
            sequencer=str(obj.get("sequencer", "")),
            event_time=str(record.get("eventTime", "")),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise MalformedEvent(f"S3 record lacks {exc}") from None
