"""Backfill: queue work for objects already in the uploads bucket, in bounded memory.

Objects come from a listing of a prefix (ListObjectsV2, in key order) or from an S3 Inventory
report (CSV; its manifest names the files). For each chunk of them the catalog is asked (one
BatchGetItem per 100 keys) and only what needs work is sent to the images queue as backfill
messages (events.backfill_body, ten per SendMessageBatch, under a rate limit):

- default mode: every object with no final record of its current bytes made under the current
  settings (no record, a record of other bytes, DELETED, FAILED, or other settings);
- ``if_settings_changed``: only final records of the current bytes made under other settings.

Objects modified less than ``min_age`` ago are left to their own S3 events. The pipeline checks
everything again when the message arrives (a backfill never outranks a live event, and one for
an image done meanwhile costs one catalog read), so a listing need not be a snapshot.

A run does a slice of work (a time budget, a message budget) and returns a ``Checkpoint``: where
the next slice starts and the counts so far. Everything before ``after`` was queued or judged
not to need work; a slice interrupted mid-way is redone from there at worst, and what it had
already queued is skipped cheaply by the pipeline.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import TYPE_CHECKING
from urllib.parse import unquote_plus

from .codec import JsonObject, Received
from .errors import PipelineError
from .events import backfill_body
from .outcomes import Status
from .ports import BucketReader, RecordStore, Sender
from .record import ImageRecord

if TYPE_CHECKING:
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import SendMessageBatchRequestEntryTypeDef

CHUNK = 100  # objects judged together: one BatchGetItem
SEND_BATCH = 10  # SQS's most per SendMessageBatch
MODES = ("missing", "settings-changed")
# Messages per second a run may send at most: a backfill is a backlog for the process function,
# and each message costs a render (and the detectors' fees) within seconds of being sent.
MAX_RATE = 1000.0
COUNTS = ("listed", "queued", "current", "recent", "unchanged")


class BackfillError(ValueError):
    """A request or an inventory that cannot be run; the message says what to change."""


@dataclass(frozen=True, slots=True)
class Candidate:
    key: str
    etag: str
    size: int
    modified: datetime
    position: str  # where a listing resumes after this object


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A backfill's request and how far it got (JSON: ``to_json``/``from_json``)."""

    prefix: str = ""
    inventory: str = ""  # s3://bucket/path/manifest.json, or "" to list the bucket
    mode: str = "missing"
    settings: str = ""  # the fingerprint judged against
    after: str = ""  # "" : from the start
    done: bool = False
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTS, 0))
    started: str = ""
    seconds: float = 0.0  # spent in slices so far

    def to_json(self) -> JsonObject:
        return {
            "prefix": self.prefix,
            "inventory": self.inventory,
            "mode": self.mode,
            "settings": self.settings,
            "after": self.after,
            "done": self.done,
            "counts": {name: count for name, count in self.counts.items()},
            "started": self.started,
            "seconds": round(self.seconds, 3),
        }

    @classmethod
    def from_json(cls, doc: object) -> Checkpoint:
        if not isinstance(doc, dict):
            raise BackfillError("a checkpoint is a JSON object")
        kinds = {"prefix": str, "inventory": str, "mode": str, "settings": str, "after": str}
        for name, kind in kinds.items():
            if not isinstance(doc.get(name, ""), kind):
                raise BackfillError(f"checkpoint field {name} must be a string")
        counts = doc.get("counts", {})
        if not isinstance(counts, dict) or not all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in counts.values()
        ):
            raise BackfillError("checkpoint counts must be non-negative integers")
        mode = doc.get("mode", "missing")
        if mode not in MODES:
            raise BackfillError(f"mode must be one of {', '.join(MODES)}")
        if doc.get("inventory"):
            parse_s3_uri(doc["inventory"])
        seconds = doc.get("seconds", 0.0)
        return cls(
            prefix=doc.get("prefix", ""),
            inventory=doc.get("inventory", ""),
            mode=mode,
            settings=doc.get("settings", ""),
            after=doc.get("after", ""),
            done=bool(doc.get("done", False)),
            counts=dict.fromkeys(COUNTS, 0) | {k: counts[k] for k in COUNTS if k in counts},
            started=str(doc.get("started", "")),
            seconds=float(seconds) if isinstance(seconds, int | float) else 0.0,
        )


