"""Process one S3 object event end to end, carrying out ``ordering.decide`` for its key.

Outcomes: DONE, REJECTED (the input's fault), DELETED, FAILED (transient failures on the last
allowed receive), or SKIPPED. What a failure means is ``errors.decide``'s; transient ones
propagate, so that the batch processor reports the message for retry."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace

from aws_lambda_powertools import Logger

from . import derived, errors, ordering
from .config import ProcessSettings
from .errors import Action, Decision
from .events import S3ObjectEvent
from .image_job import process_image
from .labels import Labeler, NullLabeler
from .observability import record_outcome
from .ordering import Look, next_render
from .outcomes import Outcome, Reason, Skipped, Status
from .outputs import Outputs
from .ports import CatalogPort, Publisher, StorePort
from .record import ImageRecord, now

logger = Logger(child=True)


SKIPPED = Skipped.SKIPPED
_WRITE_ATTEMPTS = 4
__all__ = ["SKIPPED", "Outcome", "Pipeline", "next_render"]


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
        # Records of a batch run in threads (batch.py); decodes are bounded by memory.
        self._render_slots = threading.BoundedSemaphore(settings.render_slots)
        sizes = tuple(size.name for size in settings.render.sizes)
        self.layout = derived.Layout(sizes, settings.token_secret)
        self.outputs = Outputs(settings.derived_bucket, store, catalog, notifier, self.layout)

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
                raise errors.DeadlineNear(f"{left} ms left of the invocation")
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
        decision = ordering.decide(stored, event, self.settings.fingerprint, self._look(event))
        if decision.action is ordering.Action.SKIP:
            return self._skip(event, stored, str(decision.why))
        if decision.action is ordering.Action.REMOVE:
            deleted = ImageRecord.of(event, Status.DELETED, receive_count)
            return self._finish(event, deleted, stored, confirmed=decision.confirmed)
        if decision.action is ordering.Action.RERENDER:
            event = replace(event, rerender_version=decision.version)
        return self._create(event, receive_count, stored)

    def _look(self, event: S3ObjectEvent) -> Look:
        """S3's word on the event's key (that version, if asked), for the rules that need it."""
        return lambda version: self.store.live(event.bucket, event.key, version)

    def _create(
        self, event: S3ObjectEvent, receive_count: int, stored: ImageRecord | None
    ) -> Outcome:
        base = replace(
            ImageRecord.of(event, Status.DONE, receive_count), settings=self.settings.fingerprint
        )
        try:
            record = self._process(event, base)
        except Exception as exc:
            decision = errors.decide(exc)
            gone = isinstance(exc, errors.SourceMissing | errors.SourceChanged)
            if gone or decision.action is Action.SKIP:  # a first delivery has not read it yet
                stored = stored or self.catalog.get(event.bucket, event.key)
            if gone and ordering.dead_on_arrival(stored, event):
                decision = Decision(Action.SKIP)
            if decision.action is Action.SKIP:
                return self._skip(event, stored, str(exc), dead=gone)
            if decision.action is not Action.REJECT:
                raise
            logger.info("rejected", extra={"reason": decision.reason, "detail": str(exc)})
            detail = getattr(exc, "detail", str(exc))
            # An earlier attempt at this version may have written thumbnails before it failed
            # (a FAILED record, then a redrive that finds the file gone): a final REJECTED
            # version owns none, so its record takes them to clean (S3 deletes are free).
            leftovers = self.layout.would_own(event.key, event.version)
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
        thumbs = self.outputs.put_thumbnails(event, done.rendered.thumbnails)
        return replace(
            base,
            etag=etag,
            size=len(data),
            image=done.rendered.info,
            thumbnails=thumbs,
            # written once the record is (see _complete): a document never describes a
            # version that lost
            results=tuple(
                self.layout.results_key(event.key, event.version, fmt)
                for fmt in cfg.results_documents
            ),
            findings=done.findings,
            ms=round((time.perf_counter() - started) * 1000, 1),
            thumbnail_ms=done.render_ms,
        )

    def _write(
        self,
        record: ImageRecord,
        stored: ImageRecord | None,
        event: S3ObjectEvent | None = None,
        *,
        confirmed: bool = False,
    ) -> tuple[ImageRecord | None, ImageRecord | None]:
        """Replace ``stored`` with ``record`` (compare-and-swap), re-reading while others
        write first and ``record`` still outranks what they wrote (or, given the ``event`` a
        final record comes from, what they wrote is stale: ordering.may_write). Returns (the
        record as written or None if it lost, what the table holds otherwise)."""
        look = self._look(event) if event is not None else lambda _version: None
        for _ in range(_WRITE_ATTEMPTS):
            allowed, newer = ordering.may_write(
                stored,
                record.version,
                event,
                self.settings.fingerprint,
                look,
                confirmed_removal=confirmed,
            )
            if not allowed:
                return None, stored
            candidate = derived.successor(replace(record, updated_at=now()), stored)
            if self.catalog.replace(candidate, stored, newer=newer):
                return candidate, stored
            stored = self.catalog.get(record.bucket, record.key)
        raise errors.WriteContended(
            f"{record.key}: the record changed under {_WRITE_ATTEMPTS} writes"
        )

    def _finish(
        self,
        event: S3ObjectEvent,
        record: ImageRecord,
        stored: ImageRecord | None,
        *,
        confirmed: bool = False,
    ) -> Outcome:
        creation = event if event.is_created else None
        written, current = self._write(record, stored, creation, confirmed=confirmed)
        if written is None:
            # A newer version (or this one) won a race while we worked. Keys are per version:
            # what this attempt wrote is nobody else's unless the winner is this very version.
            if current is None or current.version != record.version:
                self.outputs.delete(derived.owned(record))
            return self._skip(event, current, "lost to a newer version (or a duplicate)")
        self.outputs.complete(written)
        record_outcome(written)
        logger.info("final", extra={"status": written.status, "key": written.key})
        return Outcome(written.status, written.reason)

    def _skip(
        self, event: S3ObjectEvent, stored: ImageRecord | None, why: str, *, dead: bool = False
    ) -> Outcome:
        """Nothing new to write; but finish what the stored record left undone, and remove
        what an earlier attempt at this event's version may have written before it crashed,
        failed or lost, when that version can no longer win: it is older than the record, or
        ``dead`` (its bytes are gone from the bucket, so no delivery of it can render again)."""
        if stored is not None:
            self.outputs.clean(stored)
        if event.is_created and (ordering.outranked(event, stored) or dead):
            self.outputs.abandon(event.key, event.version, stored)
        if stored is not None and stored.version == event.version and not stored.notified:
            self.outputs.resume(stored, self.settings.function_timeout)
        logger.info("skipped", extra={"why": why, "key": event.key})
        return Outcome(SKIPPED, None)

    def _record_failure(self, event: S3ObjectEvent, receive_count: int, exc: BaseException) -> None:
        """Last allowed receive: say in the catalog that this upload is going to the DLQ.
        Conditional like every write: it never hides a newer or completed version. The FAILED
        record inherits what the replaced one owned, so nothing it leaves is forgotten."""
        record = replace(
            ImageRecord.of(event, Status.FAILED, receive_count),
            reason=Reason.TRANSIENT,
            detail=errors.describe(exc),
        )
        try:
            stored = self.catalog.get(event.bucket, event.key)
            written, _ = self._write(record, stored)
            if written is not None:
                self.outputs.complete(written)
                record_outcome(written)
        except Exception:  # the original error matters more; it is re-raised
            logger.exception("could not record FAILED", extra={"key": event.key})
