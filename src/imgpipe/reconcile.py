"""Compare the uploads bucket, the catalog and the derived bucket; report (and repair) what
disagrees.

Four findings, each a thing the pipeline should never leave behind, found after an incident, a
lost message, a bug or a hand edit:

- ``no_source``: a record (not DELETED) whose source is gone; fix: mark it DELETED and remove
  what it owned.
- ``unprocessed``: a source with no final record of its current bytes; fix: re-queue it with
  a backfill message (``requeue``: the stage's backfill function sends it). The object is not
  touched: no copy (nothing for the bucket's other subscribers, no 5 GB limit); the pipeline
  lets S3's state, not a sequencer, decide when the catalog's record is about other bytes.
- ``orphan``: a thumbnail no live version owns; fix: delete it.
- ``stale_result``: a results document no live version owns, or one describing another version;
  fix: delete it (or rewrite it from the record).

Only what is older than ``min_age`` is judged (work in flight is not a finding), and each fix
re-reads what it acts on first: listings are not a snapshot.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from botocore.exceptions import ClientError

from . import derived
from .catalog import PageKey
from .codec import Json, JsonObject
from .errors import PipelineError
from .outcomes import Reason, Status
from .ports import Listed, LiveObject, ReconcileStore, RecordStore
from .record import ImageRecord, now
from .results import to_json

KINDS = ("no_source", "unprocessed", "orphan", "stale_result")
MARKED_BY = "imgpipe:Reconcile"


@dataclass(frozen=True, slots=True)
class Finding:
    kind: str  # one of KINDS
    key: str  # the source key, or the derived key for orphan and stale_result
    detail: str
    fixed: str = ""  # what --fix did ("" : nothing, or not asked)
    error: str = ""  # why it could not be checked or fixed (an S3 or DynamoDB error)


MAX_KEPT = 1000  # findings a report holds; every one is counted (and passed to on_finding)


@dataclass
class Report:
    """Counts of everything scanned and found; the findings themselves up to ``MAX_KEPT``
    (a run over 10^6 objects must not hold 10^6 findings, nor answer them in one payload)."""

    prefix: str
    sources: int = 0
    records: int = 0
    derived: int = 0
    findings: list[Finding] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    fixed: int = 0
    errors: int = 0  # findings whose check or fix failed (said in their ``error``)
    left_out: int = 0  # findings counted but not kept

    def add(self, finding: Finding) -> None:
        self.counts[finding.kind] += 1
        self.fixed += bool(finding.fixed)
        self.errors += bool(finding.error)
        if len(self.findings) < MAX_KEPT:
            self.findings.append(finding)
        else:
            self.left_out += 1

    def count(self, kind: str) -> int:
        return self.counts[kind]

    @property
    def unresolved(self) -> int:
        return sum(self.counts.values()) - self.fixed

    def line(self) -> str:
        counts = " ".join(f"{kind}={self.count(kind)}" for kind in KINDS)
        extra = f" errors={self.errors}" if self.errors else ""
        return (
            f"sources={self.sources} records={self.records} derived={self.derived} "
            f"{counts} fixed={self.fixed}{extra}"
        )

    def to_document(self) -> JsonObject:
        findings: list[Json] = []
        for f in self.findings:
            finding: JsonObject = {
                "kind": f.kind,
                "key": f.key,
                "detail": f.detail,
                "fixed": f.fixed,
            }
            if f.error:
                finding["error"] = f.error
            findings.append(finding)
        return {
            "prefix": self.prefix,
            "scanned": {"sources": self.sources, "records": self.records, "derived": self.derived},
            "counts": {kind: count for kind, count in self.counts.items()},
            "fixed": self.fixed,
            "errors": self.errors,
            "findings": findings,
            "findings_left_out": self.left_out,
        }


Progress = Callable[[str], None]


class Reconciler:
    def __init__(  # noqa: PLR0913 - the stores it compares, and how a run behaves
        self,
        store: ReconcileStore,
        catalog: RecordStore,
        uploads_bucket: str,
        derived_bucket: str,
        *,
        min_age: timedelta = timedelta(minutes=15),
        progress: Progress | None = None,
        requeue: Callable[[str], str] | None = None,
    ) -> None:
        self._store = store
        self._catalog = catalog
        self._uploads = uploads_bucket
        self._derived = derived_bucket
        self._min_age = min_age
        self._say = progress or (lambda _: None)
        self._requeue_key = requeue

    def run(
        self,
        prefix: str = "",
        *,
        fix: bool = False,
        on_finding: Callable[[Finding], None] | None = None,
    ) -> Report:
        """One pass, in bounded memory: the uploads listing and the catalog are both in key
        order (S3 lists, and DynamoDB sorts string keys, by their UTF-8 bytes), so they are
        merged as they stream; each derived object's owner is looked up by its source key. A
        finding is fixed (with ``fix``) as soon as it is found; an error checking or fixing one
        object is reported with it, and the run goes on."""
        report = Report(prefix)
        for finding in self._findings(prefix, report):
            if fix and not finding.error:
                try:
                    finding = replace(finding, fixed=self._fix(finding))
                except (ClientError, PipelineError) as exc:
                    finding = replace(finding, error=_describe(exc))
            report.add(finding)
            if on_finding is not None:
                on_finding(finding)
            total = sum(report.counts.values())
            if total % 100 == 0:
                self._say(f"{'fixed' if fix else 'found'} {total} findings so far")
        return report

    def _findings(self, prefix: str, report: Report) -> Iterator[Finding]:
        """Every finding under ``prefix``, as the listings stream by (counted in ``report``)."""
        cutoff = datetime.now(UTC) - self._min_age
        sources = self._list(self._uploads, prefix, "sources")
        for key, source, record in _merged(sources, self._records(prefix)):
            report.sources += source is not None
            report.records += record is not None
            finding = _judge(key, source, record, cutoff)
            if finding is not None:
                yield finding
        owners = _Owners(self._catalog, self._uploads)
        for area in (derived.THUMBNAILS, derived.RESULTS, derived.RENDITIONS):
            for obj in self._list(self._derived, area + prefix, "derived objects"):
                report.derived += 1
                if obj.modified > cutoff:
                    continue
                try:
                    judged = self._judge_derived(obj, owners)
                except (ClientError, PipelineError) as exc:
                    judged = Finding("orphan", obj.key, "owner not checked", error=_describe(exc))
                if judged is not None:
                    yield judged

    # -- reading -------------------------------------------------------------------------

    def _list(self, bucket: str, prefix: str, what: str) -> Iterator[Listed]:
        for count, obj in enumerate(self._store.listing(bucket, prefix), 1):
            yield obj
            if count % 1000 == 0:
                self._say(f"listed {count} {what}")

    def _records(self, prefix: str) -> Iterator[ImageRecord]:
        start: PageKey | None = None
        count = 0
        while True:
            page, start = self._catalog.page(self._uploads, prefix=prefix, limit=500, start=start)
            yield from page
            count += len(page)
            if start is None:
                return
            self._say(f"read {count} records")

    # -- judging -------------------------------------------------------------------------

    def _judge_derived(self, obj: Listed, owners: _Owners) -> Finding | None:
        kind = "stale_result" if obj.key.startswith(derived.RESULTS) else "orphan"
        owner = _owner(obj.key, owners)
        if owner is None:
            return Finding(kind, obj.key, "owned by no live version")
        if obj.key.endswith(".json") and kind == "stale_result":
            described = self._described_version(obj.key)
            if described != owner.version:
                return Finding(kind, obj.key, f"describes version {described or '?'}")
        return None

    def _described_version(self, key: str) -> str:
        try:
            doc = json.loads(self._store.read(self._derived, key, 1 << 20))
        except (ClientError, PipelineError, ValueError):
            return ""
        version = doc.get("version") if isinstance(doc, dict) else None
        return version if isinstance(version, str) else ""

    # -- repairing -----------------------------------------------------------------------

    def _fix(self, finding: Finding) -> str:
        if finding.kind == "no_source":
            return self._mark_deleted(finding.key)
        if finding.kind == "unprocessed":
            return self._requeue(finding.key)
        return self._remove_derived(finding.key)

    def _mark_deleted(self, key: str) -> str:
        if self._head(key) is not None:
            return ""  # it came back meanwhile: nothing to repair
        stored = self._catalog.get(self._uploads, key)
        if stored is None or stored.status is Status.DELETED:
            return ""
        record = ImageRecord(
            bucket=stored.bucket,
            key=key,
            version=stored.version,  # any real later event still outranks it
            status=Status.DELETED,
            event_name=MARKED_BY,
            etag=stored.etag,
            sequencer=stored.sequencer,
            event_time=stored.event_time,
            version_id=stored.version_id,
            detail="the source was gone; marked by reconcile",
            updated_at=now(),
            notified=True,  # reconcile does not publish: a late duplicate must not either
        )
        written = derived.successor(record, stored)
        if not self._catalog.replace(written, stored, newer=False):
            return ""
        self._store.delete(self._derived, written.cleanup)
        self._catalog.clear_cleanup(written)
        return "marked DELETED"

    def _requeue(self, key: str) -> str:
        """The backfill function lists the key and reads its record again before it sends:
        an object deleted or processed since the listing is left alone there."""
        if self._requeue_key is None:
            raise PipelineError("no re-queue given (the stage's backfill function)")
        return self._requeue_key(key)

    def _remove_derived(self, key: str) -> str:
        owner = self._owner_now(key)
        if owner is not None and derived.owns(owner, key):
            if key.endswith(".json"):  # owned, but describing another version: rewrite
                self._store.put_document(self._derived, key, to_json(owner), "application/json")
                return "rewritten from the record"
            return ""
        self._store.delete(self._derived, [key])
        return "deleted"

    def _owner_now(self, key: str) -> ImageRecord | None:
        source = derived.source_of(key) or _legacy_source(key)
        return None if source is None else self._catalog.get(self._uploads, source[0])

    def _head(self, key: str) -> LiveObject | None:
        return self._store.live(self._uploads, key)


def _written(record: ImageRecord) -> datetime:
    try:
        return datetime.fromisoformat(record.updated_at)
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)


def _legacy_source(key: str) -> tuple[str, str] | None:
    if key.startswith(derived.RESULTS):
        for fmt in derived.RESULT_FORMATS:
            if key.endswith("." + fmt):
                return key[len(derived.RESULTS) : -len(fmt) - 1], ""
    return None


class _Owners:
    """Records by source key, read when first asked for. The derived listing is in key order,
    so one source's thumbnails come together: the last few answers are all that is kept."""

    def __init__(self, catalog: RecordStore, bucket: str, keep: int = 64) -> None:
        self._catalog, self._bucket, self._keep = catalog, bucket, keep
        self._recent: dict[str, ImageRecord | None] = {}

    def get(self, key: str) -> ImageRecord | None:
        if key not in self._recent:
            if len(self._recent) >= self._keep:
                self._recent.pop(next(iter(self._recent)))
            self._recent[key] = self._catalog.get(self._bucket, key)
        return self._recent[key]


