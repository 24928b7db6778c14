"""Compare the uploads bucket, the catalog and the derived bucket; report (and repair) what
disagrees.

Four findings, each a thing the pipeline should never leave behind, found after an incident, a
lost message, a bug or a hand edit:

- ``no_source``: a record (not DELETED) whose source is gone; fix: mark it DELETED and remove
  what it owned.
- ``unprocessed``: a source with no final record of its current bytes; fix: re-queue it by
  copying the object onto itself (S3 then announces it again, with a fresh sequencer, so the
  pipeline orders it after whatever the catalog holds).
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
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from . import derived
from .catalog import Catalog, PageKey
from .errors import SourceMissing, translate
from .outcomes import Reason, Status
from .record import ImageRecord, now
from .results import to_json
from .storage import ObjectStore

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CopyObjectRequestTypeDef, HeadObjectOutputTypeDef

KINDS = ("no_source", "unprocessed", "orphan", "stale_result")
MARKED_BY = "imgpipe:Reconcile"


@dataclass(frozen=True, slots=True)
class Finding:
    kind: str  # one of KINDS
    key: str  # the source key, or the derived key for orphan and stale_result
    detail: str
    fixed: str = ""  # what --fix did ("" : nothing, or not asked)


@dataclass
class Report:
    prefix: str
    sources: int = 0
    records: int = 0
    derived: int = 0
    findings: list[Finding] = field(default_factory=list)

    def count(self, kind: str) -> int:
        return sum(f.kind == kind for f in self.findings)

    @property
    def fixed(self) -> int:
        return sum(bool(f.fixed) for f in self.findings)

    @property
    def unresolved(self) -> int:
        return sum(not f.fixed for f in self.findings)

    def line(self) -> str:
        counts = " ".join(f"{kind}={self.count(kind)}" for kind in KINDS)
        return (
            f"sources={self.sources} records={self.records} derived={self.derived} "
            f"{counts} fixed={self.fixed}"
        )

    def to_document(self) -> dict[str, object]:
        return {
            "prefix": self.prefix,
            "scanned": {"sources": self.sources, "records": self.records, "derived": self.derived},
            "counts": {kind: self.count(kind) for kind in KINDS},
            "fixed": self.fixed,
            "findings": [
                {"kind": f.kind, "key": f.key, "detail": f.detail, "fixed": f.fixed}
                for f in self.findings
            ],
        }


@dataclass(frozen=True, slots=True)
class Listed:
    key: str
    etag: str
    modified: datetime


Progress = Callable[[str], None]


class Reconciler:
    def __init__(
        self,
        s3: S3Client,
        catalog: Catalog,
        uploads_bucket: str,
        derived_bucket: str,
        *,
        min_age: timedelta = timedelta(minutes=15),
        progress: Progress | None = None,
    ) -> None:
        self._s3 = s3
        self._store = ObjectStore(s3)
        self._catalog = catalog
        self._uploads = uploads_bucket
        self._derived = derived_bucket
        self._min_age = min_age
        self._say = progress or (lambda _: None)

    def run(self, prefix: str = "", *, fix: bool = False) -> Report:
        report = Report(prefix)
        cutoff = datetime.now(UTC) - self._min_age
        sources = {o.key: o for o in self._list(self._uploads, prefix, "sources")}
        records = dict(self._records(prefix))
        derived_objects = [
            o
            for area in (derived.THUMBNAILS, derived.RESULTS)
            for o in self._list(self._derived, area + prefix, "derived objects")
        ]
        report.sources, report.records, report.derived = (
            len(sources),
            len(records),
            len(derived_objects),
        )
        found = [
            *self._records_without_source(records, sources, cutoff),
            *self._unprocessed_sources(records, sources, cutoff),
            *self._unowned_derived(records, derived_objects, cutoff),
        ]
        for number, finding in enumerate(found, 1):
            if fix:
                finding = replace(finding, fixed=self._fix(finding))
            report.findings.append(finding)
            if number % 100 == 0:
                self._say(f"{'fixed' if fix else 'checked'} {number} of {len(found)} findings")
        return report

    # -- reading -------------------------------------------------------------------------

    def _list(self, bucket: str, prefix: str, what: str) -> Iterator[Listed]:
        pages = self._s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        count = 0
        for page in pages:
            for obj in page.get("Contents", []):
                count += 1
                yield Listed(obj["Key"], obj.get("ETag", "").strip('"'), obj["LastModified"])
            if count:
                self._say(f"listed {count} {what}")

    def _records(self, prefix: str) -> Iterator[tuple[str, ImageRecord]]:
        start: PageKey | None = None
        count = 0
        while True:
            page, start = self._catalog.page(self._uploads, prefix=prefix, limit=500, start=start)
            for record in page:
                yield record.key, record
            count += len(page)
            if start is None:
                return
            self._say(f"read {count} records")

    # -- judging -------------------------------------------------------------------------

    @staticmethod
    def _records_without_source(
        records: dict[str, ImageRecord], sources: dict[str, Listed], cutoff: datetime
    ) -> Iterator[Finding]:
        for key, record in records.items():
            if key in sources or record.status is Status.DELETED:
                continue
            if record.status is Status.REJECTED and record.reason is Reason.MISSING:
                continue  # already says the source was gone
            if _written(record) <= cutoff:
                yield Finding("no_source", key, f"{record.status} record, no object")

    @staticmethod
    def _unprocessed_sources(
        records: dict[str, ImageRecord], sources: dict[str, Listed], cutoff: datetime
    ) -> Iterator[Finding]:
        for key, source in sources.items():
            if source.modified > cutoff:
                continue
            record = records.get(key)
            if record is None:
                yield Finding("unprocessed", key, "no record")
            elif record.status is Status.DELETED:
                yield Finding("unprocessed", key, "record says DELETED, the object exists")
            elif record.etag and record.etag != source.etag:
                yield Finding("unprocessed", key, f"record describes ETag {record.etag}")

    def _unowned_derived(
        self, records: dict[str, ImageRecord], objects: list[Listed], cutoff: datetime
    ) -> Iterator[Finding]:
        for obj in objects:
            if obj.modified > cutoff:
                continue
            kind = "stale_result" if obj.key.startswith(derived.RESULTS) else "orphan"
            owner = _owner(obj.key, records)
            if owner is None:
                yield Finding(kind, obj.key, "owned by no live version")
            elif obj.key.endswith(".json") and kind == "stale_result":
                described = self._described_version(obj.key)
                if described != owner.version:
                    yield Finding(kind, obj.key, f"describes version {described or '?'}")

    def _described_version(self, key: str) -> str:
        try:
            body = self._s3.get_object(Bucket=self._derived, Key=key)["Body"].read(1 << 20)
            doc = json.loads(body)
        except (ClientError, ValueError):
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
        head = self._head(key)
        if head is None:
            return ""
        etag = str(head.get("ETag", "")).strip('"')
        stored = self._catalog.get(self._uploads, key)
        if stored is not None and stored.status is not Status.DELETED and stored.etag == etag:
            return ""  # processed meanwhile
        copy: CopyObjectRequestTypeDef = {
            "Bucket": self._uploads,
            "Key": key,
            "CopySource": {"Bucket": self._uploads, "Key": key},
            # S3 refuses a copy onto itself that changes nothing; REPLACE drops what is not
            # given again, so the object's headers and user metadata are carried over
            "MetadataDirective": "REPLACE",
            "Metadata": dict(head.get("Metadata", {})),
            "CopySourceIfMatch": str(head.get("ETag", "")),  # exactly the bytes judged
        }
        for name in ("ContentType", "CacheControl", "ContentDisposition", "ContentEncoding"):
            value = head.get(name)
            if isinstance(value, str):
                copy[name] = value
        self._s3.copy_object(**copy)
        return "re-queued (copied onto itself)"

    def _remove_derived(self, key: str) -> str:
        owner = self._owner_now(key)
        if owner is not None and key in derived.owned(owner):
            if key.endswith(".json"):  # owned, but describing another version: rewrite
                self._store.put_document(self._derived, key, to_json(owner), "application/json")
                return "rewritten from the record"
            return ""
        self._store.delete(self._derived, [key])
        return "deleted"

    def _owner_now(self, key: str) -> ImageRecord | None:
        source = derived.source_of(key) or _legacy_source(key)
        return None if source is None else self._catalog.get(self._uploads, source[0])

    def _head(self, key: str) -> HeadObjectOutputTypeDef | None:
        try:
            return self._s3.head_object(Bucket=self._uploads, Key=key)
        except ClientError as exc:
            if isinstance(translate("s3", exc), SourceMissing):
                return None
            raise


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


def _owner(key: str, records: dict[str, ImageRecord]) -> ImageRecord | None:
    """The live record that owns ``key``, if any."""
    source = derived.source_of(key)
    if source is not None:
        record = records.get(source[0])
        if record is not None and key in derived.owned(record):
            return record
        return None
    legacy = _legacy_source(key)
    if legacy is not None:
        record = records.get(legacy[0])
        # a record from before per-version results still owns its unversioned documents
        if record is not None and record.status is Status.DONE and not record.results:
            return record
    return None
