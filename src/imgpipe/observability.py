"""Metrics in CloudWatch's embedded metric format (EMF): no API calls, just structured log lines
that CloudWatch turns into metrics. Flushed once per invocation by the handler's decorator."""

from __future__ import annotations

import os
import threading
import warnings

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

from .outcomes import Status
from .record import ImageRecord

# POWERTOOLS_METRICS_NAMESPACE and POWERTOOLS_SERVICE_NAME when set (serverless.yml sets both).
# A batch of only s3:TestEvents or skipped duplicates has nothing to count: not worth a warning.
warnings.filterwarnings("ignore", message="No application metrics to publish")
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "imgpipe"))


# Records are processed in threads (batch.run_in_lanes): one writer at a time.
_LOCK = threading.Lock()


def count(name: str) -> None:
    with _LOCK:
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)


def record_outcome(record: ImageRecord) -> None:
    with _LOCK:
        _record_outcome(record)


def _record_outcome(record: ImageRecord) -> None:
    """Done / Rejected / Failed / Deleted counts, rejections by reason, stage timings, bytes."""
    metrics.add_metric(name=record.status.title(), unit=MetricUnit.Count, value=1)
    if record.status is Status.REJECTED:
        reason = record.reason.value if record.reason else "unknown"
        metrics.add_metric(name=f"Rejected.{reason}", unit=MetricUnit.Count, value=1)
    if record.status is not Status.DONE:
        return
    if record.thumbnail_ms is not None:
        metrics.add_metric(
            name="ThumbnailMs", unit=MetricUnit.Milliseconds, value=record.thumbnail_ms
        )
    if record.findings is not None:
        metrics.add_metric(name="LabelMs", unit=MetricUnit.Milliseconds, value=record.findings.ms)
    if record.ms is not None:
        metrics.add_metric(name="TotalMs", unit=MetricUnit.Milliseconds, value=record.ms)
    metrics.add_metric(name="BytesIn", unit=MetricUnit.Bytes, value=record.size)
    metrics.add_metric(
        name="BytesOut", unit=MetricUnit.Bytes, value=sum(t.bytes for t in record.thumbnails)
    )