def _owner(key: str, owners: _Owners) -> ImageRecord | None:
    """The live record that owns ``key``, if any."""
    source = derived.source_of(key)
    if source is not None:
        record = owners.get(source[0])
        if record is not None and derived.owns(record, key):
            return record
        return None
    legacy = _legacy_source(key)
    if legacy is not None:
        record = owners.get(legacy[0])
        # a record from before per-version results still owns its unversioned documents
        if record is not None and record.status is Status.DONE and not record.results:
            return record
    return None


def _merged(
    sources: Iterator[Listed], records: Iterator[ImageRecord]
) -> Iterator[tuple[str, Listed | None, ImageRecord | None]]:
    """(key, its source, its record) over both key-ordered streams. Python orders ``str`` by
    code point, which is the UTF-8 byte order S3 and DynamoDB use."""
    source, record = next(sources, None), next(records, None)
    while source is not None or record is not None:
        if record is None or (source is not None and source.key < record.key):
            assert source is not None
            yield source.key, source, None
            source = next(sources, None)
        elif source is None or record.key < source.key:
            yield record.key, None, record
            record = next(records, None)
        else:
            yield source.key, source, record
            source, record = next(sources, None), next(records, None)


def _judge(
    key: str, source: Listed | None, record: ImageRecord | None, cutoff: datetime
) -> Finding | None:
    if source is None:
        assert record is not None
        return _without_source(key, record, cutoff)
    if source.modified > cutoff:
        return None
    if record is None:
        return Finding("unprocessed", key, "no record")
    if record.status is Status.DELETED:
        return Finding("unprocessed", key, "record says DELETED, the object exists")
    if record.etag and record.etag != source.etag:
        return Finding("unprocessed", key, f"record describes ETag {record.etag}")
    return None


def _without_source(key: str, record: ImageRecord, cutoff: datetime) -> Finding | None:
    gone_already = record.status is Status.DELETED or (
        record.status is Status.REJECTED and record.reason is Reason.MISSING
    )  # already says the source is gone
    if gone_already or _written(record) > cutoff:
        return None
    return Finding("no_source", key, f"{record.status} record, no object")


def _describe(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', '?')}: {str(error.get('Message', ''))[:200]}"
    return f"{type(exc).__name__}: {str(exc)[:200]}"
