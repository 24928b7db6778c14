"""Process one S3 object event end to end.

Outcomes: DONE, REJECTED (permanent, see ``errors``), DELETED, FAILED (transient on the last
allowed receive), or SKIPPED (older than, or a duplicate of, what the catalog holds). Transient
errors propagate so the batch processor reports the message for retry.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger

from .catalog import Catalog, supersedes
from .config import Settings
from .errors import PERMANENT, Superseded, describe
from .events import S3ObjectEvent
from .imaging import render
from .labels import Labeler, LabelRequest, NullLabeler
from .notify import Notifier
from .observability import record_outcome
from .results import results_keys, to_csv, to_json
from .storage import ObjectStore

logger = Logger(child=True)


@dataclass(frozen=True, slots=True)
class Outcome:
    status: str
    reason: str = ""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _base_record(event: S3ObjectEvent, receive_count: int) -> dict[str, Any]:
    return {
        "bucket": event.bucket,
        "key": event.key,
        "version": event.version,
        "event_name": event.event_name,
        "etag": event.etag,
        "size": event.size,
        "sequencer": event.sequencer,
        "event_time": event.event_time,
        "attempts": receive_count,
        "notified": False,
    }


def _thumb_keys(record: dict[str, Any] | None) -> set[str]:
    return {t["key"] for t in (record or {}).get("thumbnails", [])}


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

    def handle(self, event: S3ObjectEvent, receive_count: int = 1) -> Outcome:
        try:
            return self._handle(event, receive_count)
        except Exception as exc:
            # Transient, wherever it happened. On the last allowed receive, say so in the
            # catalog before SQS moves the message to the DLQ.
            if receive_count >= self.settings.max_receive_count:
                self._record_failure(event, receive_count, exc)
            raise

    def _handle(self, event: S3ObjectEvent, receive_count: int) -> Outcome:
        stored = self.catalog.get(event.bucket, event.key)
        if not supersedes(stored, event.version):
            return self._skip(event, stored, "duplicate or older delivery")
        base = _base_record(event, receive_count)
        if event.is_removed:
            return self._finish(
                {**base, "status": "DELETED"}, extra_deletes=results_keys(event.key)
            )
        try:
            record = self._process(event, base)
        except Superseded as exc:
            return self._skip(event, stored, str(exc))
        except PERMANENT as exc:
            logger.info("rejected", extra={"reason": exc.reason, "detail": exc.detail})
            record = {**base, "status": "REJECTED", "reason": exc.reason, "detail": exc.detail}
        return self._finish(record)

    def _process(self, event: S3ObjectEvent, base: dict[str, Any]) -> dict[str, Any]:
        started = time.perf_counter()
        data, etag = self.store.fetch(event.bucket, event.key, event.etag, self.settings.limits)
        rendered = render(
            data,
            self.settings.sizes,
            self.settings.limits,
            jpeg_quality=self.settings.jpeg_quality,
            include_gps=self.settings.include_gps,
        )
        thumbs = []
        for thumb in rendered.thumbnails:
            key = self.store.put_thumbnail(self.settings.derived_bucket, event.key, etag, thumb)
            thumbs.append(
                {
                    "name": thumb.name,
                    "key": key,
                    "width": thumb.width,
                    "height": thumb.height,
                    "bytes": len(thumb.data),
                    "content_type": thumb.content_type,
                }
            )
        rendered_ms = (time.perf_counter() - started) * 1000
        large = max(rendered.thumbnails, key=lambda t: t.width * t.height)
        found = self.labeler.detect(
            LabelRequest(event.bucket, event.key, len(data), rendered.info.format, large.data)
        ).as_dict()
        record = {
            **base,
            **rendered.info.as_dict(),
            "status": "DONE",
            "etag": etag,
            "size": len(data),
            "thumbnails": thumbs,
            "labels": found["labels"],
            "text": found["text"],
            "faces": found["faces"],
            "moderation": found["moderation"],
            "labeler": {k: found[k] for k in ("backend", "ms", "source", "errors")},
            "ms": round((time.perf_counter() - started) * 1000, 1),
            "thumbnail_ms": round(rendered_ms, 1),
        }
        # Written before the catalog: a failure here is retried with the rest.
        json_key, csv_key = results_keys(event.key)
        derived = self.settings.derived_bucket
        self.store.put_document(derived, json_key, to_json(record), "application/json")
        self.store.put_document(derived, csv_key, to_csv(record), "text/csv; charset=utf-8")
        return record

    def _finish(self, record: dict[str, Any], extra_deletes: tuple[str, ...] = ()) -> Outcome:
        record["updated_at"] = _now()
        written, previous = self.catalog.write_if_newer(record)
        if not written:
            # A newer version (or this one) won a race while we worked: what we wrote for this
            # version must not linger. Keys are per version, so the winner's are untouched.
            current = self.catalog.get(record["bucket"], record["key"])
            self.store.delete(
                self.settings.derived_bucket, _thumb_keys(record) - _thumb_keys(current)
            )
            logger.info("lost to a newer version", extra={"key": record["key"]})
            return Outcome("SKIPPED", "superseded while processing")
        stale = (_thumb_keys(previous) - _thumb_keys(record)) | set(extra_deletes)
        if stale:
            self.store.delete(self.settings.derived_bucket, stale)
        self._notify(record)
        record_outcome(record)
        logger.info("final", extra={"status": record["status"], "key": record["key"]})
        return Outcome(record["status"], str(record.get("reason", "")))

    def _notify(self, record: dict[str, Any]) -> None:
        # A failed publish raises: the message is retried and the pre-check below sends it.
        self.notifier.publish(record)
        # The notification went out: from here on a raise would make SQS repeat it, so the
        # mark is tried a few times and then given up (at worst a later duplicate re-sends).
        for attempt in range(3):
            try:
                self.catalog.mark_notified(record["bucket"], record["key"], record["version"])
                return
            except Exception:  # noqa: BLE001
                logger.warning("could not mark notified", extra={"attempt": attempt + 1})

    def _skip(self, event: S3ObjectEvent, stored: dict[str, Any] | None, why: str) -> Outcome:
        if (
            stored is not None
            and stored.get("version") == event.version
            and not stored.get("notified", True)
        ):
            # Same version already final, but its notification never went out (a crash or a
            # failed publish after the write): send it now, once.
            self._notify(stored)
        logger.info("skipped", extra={"why": why, "key": event.key})
        return Outcome("SKIPPED", why)

    def _record_failure(self, event: S3ObjectEvent, receive_count: int, exc: BaseException) -> None:
        """Last allowed receive: say in the catalog that this upload is going to the DLQ.
        Conditional like every write: it never hides a newer or completed version."""
        record = {
            **_base_record(event, receive_count),
            "status": "FAILED",
            "reason": "transient",
            "detail": describe(exc),
            "updated_at": _now(),
        }
        try:
            written, _ = self.catalog.write_if_newer(record)
            if written:
                self._notify(record)
                record_outcome(record)
        except Exception:  # the original error matters more; it is re-raised
            logger.exception("could not record FAILED", extra={"key": event.key})
