"""Waiting for uploads to reach their final status, as `upload --wait` and the demo do."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

from ..catalog import Catalog
from ..outcomes import FINAL
from ..record import ImageRecord

POLL_SECONDS = 0.3


def wait_final(
    catalog: Catalog,
    bucket: str,
    etags: Mapping[str, str],
    timeout: float,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, ImageRecord]:
    """Poll the catalog until each key has a final record of the version uploaded (its ETag;
    an empty ETag accepts any version) or ``timeout`` passes. Returns the final ones."""
    records: dict[str, ImageRecord] = {}
    deadline = time.monotonic() + timeout
    while True:
        for key, etag in etags.items():
            if key not in records:
                record = catalog.get(bucket, key)
                if record and record.status in FINAL and (not etag or record.etag == etag):
                    records[key] = record
        if progress is not None:
            progress(len(records), len(etags))
        if len(records) == len(etags) or time.monotonic() >= deadline:
            return records
        time.sleep(POLL_SECONDS)
