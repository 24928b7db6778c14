"""Process one S3 object event end to end.

Outcomes: DONE, REJECTED (the input's fault), DELETED, FAILED (transient failures on the last
allowed receive), or SKIPPED (older than, or a duplicate of, what the catalog holds). What a
failure means is decided by ``errors.decide``; transient ones propagate so that the batch
processor reports the message for retry.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from aws_lambda_powertools import Logger

from .catalog import Catalog, supersedes
from .config import Settings
from .errors import Action, DeadlineNear, NotificationPending, decide, describe
from .events import S3ObjectEvent
from .labels import Labeler, NullLabeler
from .notify import Notifier
from .observability import record_outcome
from .outcomes import Reason, Status
from .processing import process_image
from .record import ImageRecord, ThumbnailRef, now
from .results import results_keys, to_csv, to_json
from .storage import ObjectStore

logger = Logger(child=True)

SKIPPED = "SKIPPED"


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


class Pipeline:
    def __init__(
        self,
        settings: Settings,
        store: ObjectStore,
        catalog: Catalog,
        notifier: Notifier,
        labeler: Labeler | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.catalog = catalog
        self.notifier = notifier
        self.labeler = labeler or NullLabeler()
        # Enough for one record's slowest case to finish or fail, and for the FAILED write.
        self.reserve_ms = max(3000, settings.function_timeout * 1000 // 5)

    def handle(
        self,
        event: S3ObjectEvent,
        receive_count: int = 1,
        remaining_ms: Callable[[], int] | None = None,
    ) -> Outcome:
        """``remaining_ms``: the invocation's time left (Lambda's context). A record is not
        started without a reserve: it fails as transient instead (FAILED on the last receive)
        before Lambda's timeout can fail the whole batch unrecorded."""
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
        stored = self.catalog.get(event.bucket, event.key)
        if not supersedes(stored, event.version):
            return self._skip(event, stored, "duplicate or older delivery")
        if _deletes_another_version(event, stored):
            return self._skip(event, None, "a non-current version was deleted")
        base = ImageRecord.of(event, Status.DONE, receive_count)
        if event.is_removed:
            return self._finish(
                replace(base, status=Status.DELETED), extra_deletes=results_keys(event.key)
            )
        try:
            record = self._process(event, base)
        except Exception as exc:
            decision = decide(exc)
            if decision.action is Action.SKIP:
                return self._skip(event, stored, str(exc))
            if decision.action is not Action.REJECT:
                raise
            logger.info("rejected", extra={"reason": decision.reason, "detail": str(exc)})
            detail = getattr(exc, "detail", str(exc))
            record = replace(base, status=Status.REJECTED, reason=decision.reason, detail=detail)
        return self._finish(record)

    def _process(self, event: S3ObjectEvent, base: ImageRecord) -> ImageRecord:
        started = time.perf_counter()
        cfg = self.settings
        data, etag = self.store.fetch(event.bucket, event.key, event.etag, cfg.render.limits)
        done = process_image(data, cfg.render, self.labeler, bucket=event.bucket, key=event.key)
        thumbs = tuple(
            ThumbnailRef(
                name=thumb.name,
                key=self.store.put_thumbnail(cfg.derived_bucket, event.key, etag, thumb),
                width=thumb.width,
                height=thumb.height,
                bytes=len(thumb.data),
                content_type=thumb.content_type,
            )
            for thumb in done.rendered.thumbnails
        )
        record = replace(
            base,
            etag=etag,
            size=len(data),
            image=done.rendered.info,
            thumbnails=thumbs,
            findings=done.findings,
            ms=round((time.perf_counter() - started) * 1000, 1),
            thumbnail_ms=done.render_ms,
        )
        # Written before the catalog: a failure here is retried with the rest.
        json_key, csv_key = results_keys(event.key)
        self.store.put_document(cfg.derived_bucket, json_key, to_json(record), "application/json")
        self.store.put_document(
            cfg.derived_bucket, csv_key, to_csv(record), "text/csv; charset=utf-8"
        )
        return record

    def _finish(self, record: ImageRecord, extra_deletes: tuple[str, ...] = ()) -> Outcome:
        record = replace(record, updated_at=now())  # when the outcome was written
        written, previous = self.catalog.write_if_newer(record)
        derived = self.settings.derived_bucket
        if not written:
            # A newer version (or this one) won a race while we worked: what we wrote for this
            # version must not linger. Keys are per version, so the winner's are untouched.
            current = self.catalog.get(record.bucket, record.key)
            kept = current.thumbnail_keys if current else frozenset()
            self.store.delete(derived, record.thumbnail_keys - kept)
            logger.info("lost to a newer version", extra={"key": record.key})
            return Outcome(SKIPPED, None)
        old = previous.thumbnail_keys if previous else frozenset()
        stale = (old - record.thumbnail_keys) | set(extra_deletes)
        if stale:
            self.store.delete(derived, stale)
        self._notify(record)
        record_outcome(record)
        logger.info("final", extra={"status": record.status, "key": record.key})
        return Outcome(record.status, record.reason)

    def _notify(self, record: ImageRecord) -> None:
        # A failed publish raises: the message is retried and the pre-check below sends it.
        self.notifier.publish(record)
        # The notification went out: from here on a raise would make SQS repeat it, so the
        # mark is tried a few times and then given up (at worst a later duplicate re-sends).
        for attempt in range(3):
            try:
                self.catalog.mark_notified(record)
                return
            except Exception:  # noqa: BLE001
                logger.warning("could not mark notified", extra={"attempt": attempt + 1})

    def _skip(self, event: S3ObjectEvent, stored: ImageRecord | None, why: str) -> Outcome:
        if stored is not None and stored.version == event.version and not stored.notified:
            # Same version already final, but not yet announced. Either its writer died or
            # failed to publish (then send it now, once), or another delivery of the same
            # message is announcing it this very moment (SQS delivers at least once): while
            # that writer's invocation may still be running, wait for it instead of racing it.
            if self._writer_may_be_running(stored):
                raise NotificationPending(
                    f"{stored.key} {stored.version}: written {stored.updated_at}"
                )
            self._notify(stored)
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
        Conditional like every write: it never hides a newer or completed version."""
        record = replace(
            ImageRecord.of(event, Status.FAILED, receive_count),
            reason=Reason.TRANSIENT,
            detail=describe(exc),
        )
        try:
            written, _ = self.catalog.write_if_newer(record)
            if written:
                self._notify(record)
                record_outcome(record)
        except Exception:  # the original error matters more; it is re-raised
            logger.exception("could not record FAILED", extra={"key": event.key})
