"""The incident runbook, walked as a user would with the `imgpipe` command on the local stack:
failures turned on, uploads FAILED and parked in the DLQ, inspected, failures off, a dry run, the
redrive, every upload DONE."""

from __future__ import annotations

from pathlib import Path

import pytest

from imgpipe.catalog import Catalog
from imgpipe.deployment import Deployment
from imgpipe.outcomes import Status
from tests.functional.conftest import dlq_keys, require_local_functions
from tests.harness.backends import processing
from tests.harness.cli import imgpipe
from tests.harness.wait import poll

pytestmark = pytest.mark.functional


def test_the_runbook_can_be_rehearsed_with_local_faults(
    local_stack: Deployment, catalog: Catalog, corpus: Path, tmp_path: Path, prefix: str
) -> None:
    require_local_functions(local_stack)
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("Landscape_2.jpg", "Portrait_4.jpg"):
        (photos / name).write_bytes((corpus / name).read_bytes())
    keys = [prefix + name for name in ("Landscape_2.jpg", "Portrait_4.jpg")]
    # failed messages come back after 13 s rather than the queue's 72 (see processing())
    with processing(local_stack, retry_visibility=1):
        # GIVEN S3 failing every call of the process function (DynamoDB still records FAILED)
        on = imgpipe("local", "faults", "on", "--rate", "1", "--calls", "s3", "--minutes", "10")
        assert "100% of the s3 calls fail" in on.stdout
        assert "faults on" in imgpipe("local", "faults", "status").stdout
        try:
            # WHEN photos are uploaded: FAILED after every retry, and the user is told what next
            failed = imgpipe(
                "upload",
                str(photos),
                "--prefix",
                prefix,
                "--wait",
                "--timeout",
                "150",
                check=False,
            )
            assert failed.returncode == 1, failed.stdout + failed.stderr
            assert failed.stdout.count("FAILED") >= 2
            assert "lands in the DLQ within about" in failed.stderr
            assert "`imgpipe dlq ls`" in failed.stderr
            # THEN `dlq ls` shows them, with the whole error, once their last receive is over
            poll(
                lambda: dlq_keys(local_stack), lambda got: set(keys) <= set(got), 60, what="the DLQ"
            )
            listed = imgpipe("dlq", "ls").stdout
            assert all(k in listed for k in keys) and "SlowDown" in listed
        finally:
            assert "faults off" in imgpipe("local", "faults", "off").stdout
        assert imgpipe("local", "faults", "status").stdout.strip() == "faults off"
        # AND the dry run names the same keys, the redrive brings them back, and they end DONE
        dry = imgpipe("redrive", "--dry-run").stdout
        assert all(k in dry for k in keys)
        moved = imgpipe("redrive").stdout
        assert moved.startswith("moved ")

        def statuses() -> list[Status | None]:
            found = [catalog.get(local_stack.uploads_bucket, k) for k in keys]
            return [r.status if r else None for r in found]

        poll(statuses, lambda got: got == [Status.DONE, Status.DONE], 120, what="DONE")
    assert not set(keys) & set(dlq_keys(local_stack))