class RateLimit:
    """At most ``per_second`` messages per second on average (a token bucket holding one
    second's worth), so a backfill leaves the queue room for live uploads."""

    def __init__(
        self,
        per_second: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if per_second <= 0:
            raise BackfillError("the rate must be above 0 messages per second")
        self._rate, self._clock, self._sleep = per_second, clock, sleep
        self._tokens = min(per_second, SEND_BATCH)
        self._last = clock()

    def within(self, seconds: float) -> int:
        """How many messages may go out in ``seconds`` (at least one)."""
        return max(1, int(self._rate * seconds))

    def take(self, n: int) -> None:
        while True:
            now = self._clock()
            self._tokens = min(max(self._rate, n), self._tokens + (now - self._last) * self._rate)
            self._last = now
            if self._tokens >= n:
                self._tokens -= n
                return
            self._sleep((n - self._tokens) / self._rate)


class QueueSender:
    """``ports.Sender`` on SQS: backfill messages into the images queue, ten per request; a
    batch entry SQS refuses is sent again (a few times), then the slice fails rather than lose
    it."""

    def __init__(self, sqs: SQSClient, queue_url: str, rate: RateLimit) -> None:
        self._sqs, self._url, self._rate = sqs, queue_url, rate
        self.requests = 0

    def within(self, seconds: float) -> int:
        return self._rate.within(seconds)

    def send(self, bodies: list[str]) -> None:
        for start in range(0, len(bodies), SEND_BATCH):
            batch = bodies[start : start + SEND_BATCH]
            self._rate.take(len(batch))
            entries: list[SendMessageBatchRequestEntryTypeDef] = [
                {"Id": str(i), "MessageBody": body} for i, body in enumerate(batch)
            ]
            for attempt in range(5):
                self.requests += 1
                resp = self._sqs.send_message_batch(QueueUrl=self._url, Entries=entries)
                failed = {f["Id"] for f in resp.get("Failed", [])}
                entries = [e for e in entries if e["Id"] in failed]
                if not entries:
                    break
                time.sleep(0.1 * 2**attempt)
            else:
                raise RuntimeError(f"SQS refused {len(entries)} backfill messages 5 times")


# -- where objects come from ---------------------------------------------------------------


def listing(
    reader: BucketReader, bucket: str, prefix: str, after: str, page_size: int = 1000
) -> Iterator[Candidate]:
    """The bucket's objects under ``prefix`` after the key ``after``, in key order."""
    for obj in reader.listing(bucket, prefix, after, page_size):
        yield Candidate(obj.key, obj.etag, obj.size, obj.modified, obj.key)


def parse_s3_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://") or "/" not in uri[5:]:
        raise BackfillError(f"an inventory manifest is s3://bucket/path/manifest.json, not {uri!r}")
    bucket, _, key = uri[5:].partition("/")
    if not bucket or not key.endswith("manifest.json"):
        raise BackfillError(f"an inventory manifest is s3://bucket/path/manifest.json, not {uri!r}")
    return bucket, key


def inventory(
    reader: BucketReader, manifest_uri: str, source_bucket: str, prefix: str, after: str
) -> Iterator[Candidate]:
    """The current objects an S3 Inventory report lists (CSV, gzip), under ``prefix``, after
    the position ``after`` ("<file>:<row>"). Reports are not in key order across files, so the
    position counts rows. Keys in the report are URL-encoded."""
    bucket, key = parse_s3_uri(manifest_uri)
    manifest = json.loads(reader.read(bucket, key, 8 << 20))
    if not isinstance(manifest, dict) or manifest.get("fileFormat") != "CSV":
        raise BackfillError("only CSV inventory reports can be read (fileFormat: CSV)")
    if manifest.get("sourceBucket") != source_bucket:
        raise BackfillError(
            f"the inventory is of {manifest.get('sourceBucket')!r}, not the uploads bucket"
        )
    columns = [c.strip() for c in str(manifest.get("fileSchema", "")).split(",")]
    missing = {"Key", "Size", "LastModifiedDate", "ETag"} - set(columns)
    if missing:
        raise BackfillError(f"the inventory lacks the columns {', '.join(sorted(missing))}")
    start_file, start_row = _position(after)
    for index, entry in enumerate(manifest.get("files", [])):
        if index < start_file:
            continue
        body = reader.stream(bucket, entry["key"])
        with gzip.GzipFile(fileobj=body) as raw:
            rows = csv.reader(io.TextIOWrapper(raw, encoding="utf-8", newline=""))
            for number, row in enumerate(rows, start=1):
                if index == start_file and number <= start_row:
                    continue
                candidate = _inventory_row(
                    dict(zip(columns, row, strict=False)), f"{index}:{number}"
                )
                if candidate is not None and candidate.key.startswith(prefix):
                    yield candidate


def _position(after: str) -> tuple[int, int]:
    if not after:
        return 0, 0
    file, _, row = after.partition(":")
    if not (file.isdigit() and row.isdigit()):
        raise BackfillError(f"an inventory position is <file>:<row>, not {after!r}")
    return int(file), int(row)


def _inventory_row(row: dict[str, str], position: str) -> Candidate | None:
    if row.get("IsLatest", "true").lower() != "true" or row.get("IsDeleteMarker", "") == "true":
        return None
    try:
        modified = datetime.fromisoformat(row["LastModifiedDate"].replace("Z", "+00:00"))
        size = int(row["Size"] or 0)
    except (KeyError, ValueError):
        return None
    return Candidate(unquote_plus(row["Key"]), row["ETag"].strip('"'), size, modified, position)


# -- judging and sending -------------------------------------------------------------------


def needs_work(
    candidate: Candidate, record: ImageRecord | None, fingerprint: str, mode: str
) -> str:
    """Which count ``candidate`` falls in: "queued" if it needs a backfill message."""
    same_bytes = (
        record is not None and record.status is not Status.DELETED and record.etag == candidate.etag
    )
    final = record is not None and record.status in (Status.DONE, Status.REJECTED)
    if same_bytes and final:
        assert record is not None
        return "current" if record.settings == fingerprint else "queued"
    return "queued" if mode == "missing" else "unchanged"


@dataclass
class Backfill:
    store: BucketReader
    catalog: RecordStore
    sender: Sender | None  # None: a dry run, nothing is sent
    uploads_bucket: str
    fingerprint: str
    min_age: timedelta = timedelta(minutes=5)
    clock: Callable[[], float] = time.monotonic

    def run(
        self,
        checkpoint: Checkpoint,
        *,
        max_seconds: float = 60.0,
        max_messages: int = 0,
        progress: Callable[[Checkpoint], None] | None = None,
    ) -> Checkpoint:
        """One slice from ``checkpoint``: until the source ends (``done``), ``max_seconds``
        pass or ``max_messages`` (0: no cap) are queued; returns where the next one starts."""
        began = self.clock()
        state = replace(
            checkpoint,
            settings=self.fingerprint,
            counts=dict(checkpoint.counts),
            started=checkpoint.started or datetime.now(UTC).isoformat(timespec="seconds"),
        )
        cutoff = datetime.now(UTC) - self.min_age
        queued_here = 0
        objects = self._objects(state)
        while True:
            budget = max_messages - queued_here if max_messages else CHUNK
            if self.sender is not None:  # a slow rate: a chunk's sends still end in the slice
                budget = min(budget, self.sender.within(max_seconds - (self.clock() - began)))
            chunk = list(islice(objects, min(CHUNK, budget)))
            if not chunk:
                state = replace(state, done=True)
                break
            queued_here += self._chunk(chunk, state, cutoff)
            state = replace(state, after=chunk[-1].position)
            if progress is not None:
                progress(state)
            spent = self.clock() - began
            if spent >= max_seconds or (max_messages and queued_here >= max_messages):
                break
        return replace(state, seconds=checkpoint.seconds + self.clock() - began)

    def exactly(self, keys: tuple[str, ...]) -> Checkpoint:
        """These keys only, each as S3 lists it now (one LIST with the key as its prefix: the
        key itself comes first if it is there), judged and queued like a listing's."""
        began = self.clock()
        state = Checkpoint(
            settings=self.fingerprint, started=datetime.now(UTC).isoformat(timespec="seconds")
        )
        found = []
        for key in sorted(set(keys)):
            first = next(listing(self.store, self.uploads_bucket, key, "", page_size=1), None)
            if first is not None and first.key == key:
                found.append(first)
        self._chunk(found, state, datetime.now(UTC) - self.min_age)
        return replace(state, done=True, seconds=self.clock() - began)

    def _objects(self, state: Checkpoint) -> Iterator[Candidate]:
        if state.inventory:
            return inventory(
                self.store, state.inventory, self.uploads_bucket, state.prefix, state.after
            )
        return listing(self.store, self.uploads_bucket, state.prefix, state.after)

    def _chunk(self, chunk: list[Candidate], state: Checkpoint, cutoff: datetime) -> int:
        counts = state.counts
        counts["listed"] += len(chunk)
        records = self.catalog.get_many(self.uploads_bucket, [c.key for c in chunk])
        bodies = []
        for candidate in chunk:
            verdict = needs_work(
                candidate, records.get(candidate.key), self.fingerprint, state.mode
            )
            if verdict == "queued" and candidate.modified > cutoff:
                verdict = "recent"  # needs work, but its own S3 event is likely on its way
            counts[verdict] += 1
            if verdict == "queued":
                bodies.append(
                    backfill_body(
                        self.uploads_bucket,
                        candidate.key,
                        candidate.etag,
                        candidate.size,
                        candidate.modified.astimezone(UTC).isoformat(timespec="milliseconds"),
                    )
                )
        if self.sender is not None and bodies:
            self.sender.send(bodies)
        return len(bodies)


# -- a run's request (the function's payload, the CLI's options) -----------------------------

MAX_KEYS = CHUNK  # keys one request may name: one catalog read
MAX_HOPS = 10_000  # a run that continues itself stops here whatever happens (100+ days of slices)


@dataclass(frozen=True, slots=True)
class Request:
    checkpoint: Checkpoint
    dry_run: bool = False
    rate: float = 50.0
    max_seconds: float = 60.0
    max_messages: int = 0
    min_age: int = 300
    chain: bool = False  # the function invokes itself with the checkpoint until done
    hops: int = 0
    keys: tuple[str, ...] = ()  # exactly these keys (reconcile's re-queue), not a listing

    def to_json(self) -> JsonObject:
        doc: JsonObject = {
            "checkpoint": self.checkpoint.to_json(),
            "dry_run": self.dry_run,
            "rate": self.rate,
            "max_seconds": self.max_seconds,
            "max_messages": self.max_messages,
            "min_age": self.min_age,
            "chain": self.chain,
            "hops": self.hops,
        }
        if self.keys:
            doc["keys"] = list(self.keys)
        return doc


_KINDS: dict[str, tuple[type, ...]] = {
    "prefix": (str,),
    "inventory": (str,),
    "mode": (str,),
    "checkpoint": (dict,),
    "dry_run": (bool,),
    "rate": (int, float),
    "max_seconds": (int, float),
    "max_messages": (int,),
    "min_age": (int,),
    "chain": (bool,),
    "hops": (int,),
    "keys": (list,),
}


def parse_request(event: object, *, rate: float, min_age: int, time_limit: float) -> Request:
    """A run from the function's payload; BackfillError (saying what to change) if malformed.
    ``checkpoint`` resumes a run (its prefix, inventory and mode win); ``time_limit`` caps
    ``max_seconds`` (the function's own timeout, less a reserve)."""
    if not isinstance(event, dict):
        raise BackfillError("the payload is a JSON object")
    unknown = sorted(set(event) - set(_KINDS))
    if unknown:
        raise BackfillError(f"unknown fields {unknown}; expected some of {sorted(_KINDS)}")
    for name, kinds in _KINDS.items():
        value = event.get(name)
        if value is not None and (
            (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds)
        ):
            raise BackfillError(f"{name} must be a {' or '.join(k.__name__ for k in kinds)}")
    if "checkpoint" in event:
        checkpoint = Checkpoint.from_json(event["checkpoint"])
    else:
        mode = event.get("mode", "missing")
        if mode not in MODES:
            raise BackfillError(f"mode must be one of {', '.join(MODES)}")
        inventory_uri = event.get("inventory", "")
        if inventory_uri:
            parse_s3_uri(inventory_uri)
        checkpoint = Checkpoint(prefix=event.get("prefix", ""), inventory=inventory_uri, mode=mode)
    numbers = {n: event.get(n) for n in ("rate", "max_seconds", "max_messages", "min_age", "hops")}
    if any(v is not None and v < 0 for v in numbers.values()) or event.get("rate") == 0:
        raise BackfillError(
            "rate must be above 0; max_seconds, max_messages, min_age, hops not negative"
        )
    if float(event.get("rate", rate)) > MAX_RATE:
        raise BackfillError(f"rate must be at most {MAX_RATE:,.0f} messages per second")
    return Request(
        checkpoint=checkpoint,
        dry_run=bool(event.get("dry_run", False)),
        rate=float(event.get("rate", rate)),
        max_seconds=min(float(event.get("max_seconds", time_limit)), time_limit),
        max_messages=int(event.get("max_messages", 0)),
        min_age=int(event.get("min_age", min_age)),
        chain=bool(event.get("chain", False)),
        hops=int(event.get("hops", 0)),
        keys=_keys(event),
    )


def _keys(event: Received) -> tuple[str, ...]:
    keys = event.get("keys")
    if keys is None:
        return ()
    if event.get("prefix") or event.get("inventory") or "checkpoint" in event or event.get("chain"):
        raise BackfillError("keys is a run of its own: no prefix, inventory, checkpoint or chain")
    if not 1 <= len(keys) <= MAX_KEYS or not all(_object_key(k) for k in keys):
        raise BackfillError(f"keys must be 1 to {MAX_KEYS} object keys of 1 to 1,024 bytes")
    return tuple(keys)


def _object_key(key: object) -> bool:
    """What S3 can name: 1 to 1,024 bytes of UTF-8 (a lone surrogate has no UTF-8)."""
    try:
        return isinstance(key, str) and 0 < len(key.encode("utf-8")) <= 1024
    except UnicodeEncodeError:
        return False


# -- asking the stage's backfill function (the CLI, reconcile) -------------------------------


@dataclass(frozen=True, slots=True)
class Ask:
    """What a client asks one slice of the backfill function for; what it leaves out (None)
    the function takes from the stage's settings (``parse_request``)."""

    checkpoint: Checkpoint = field(default_factory=Checkpoint)
    dry_run: bool = False
    rate: float | None = None
    max_seconds: float | None = None
    max_messages: int | None = None
    min_age: int | None = None
    keys: tuple[str, ...] = ()  # exactly these keys: a run of its own, without a checkpoint

    def to_json(self) -> JsonObject:
        doc: JsonObject = {"dry_run": self.dry_run}
        if self.keys:
            doc["keys"] = list(self.keys)
        else:
            doc["checkpoint"] = self.checkpoint.to_json()
        optional = {
            "rate": self.rate,
            "max_seconds": self.max_seconds,
            "max_messages": self.max_messages,
            "min_age": self.min_age,
        }
        return doc | {name: value for name, value in optional.items() if value is not None}

    @classmethod
    def from_json(cls, doc: object) -> Ask:
        """An ask as saved in a checkpoint file; BackfillError saying what is wrong."""
        parsed = parse_request(doc, rate=1.0, min_age=0, time_limit=float("inf"))
        assert isinstance(doc, dict)
        return cls(
            checkpoint=parsed.checkpoint,
            dry_run=parsed.dry_run,
            rate=parsed.rate if "rate" in doc else None,
            max_seconds=parsed.max_seconds if "max_seconds" in doc else None,
            max_messages=parsed.max_messages if "max_messages" in doc else None,
            min_age=parsed.min_age if "min_age" in doc else None,
            keys=parsed.keys,
        )


@dataclass(frozen=True, slots=True)
class Estimate:
    """What the queued images cost and how long they take (imgpipe.costs), as the function
    answers it."""

    images: int
    dollars: float
    seconds: float
    per_second: float
    bound_by: str
    concurrency: int
    memory_mb: int
    detectors: tuple[str, ...] = ()

    def to_json(self) -> JsonObject:
        return {
            "images": self.images,
            "dollars": round(self.dollars, 4),
            "seconds": round(self.seconds, 1),
            "per_second": round(self.per_second, 2),
            "bound_by": self.bound_by,
            "concurrency": self.concurrency,
            "memory_mb": self.memory_mb,
            "detectors": list(self.detectors),
        }


@dataclass(frozen=True, slots=True)
class Answer:
    """The function's answer to one ask."""

    checkpoint: Checkpoint
    dry_run: bool = False
    estimate: Estimate | None = None
    continued: bool | None = None  # chained runs: whether the next slice was started

    def to_json(self) -> JsonObject:
        doc: JsonObject = {"checkpoint": self.checkpoint.to_json(), "dry_run": self.dry_run}
        if self.estimate is not None:
            doc["estimate"] = self.estimate.to_json()
        if self.continued is not None:
            doc["continued"] = self.continued
        return doc

    @classmethod
    def from_json(cls, doc: object) -> Answer:
        if not isinstance(doc, dict):
            raise BackfillError("the backfill function answered no JSON object")
        estimate = doc.get("estimate")
        try:
            guess = (
                None
                if estimate is None
                else Estimate(
                    images=int(estimate["images"]),
                    dollars=float(estimate["dollars"]),
                    seconds=float(estimate["seconds"]),
                    per_second=float(estimate["per_second"]),
                    bound_by=str(estimate["bound_by"]),
                    concurrency=int(estimate["concurrency"]),
                    memory_mb=int(estimate["memory_mb"]),
                    detectors=tuple(str(d) for d in estimate.get("detectors", [])),
                )
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise BackfillError(f"the backfill function's estimate is malformed: {exc}") from None
        continued = doc.get("continued")
        return cls(
            Checkpoint.from_json(doc.get("checkpoint")),
            dry_run=bool(doc.get("dry_run", False)),
            estimate=guess,
            continued=continued if isinstance(continued, bool) else None,
        )


def invoke(client: LambdaClient, function_name: str, ask: Ask) -> Answer:
    """The function's answer to one ask; BackfillError with its message if it refused the
    ask or failed."""
    resp = client.invoke(FunctionName=function_name, Payload=json.dumps(ask.to_json()).encode())
    answer = json.loads(resp["Payload"].read())
    if "FunctionError" in resp or not isinstance(answer, dict) or "error" in answer:
        detail = answer.get("error", answer) if isinstance(answer, dict) else answer
        raise BackfillError(f"the backfill function: {str(detail)[:500]}")
    return Answer.from_json(answer)


def requeuer(client: LambdaClient, function_name: str) -> Callable[[str], str]:
    """Reconcile's re-queue of an object whose event was lost: a backfill message through the
    stage's backfill function (the queue's one sender besides S3), not a copy of the object.
    Returns what was done ("" when the object is gone or already current)."""

    def requeue(key: str) -> str:
        try:
            answer = invoke(client, function_name, Ask(keys=(key,), min_age=0))
        except BackfillError as exc:  # reported with the finding; the run goes on
            raise PipelineError(str(exc)) from exc
        return "re-queued (a backfill message)" if answer.checkpoint.counts["queued"] else ""

    return requeue
