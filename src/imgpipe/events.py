"""S3 object events as they arrive in SQS message bodies, parsed into typed records.

A body is hostile input like any other. Three shapes carry the same event:

- an S3 event notification (``{"Records": [...]}``), sent to the queue directly or through an
  SNS topic with raw message delivery;
- the same inside an SNS envelope (``{"Type": "Notification", "Message": "<json>"}``), for
  accounts that fan bucket events out through SNS;
- an EventBridge event (``"source": "aws.s3"``, ``"detail-type": "Object Created"``).

A fourth shape is imgpipe's own: a *backfill* message (``{"imgpipe": "backfill", ...}``, see
backfill.py) naming an object that is already in the bucket. Only the backfill role may send
it (the queue policy); it orders below every S3 event (``S3ObjectEvent.version``).

Only ``ObjectCreated:*`` and ``ObjectRemoved:*`` are acted on; anything else (``s3:TestEvent``,
tagging, restores, ACL changes) is *ignored*: acknowledged and counted. A record that cannot be
read is *malformed*: acknowledged, logged and counted, never retried (retrying cannot repair it).
Every record of a body is judged alone, so one bad record does not hold back its neighbours.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus

from .codec import Received
from .ordering import SEQUENCER_WIDTH, backfill_version, live_version

MAX_BODY_BYTES = 256 * 1024  # SQS's own limit on a message body
_ACTED_ON = ("ObjectCreated:", "ObjectRemoved:")
BACKFILL = "ObjectCreated:Backfill"  # the event name of a backfill message
_EVENTBRIDGE_KINDS = {"Object Created": "ObjectCreated", "Object Deleted": "ObjectRemoved"}


class MalformedEvent(ValueError):
    """A record, or a whole body, that is not an event this pipeline can read."""


@dataclass(frozen=True, slots=True)
class S3ObjectEvent:
    event_name: str  # e.g. "ObjectCreated:Put", "ObjectRemoved:Delete"
    bucket: str
    key: str  # decoded: S3 notifications form-encode keys (space as "+", "+" as "%2B")
    size: int
    etag: str
    sequencer: str
    event_time: str
    version_id: str = ""  # in a versioned bucket, which version the event is about
    # a re-render of a stored version under new settings (Pipeline) takes a version of its own
    rerender_version: str = ""

    @property
    def version(self) -> str:
        """This event's place among the events of its key, comparable as a plain string (and
        so in a DynamoDB condition): the format and its reasons are ordering.py's."""
        if self.rerender_version:
            return self.rerender_version
        if self.event_name == BACKFILL:
            return backfill_version(self.event_time, self.etag)
        return live_version(self.sequencer, self.event_time, self.is_removed, self.etag)

    @property
    def is_created(self) -> bool:
        return self.event_name.startswith("ObjectCreated:")

    @property
    def is_removed(self) -> bool:
        return self.event_name.startswith("ObjectRemoved:")

    @property
    def is_backfill(self) -> bool:
        return self.event_name == BACKFILL


@dataclass(frozen=True, slots=True)
class ParsedBody:
    events: tuple[S3ObjectEvent, ...] = ()
    ignored: tuple[str, ...] = ()  # event names not acted on
    malformed: tuple[str, ...] = ()  # why each unreadable record (or the body) was refused
    envelope: str = "s3"  # "s3", "sns", "eventbridge" or "backfill"

    def names(self) -> list[str]:
        return [f"{e.bucket}/{e.key}" for e in self.events]


@dataclass
class _Collector:
    events: list[S3ObjectEvent] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    malformed: list[str] = field(default_factory=list)

    def done(self, envelope: str) -> ParsedBody:
        return ParsedBody(tuple(self.events), tuple(self.ignored), tuple(self.malformed), envelope)


def read_body(body: str) -> ParsedBody:
    """Every object event in one SQS message body, with what was ignored or malformed. Never
    raises: a body that is not an event at all is one malformed entry."""
    out = _Collector()
    try:
        doc, envelope = _unwrap(body)
    except MalformedEvent as exc:
        out.malformed.append(str(exc))
        return out.done("sns" if "SNS" in str(exc) else "s3")
    if envelope == "eventbridge":
        _eventbridge(doc, out)
    elif envelope == "backfill":
        _backfill(doc, out)
    elif doc.get("Event") == "s3:TestEvent":
        out.ignored.append("s3:TestEvent")
    elif isinstance(doc.get("Records"), list) and doc["Records"]:
        for record in doc["Records"]:
            _s3_record(record, out)
    else:
        out.malformed.append("neither an S3 notification, an SNS envelope nor an EventBridge event")
    return out.done(envelope)


