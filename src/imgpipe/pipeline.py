"""Process one S3 object event end to end.

Error policy in one place: ``ImageRejected`` (the input is at fault and retrying cannot help) is
recorded as REJECTED and returns normally, so the message is acknowledged. Every other exception
(throttling, timeouts, 5xx, connection errors, a bug in a dependency) propagates: the batch
processor reports the message in ``batchItemFailures`` and SQS retries it, then moves it to the
DLQ after ``maxReceiveCount`` receives.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger

from .catalog import Catalog
from .config import Settings
from .events import S3ObjectEvent
from .imaging import ImageRejected, render
from .notify import Notifier
from .storage import ObjectStore

logger = Logger(child=True)


@dataclass(frozen=True, slots=True)
class Outcome:
    status: str
    reason: str = ""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class Pipeline:
    def __init__(
        self, settings: Settings, store: ObjectStore, catalog: Catalog, notifier: Notifier
    ) -> None:
        self.settings = settings
        self.store = store
        self.catalog = catalog
        self.notifier = notifier

    def handle(self, event: S3ObjectEvent, receive_count: int = 1) -> Outcome:
        base: dict[str, Any] = {
            "bucket": event.bucket,
            "key": event.key,
            "event_name": event.event_name,
            "etag": event.etag,
            "size": event.size,
            "sequencer": event.sequencer,
            "event_time": event.event_time,
            "attempts": receive_count,
        }
        if event.is_removed:
            deleted = self.store.delete_derivatives(self.settings.derived_bucket, event.key)
            return self._finish({**base, "status": "DELETED", "derivatives_deleted": deleted})
        started = time.perf_counter()
        try:
            data, etag = self.store.fetch(event.bucket, event.key, self.settings.limits)
            rendered = render(
                data,
                self.settings.sizes,
                self.settings.limits,
                jpeg_quality=self.settings.jpeg_quality,
            )
        except ImageRejected as exc:
            logger.info("rejected", extra={"reason": exc.reason, "detail": exc.detail})
            return self._finish(
                {**base, "status": "REJECTED", "reason": exc.reason, "detail": exc.detail}
            )
        thumbs = []
        for thumb in rendered.thumbnails:
            key = self.store.put_thumbnail(self.settings.derived_bucket, event.key, thumb)
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
        info = rendered.info
        record = {
            **base,
            "status": "DONE",
            "etag": etag or event.etag,
            "size": len(data),
            "format": info.format,
            "width": info.width,
            "height": info.height,
            "mode": info.mode,
            "orientation": info.orientation,
            "has_alpha": info.has_alpha,
            "thumbnails": thumbs,
            "ms": round((time.perf_counter() - started) * 1000, 1),
        }
        return self._finish(record)

    def _finish(self, record: dict[str, Any]) -> Outcome:
        record["updated_at"] = _now()
        self.catalog.put(record)
        self.notifier.publish(record)
        logger.info("final", extra={"status": record["status"], "key": record["key"]})
        return Outcome(record["status"], str(record.get("reason", "")))
