"""What a final record leaves behind, in an order any later delivery can resume: thumbnails
written before the record, then (after the record won its write) what earlier versions owned
removed, the results documents written, the outcome announced and marked so."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from datetime import UTC, datetime

from aws_lambda_powertools import Logger

from . import derived
from .errors import NotificationPending
from .events import S3ObjectEvent
from .imaging import Thumbnail
from .ports import CatalogPort, Publisher, StorePort
from .record import ImageRecord, ThumbnailRef
from .results import to_csv, to_json

logger = Logger(child=True)

# seconds between the tries of marking an announced record (five tries, 1.5 s at most)
MARK_BACKOFF = (0.1, 0.2, 0.4, 0.8)


def now_utc() -> datetime:
    return datetime.now(UTC)


class Outputs:
    def __init__(
        self,
        bucket: str,
        store: StorePort,
        catalog: CatalogPort,
        notifier: Publisher,
        layout: derived.Layout,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.bucket = bucket
        self.layout = layout
        self.sleep = sleep
        self.store = store
        self.catalog = catalog
        self.notifier = notifier
        # the writes of one image go out together: each size in each format, and documents
        self._io = ThreadPoolExecutor(
            max_workers=4 * len(layout.sizes) + 4, thread_name_prefix="imgpipe-io"
        )

    def delete(self, keys: Sequence[str] | set[str] | frozenset[str]) -> None:
        if keys:
            self.store.delete(self.bucket, keys)

    def abandon(self, key: str, version: str, stored: ImageRecord | None) -> None:
        """Remove what an attempt at ``version`` may have written before it crashed, failed or
        lost, once that version can no longer win (what ``stored`` owns stays)."""
        self.delete(self.layout.would_own(key, version) - derived.owned(stored))

    def resume(self, stored: ImageRecord, function_timeout: int) -> None:
        """A final record not yet announced. Either its writer died or failed to publish (then
        finish it now, once), or another delivery of the same message is announcing it this
        very moment (SQS delivers at least once): while that writer's invocation may still be
        running, wait for it (a retry) instead of racing it."""
        try:
            written = datetime.fromisoformat(stored.updated_at)
        except ValueError:
            written = None
        if written is not None and (now_utc() - written).total_seconds() < function_timeout + 1:
            raise NotificationPending(f"{stored.key} {stored.version}: written {stored.updated_at}")
        self.complete(stored)

    def put_thumbnails(
        self, event: S3ObjectEvent, thumbnails: Sequence[Thumbnail]
    ) -> tuple[ThumbnailRef, ...]:
        """Write them; if one fails (a key S3 finds too long is a rejection), remove those
        already written, which no record will ever own."""
        bucket = self.bucket
        keyed = [
            (
                thumb,
                self.layout.thumbnail_key(event.key, event.version, thumb.name, thumb.extension),
            )
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

    def complete(self, record: ImageRecord) -> None:
        """What follows a won write, in an order any later delivery can resume: remove what
        earlier versions owned, write the results documents, announce. A crash anywhere here
        leaves the record un-notified (and its cleanup listed), which the next touch of the
        key (a retry, a duplicate, a redrive) finishes (Pipeline._skip)."""
        self.clean(record)
        self._write_results(record)
        self._notify(record)

    def clean(self, record: ImageRecord) -> None:
        if record.cleanup:
            self.store.delete(self.bucket, record.cleanup)
            self._drop_renditions(record)
            self.catalog.clear_cleanup(record)

    def _drop_renditions(self, record: ImageRecord) -> None:
        """The renditions of the versions ``record`` replaced (all of them once it is
        DELETED): no record lists them, so its key's are listed. Only a record that replaced
        another has anything to clean, so this costs a listing only then."""
        prefix = f"{derived.RENDITIONS}{record.key}/"
        stale = [
            obj.key
            for obj in self.store.listing(self.bucket, prefix)
            if (derived.source_of(obj.key) or ("",))[0] == record.key
            and not derived.owns(record, obj.key)
        ]
        if stale:
            self.store.delete(self.bucket, stale)

    def _write_results(self, record: ImageRecord) -> None:
        bucket = self.bucket
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
        # The notification went out: from here on a raise would make SQS repeat it, so the mark
        # is tried with backoff (a throttled table recovers within a second or so) and then
        # given up: at worst a later delivery re-sends (announcements are at least once).
        for attempt, pause in enumerate((*MARK_BACKOFF, None), start=1):
            try:
                if not self.catalog.mark_notified(record):
                    # Replaced since it was written: the successor's cleanup may have run
                    # before our documents landed, so remove them ourselves.
                    self.store.delete(self.bucket, record.results)
                return
            except Exception:  # noqa: BLE001
                logger.warning("could not mark notified", extra={"attempt": attempt})
            if pause is not None:
                self.sleep(pause)