def _unwrap(body: str) -> tuple[Received, str]:
    """The event document and the envelope it came in."""
    if len(body.encode("utf-8", "surrogatepass")) > MAX_BODY_BYTES:
        raise MalformedEvent(f"body of more than {MAX_BODY_BYTES} bytes")
    doc = _json(body, "body is not JSON")
    envelope = "s3"
    if isinstance(doc, dict) and doc.get("Type") == "Notification" and "Message" in doc:
        envelope = "sns"
        message = doc["Message"]
        doc = _json(message, "SNS envelope whose Message is not JSON")
        if not isinstance(message, str) or not isinstance(doc, dict):
            raise MalformedEvent("SNS envelope whose Message is not a JSON object")
    if not isinstance(doc, dict):
        raise MalformedEvent("body is not a JSON object")
    if doc.get("source") == "aws.s3" and "detail-type" in doc:
        envelope = "eventbridge"
    elif doc.get("imgpipe") == "backfill" and envelope == "s3":
        envelope = "backfill"
    return doc, envelope


def _json(text: Any, why: str) -> Any:
    if not isinstance(text, str):
        raise MalformedEvent(why)
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise MalformedEvent(f"{why}: {str(exc)[:100]}") from None


def parse_body(body: str) -> list[S3ObjectEvent]:
    """The events of a body; MalformedEvent if nothing in it could be read (tools that list
    what a message is about, such as the DLQ listing, use this)."""
    parsed = read_body(body)
    if parsed.malformed and not parsed.events:
        raise MalformedEvent("; ".join(parsed.malformed))
    return list(parsed.events)


def _text(value: Any, name: str, limit: int = 2048) -> str:
    if not isinstance(value, str) or len(value) > limit:
        raise MalformedEvent(f"{name} is not a string of at most {limit} characters")
    return value


def _size(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise MalformedEvent("object size is not a non-negative integer")
    return value


def _s3_record(record: Any, out: _Collector) -> None:
    try:
        if not isinstance(record, dict):
            raise MalformedEvent("a record is not an object")
        name = _text(record.get("eventName"), "eventName", 100)
        if not name.startswith(_ACTED_ON):
            out.ignored.append(name)
            return
        s3 = record["s3"]
        obj = s3["object"]
        # S3 notifications form-encode keys; their field names are camel case
        key = unquote_plus(_text(obj["key"], "key", 4096))
        fields = (obj.get("eTag"), obj.get("versionId"), record.get("eventTime"))
        out.events.append(_event(name, s3["bucket"]["name"], key, obj, *fields))
    except (KeyError, TypeError, MalformedEvent) as exc:
        out.malformed.append(f"S3 record: {_why(exc)}")


def _eventbridge(doc: Received, out: _Collector) -> None:
    try:
        kind = _EVENTBRIDGE_KINDS.get(_text(doc.get("detail-type"), "detail-type", 100))
        detail = doc["detail"]
        if kind is None:
            out.ignored.append(f"EventBridge {doc['detail-type']}")
            return
        obj = detail["object"]
        name = f"{kind}:{_text(detail.get('reason', 'Event'), 'reason', 100)}"
        # EventBridge sends keys unencoded, and spells its fields in kebab and lower case
        key = _text(obj["key"], "key", 4096)
        fields = (obj.get("etag"), obj.get("version-id"), doc.get("time"))
        out.events.append(_event(name, detail["bucket"]["name"], key, obj, *fields))
    except (KeyError, TypeError, MalformedEvent) as exc:
        out.malformed.append(f"EventBridge event: {_why(exc)}")


def backfill_body(bucket: str, key: str, etag: str, size: int, modified: str) -> str:
    """The body of a backfill message for one object as listed (see ``_backfill``)."""
    doc = {"imgpipe": "backfill", "bucket": bucket, "key": key, "etag": etag}
    return json.dumps(doc | {"size": size, "modified": modified}, separators=(",", ":"))


def _backfill(doc: Received, out: _Collector) -> None:
    try:
        key = _text(doc["key"], "key", 4096)  # sent by backfill.py: not form-encoded
        fields = (doc.get("etag"), "", doc.get("modified"))
        out.events.append(_event(BACKFILL, doc["bucket"], key, doc, *fields))
        if not out.events[-1].etag:
            out.events.pop()
            raise MalformedEvent("a backfill message names no ETag")
    except (KeyError, TypeError, MalformedEvent) as exc:
        out.malformed.append(f"backfill message: {_why(exc)}")


def _event(  # noqa: PLR0913 - one per field of the event, each checked
    name: str, bucket: Any, key: str, obj: Any, etag: Any, version_id: Any, event_time: Any
) -> S3ObjectEvent:
    return S3ObjectEvent(
        event_name=name,
        bucket=_text(bucket, "bucket", 63),
        key=key,
        size=_size(obj.get("size")),
        etag=_text(etag or "", "etag", 100).strip('"'),
        sequencer=_sequencer(obj.get("sequencer", "")),
        event_time=_text(event_time or "", "event time", 40),
        version_id=_text(version_id or "", "version id", 1024),
    )


def _sequencer(value: Any) -> str:
    text = _text(value, "sequencer", SEQUENCER_WIDTH)
    if text and not all(c in "0123456789abcdefABCDEF" for c in text):
        raise MalformedEvent("sequencer is not hexadecimal")
    return text


def _why(exc: Exception) -> str:
    return f"lacks {exc}" if isinstance(exc, KeyError) else str(exc)[:200]
