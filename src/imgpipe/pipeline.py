"""Process one S3 object event end to end.

Outcomes: DONE, REJECTED (the input's fault), DELETED, FAILED (transient failures on the last
allowed receive), or SKIPPED (older than, or a duplicate of, what the catalog holds). What a
failure means is decided by ``errors.decide``; transient ones propagate so that the batch
processor reports the message for retry.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from aws_lambda_powertools import Logger

from . import derived
from .catalog import supersedes
from .config import ProcessSettings
from .errors import (
    Action,
    DeadlineNear,
    Decision,
    NotificationPending,
    SourceChanged,
    SourceMissing,
    WriteContended,
    decide,
    describe,
)
from .events import S3ObjectEvent
from .image_job import process_image
from .imaging import Thumbnail
from .labels import Labeler, NullLabeler
from .observability import record_outcome
from .outcomes import Reason, Status
from .ports import CatalogPort, LiveObject, Publisher, StorePort
from .record import ImageRecord, ThumbnailRef, now
from .results import to_csv, to_json

logger = Logger(child=True)

SKIPPED = "SKIPPED"
_WRITE_ATTEMPTS = 4


@dataclass(frozen=True, slots=True)
class Outcome:
    status: Status | str  # a Status, or SKIPPED
    reason: Reason | None = None


def _deletes_another_version(event: S3ObjectEvent, stored: ImageRecord | None) -> bool:
    """In a versioned bucket, deleting a specific version (``ObjectRemoved:Delete`` with a
    versionId) that is not the one the catalog describes leaves the live object as it was. A
    delete marker (``ObjectRemoved:DeleteMarkerCreated``) does hide the live object."""
    return (
        event.event_name == "ObjectRemoved:Delete"
        and bool(event.version_id)
        and stored is not None
        and bool(stored.version_id)
        and stored.version_id != event.version_id
    )


BACKFILL_VERSION = "b:"  # what S3ObjectEvent.version starts with for a backfill message
_RENDER_MARK = "~r"


def next_render(version: str) -> str:
    """The version of a re-render of ``version``: just above it and every earlier re-render
    of it ("s:...~r0001", "~r0002", ...), below any later S3 event of the key."""
    base, mark, count = version.rpartition(_RENDER_MARK)
    if mark and count.isdigit():
        return f"{base}{_RENDER_MARK}{int(count) + 1:04d}"
    return f"{version}{_RENDER_MARK}0001"


def _same_object(stored: ImageRecord, event: S3ObjectEvent) -> bool:
    """Whether ``stored`` is about the bytes the event names (ETag, and version id where both
    have one), and not a removal."""
    if stored.status is Status.DELETED or not stored.etag or stored.etag != event.etag:
        return False
    return not (stored.version_id and event.version_id and stored.version_id != event.version_id)


class Pipeline:
    def __init__(
        self,
        settings: ProcessSettings,
        store: StorePort,
        catalog: CatalogPort,
        notifier: Publisher,
        labeler: Labeler | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.catalog = catalog
        self.notifier = notifier
        self.labeler = labeler or NullLabeler()
        # Enough for one record's slowest case to finish or fail, and for the FAILED write.
        self.reserve_ms = max(3000, settings.function_timeout * 1000 // 5)
        self._size_names = tuple(size.name for size in settings.render.sizes)
        # Records of a batch run in threads (batch.py); decodes are bounded by
        # memory, writes of one image go out together.
        self._render_slots = threading.BoundedSemaphore(settings.render_slots)
        self._io = ThreadPoolExecutor(
            max_workers=4 * len(self._size_names) + 4, thread_name_prefix="imgpipe-io"
        )

    def handle(
        self,
        event: S3ObjectEvent,
        receive_count: int = 1,
        remaining_ms: Callable[[], int] | None = None,
    ) -> Outcome:
        """``remaining_ms``: the invocation's time left (Lambda's context). A record is not
        started without a reserve: it fails as transient instead (FAILED on the last receive)
        before Lambda's timeout can fail the whole batch unrecorded."""
        if event.bucket != self.settings.uploads_bucket:
            # Only S3 itself can send the uploads bucket's events; anything else reaching the
            # queue is not ours to act on, whatever it claims.
            logger.warning("event for another bucket", extra={"bucket": event.bucket[:80]})
            return Outcome(SKIPPED, None)
        try:
            left = None if remaining_ms is None else remaining_ms()
            if left is not None and left < self.reserve_ms:
                raise DeadlineNear(f"{left} ms left of the invocation")
            return self._handle(event, receive_count)
        except Exception as exc:
            # Only what must be retried gets here. On the last allowed receive, say so in the
            # catalog before SQS moves the message to the DLQ.
            if receive_count >= self.settings.max_receive_count:
                self._record_failure(event, receive_count, exc)
            raise

    def _handle(self, event: S3ObjectEvent, receive_count: int) -> Outcome:
        if event.is_created and receive_count == 1 and not event.is_backfill:
            # A first delivery of an upload is almost always of a key the catalog does not
            # hold yet: skip the read and write "only if absent"; if something is there, the
            # write fails and _write reads it then (one request saved per new image).
            return self._create(event, receive_count, None)
        stored = self.catalog.get(event.bucket, event.key)
        if self._already_current(stored, event):
            return self._skip(event, stored, "already made from these bytes under these settings")
        if event.is_backfill and stored is not None and _same_object(stored, event):
            # The stored version is about these very bytes, made under other settings (or
            # FAILED): render it again under a version just above it, so its new thumbnails
            # get keys of their own (a CDN may hold the old ones as immutable) and any later
            # S3 event still outranks it.
            event = replace(event, rerender_version=next_render(stored.version))
        if not supersedes(stored, event.version) and not self._stale(stored, event):
            return self._skip(event, stored, "duplicate or older delivery")
        if _deletes_another_version(event, stored):
            return self._skip(event, stored, "a non-current version was deleted")
        if event.is_removed:
            return self._remove(event, receive_count, stored)
        return self._create(event, receive_count, stored)

    def _remove(
        self, event: S3ObjectEvent, receive_count: int, stored: ImageRecord | None
    ) -> Outcome:
        if not self._gone(event):
            return self._skip(event, stored, "S3 still holds the object: a stale removal")
        base = ImageRecord.of(event, Status.DELETED, receive_count)
        return self._finish(event, base, stored)

    def _already_current(self, stored: ImageRecord | None, event: S3ObjectEvent) -> bool:
        """Whether ``stored`` already is this event's outcome: a final record of the same bytes
        under the current settings, where one side is a backfill (a backfill of an image done
        since, or the live event of an upload a backfill got to first). Between live events
        the version order alone decides, as before."""
        return (
            event.is_created
            and stored is not None
            and stored.status in (Status.DONE, Status.REJECTED)
            and stored.settings == self.settings.fingerprint
            and _same_object(stored, event)
            and (event.is_backfill or stored.version.startswith(BACKFILL_VERSION))
        )

    def _gone(self, event: S3ObjectEvent) -> bool:
        """A removal is acted on only once S3 confirms it: the key (or, for a deleted version,
        that version) is gone. A removal that arrives after a new upload of the key, or that
        nobody made (a forged message), deletes nothing."""
        version = event.version_id if event.event_name == "ObjectRemoved:Delete" else ""
        return self.store.live(event.bucket, event.key, version) is None

    def _stale(self, stored: ImageRecord | None, event: S3ObjectEvent) -> bool:
        """Whether ``stored`` outranks ``event`` by sequencer only: the event's object is the
        one S3 holds now and ``stored`` is not about it. S3's own state decides then, so a
        record written from a message with an implausible sequencer (forged, or from another
        system) cannot pin the key: the next real upload replaces it."""
        if stored is None or not event.is_created or not event.etag:
            return False
        if stored.version == event.version:
            return False  # a redelivery of the very event the record is from: no HEAD needed
        live = self._live_as_event_says(event)
        if live is None:
            return False
        if stored.status is Status.DELETED:
            return True
        if stored.version_id and live.version_id:
            return stored.version_id != live.version_id
        return stored.etag != live.etag

    def _live_as_event_says(self, event: S3ObjectEvent) -> LiveObject | None:
        """What S3 holds for the event's key, if it is the object the event names."""
        live = self.store.live(event.bucket, event.key)
        if live is None or live.etag != event.etag.strip('"'):
            return None
        if event.version_id and live.version_id and event.version_id != live.version_id:
            return None
        return live

    def _create(
        self, event: S3ObjectEvent, receive_count: int, stored: ImageRecord | None
    ) -> Outcome:
        base = replace(
            ImageRecord.of(event, Status.DONE, receive_count), settings=self.settings.fingerprint
        )
        try:
            record = self._process(event, base)
        except Exception as exc:
            decision = decide(exc)
            if event.is_backfill and isinstance(exc, SourceMissing | SourceChanged):
                # listed, then replaced or deleted: the live event of that change decides
                decision = Decision(Action.SKIP)
            if decision.action is Action.SKIP:
                if stored is None:  # not read yet (a first delivery): what does the table say?
                    stored = self.catalog.get(event.bucket, event.key)
                dead = isinstance(exc, SourceChanged | SourceMissing)
                return self._skip(event, stored, str(exc), dead=dead)
            if decision.action is not Action.REJECT:
                raise
            logger.info("rejected", extra={"reason": decision.reason, "detail": str(exc)})
            detail = getattr(exc, "detail", str(exc))
            # An earlier attempt at this version may have written thumbnails before it failed
            # (a FAILED record, then a redrive that finds the file gone): a final REJECTED
            # version owns none, so its record takes them to clean (S3 deletes are free).
            leftovers = derived.would_own(event.key, event.version, self._size_names)
            record = replace(
                base,
                status=Status.REJECTED,
                reason=decision.reason,
                detail=detail,
                cleanup=tuple(sorted(leftovers)),
            )
        return self._finish(event, record, stored)

    def _process(self, event: S3ObjectEvent, base: ImageRecord) -> ImageRecord:
        started = time.perf_counter()
        cfg = self.settings
        data, etag = self.store.fetch(event.bucket, event.key, event.etag, cfg.render.limits)
        with self._render_slots:
            done = process_image(data, cfg.render, self.labeler, bucket=event.bucket, key=event.key)
        thumbs = self._put_thumbnails(event, done.rendered.thumbnails)
        return replace(
            base,
            etag=etag,
            size=len(data),
            image=done.rendered.info,
            thumbnails=thumbs,
            # written once the record is (see _complete): a document never describes a
            # version that lost
            results=tuple(
                derived.results_key(event.key, event.version, fmt) for fmt in cfg.results_documents
            ),
            findings=done.findings,
            ms=round((time.perf_counter() - started) * 1000, 1),
            thumbnail_ms=done.render_ms,
        )

    def _put_thumbnails(
        self, event: S3ObjectEvent, thumbnails: Sequence[Thumbnail]
    ) -> tuple[ThumbnailRef, ...]:
        """Write them; if one fails (a key S3 finds too long is a rejection), remove those
        already written, which no record will ever own."""
        bucket = self.settings.derived_bucket
        keyed = [
            (thumb, derived.thumbnail_key(event.key, event.version, thumb.name, thumb.extension))
            for thumb in thumbnails
        ]
        puts = [self._io.submit(self.store.put_thumbnail, bucket, k, t) for t, k in keyed]
        wait(puts)
        failed = [f.exception() for f in puts if f.exception() is not None]
        if failed:
            written = [k for (_, k), f in zip(keyed, puts, strict=True) if f.exception() is None]
            if written:
                try:
                    self.store.delete(bucket, written)
                except Exception:  # an orphan `imgpipe reconcile` finds; the cause matters more
                    logger.exception("could not remove partial thumbnails")
            error = failed[0]
            assert error is not None
            raise error
        refs = [
            ThumbnailRef(
                name=thumb.name,
                key=key,
                width=thumb.width,
                height=thumb.height,
                bytes=len(thumb.data),
                content_type=thumb.content_type,
            )
            for thumb, key in keyed
        ]
        return tuple(refs)

    def _write(
        self,
        record: ImageRecord,
        stored: ImageRecord | None,
        event: S3ObjectEvent | None = None,
    ) -> tuple[ImageRecord | None, ImageRecord | None]:
        """Replace ``stored`` with ``record`` (compare-and-swap), re-reading while others
        write first and ``record`` still outranks what they wrote (or, given the ``event`` a
        final record comes from, what they wrote is ``_stale``). Returns (the record as
        written or None if it lost, what the table holds otherwise)."""
        for _ in range(_WRITE_ATTEMPTS):
            if event is not None and self._already_current(stored, event):
                return None, stored
            newer = supersedes(stored, record.version)
            if not newer and not (event is not None and self._stale(stored, event)):
                return None, stored
            candidate = derived.successor(replace(record, updated_at=now()), stored)
            if self.catalog.replace(candidate, stored, newer=newer):
                return candidate, stored
            stored = self.catalog.get(record.bucket, record.key)
        raise WriteContended(f"{record.key}: the record changed under {_WRITE_ATTEMPTS} writes")

    def _finish(
        self, event: S3ObjectEvent, record: ImageRecord, stored: ImageRecord | None
    ) -> Outcome:
        written, current = self._write(record, stored, event if event.is_created else None)
        if written is None:
            # A newer version (or this one) won a race while we worked. Keys are per version:
            # what this attempt wrote is nobody else's unless the winner is this very version.
            if current is None or current.version != record.version:
                self.store.delete(self.settings.derived_bucket, derived.owned(record))
            return self._skip(event, current, "lost to a newer version (or a duplicate)")
        self._complete(written)
        record_outcome(written)
        logger.info("final", extra={"status": written.status, "key": written.key})
        return Outcome(written.status, written.reason)

    def _complete(self, record: ImageRecord) -> None:
        """What follows a won write, in an order any later delivery can resume: remove what
        earlier versions owned, write the results documents, announce. A crash anywhere here
        leaves the record un-notified (and its cleanup listed), which the next touch of the
        key (a retry, a duplicate, a redrive) finishes in ``_skip``."""
        self._clean(record)
        self._write_results(record)
        self._notify(record)

    def _clean(self, record: ImageRecord) -> None:
        if record.cleanup:
            self.store.delete(self.settings.derived_bucket, record.cleanup)
            self.catalog.clear_cleanup(record)

    def _write_results(self, record: ImageRecord) -> None:
        bucket = self.settings.derived_bucket
        puts = [
            self._io.submit(
                self.store.put_document, bucket, key, to_json(record), "application/json"
            )
            if key.endswith(".json")
            else self._io.submit(
                self.store.put_document, bucket, key, to_csv(record), "text/csv; charset=utf-8"
            )
            for key in record.results
        ]
        for put in puts:
            put.result()  # the first failure raises: the message is retried

    def _notify(self, record: ImageRecord) -> None:
        # A failed publish raises: the message is retried and the pre-check below sends it.
        self.notifier.publish(record)
        # The notification went out: from here on a raise would make SQS repeat it, so the
        # mark is tried a few times and then given up (at worst a later duplicate re-sends).
        for attempt in range(3):
            try:
                if not self.catalog.mark_notified(record):
                    # Replaced since it was written: the successor's cleanup may have run
                    # before our documents landed, so remove them ourselves.
                    self.store.delete(self.settings.derived_bucket, record.results)
                return
            except Exception:  # noqa: BLE001
                logger.warning("could not mark notified", extra={"attempt": attempt + 1})

    def _skip(
        self, event: S3ObjectEvent, stored: ImageRecord | None, why: str, *, dead: bool = False
    ) -> Outcome:
        """Nothing new to write; but finish what the stored record left undone, and remove
        what an earlier attempt at this event's version may have written before it crashed,
        failed or lost, when that version can no longer win: it is older than the record, or
        ``dead`` (its bytes are gone from the bucket, so no delivery of it can render again)."""
        if stored is not None:
            self._clean(stored)
        older = stored is not None and event.version < stored.version
        if event.is_created and (older or dead):
            would = derived.would_own(event.key, event.version, self._size_names)
            self.store.delete(self.settings.derived_bucket, would - derived.owned(stored))
        if stored is not None and stored.version == event.version and not stored.notified:
            # Same version already final, but not yet announced. Either its writer died or
            # failed to publish (then finish it now, once), or another delivery of the same
            # message is announcing it this very moment (SQS delivers at least once): while
            # that writer's invocation may still be running, wait for it instead of racing it.
            if self._writer_may_be_running(stored):
                raise NotificationPending(
                    f"{stored.key} {stored.version}: written {stored.updated_at}"
                )
            self._complete(stored)
        logger.info("skipped", extra={"why": why, "key": event.key})
        return Outcome(SKIPPED, None)

    def _writer_may_be_running(self, stored: ImageRecord) -> bool:
        try:
            written = datetime.fromisoformat(stored.updated_at)
        except ValueError:
            return False
        age = (datetime.now(UTC) - written).total_seconds()
        return age < self.settings.function_timeout + 1

    def _record_failure(self, event: S3ObjectEvent, receive_count: int, exc: BaseException) -> None:
        """Last allowed receive: say in the catalog that this upload is going to the DLQ.
        Conditional like every write: it never hides a newer or completed version. The FAILED
        record inherits what the replaced one owned, so nothing it leaves is forgotten."""
        record = replace(
            ImageRecord.of(event, Status.FAILED, receive_count),
            reason=Reason.TRANSIENT,
            detail=describe(exc),
        )
        try:
            stored = self.catalog.get(event.bucket, event.key)
            written, _ = self._write(record, stored)
            if written is not None:
                self._complete(written)
                record_outcome(written)
        except Exception:  # the original error matters more; it is re-raised
            logger.exception("could not record FAILED", extra={"key": event.key})
