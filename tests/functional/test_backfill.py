"""`imgpipe backfill` on the local stack: a bucket filled before the pipeline was attached is
backfilled through the real backfill function, interrupted and resumed, while live overwrites
and deletes race it; every key ends as its last action calls for, each outcome announced once,
and a second run finds nothing to do."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from imgpipe.catalog import Catalog
from imgpipe.deployment import Deployment
from imgpipe.outcomes import Reason, Status
from tests.functional.conftest import wait_for
from tests.harness.backends import processing
from tests.harness.backfill import notifications_off, run_backfill, small_photos
from tests.harness.chaos import (
    collect,
    make_script,
    perform,
    reconcile,
    subscribe_inbox,
    wait_drained,
)
from tests.harness.cli import imgpipe

pytestmark = pytest.mark.functional
KEYS = 60


def test_backfill_an_adopted_bucket_racing_live_changes_then_nothing_is_left(
    local_stack: Deployment, corpus: Path, tmp_path: Path, prefix: str
) -> None:
    photos = small_photos(sorted(corpus.glob("*.jpg"))[:6], tmp_path)
    script = make_script(KEYS, photos, prefix, delete_reupload=0.1)
    existing, live_changes, reuploads = script.rounds
    inbox = subscribe_inbox(local_stack, "backfill-inbox")
    with notifications_off(local_stack):
        perform(local_stack, existing)  # in the bucket before the pipeline was attached

    # the dry run says what a run would do, and what it costs, before anything is sent
    dry = imgpipe("backfill", "--prefix", prefix, "--min-age", "0", "--dry-run")
    assert f"{KEYS} of {KEYS} listed objects need work" in dry.stdout, dry.stdout
    assert "estimated cost: $" in dry.stdout and "estimated duration:" in dry.stdout

    checkpoint = str(tmp_path / "run.json")
    common = ("--prefix", prefix, "--min-age", "0", "--checkpoint", checkpoint, "--yes")
    first = run_backfill(*common, "--max-messages", "25", "--slice-seconds", "5")
    assert not first["checkpoint"]["done"] and first["checkpoint"]["counts"]["queued"] == 25
    refused = imgpipe("backfill", *common, check=False)
    assert refused.returncode == 1 and "--resume" in refused.stderr

    resumed: dict[str, Any] = {}
    with processing(local_stack):
        rest = threading.Thread(
            target=lambda: resumed.update(run_backfill(*common, "--resume", "--rate", "30"))
        )
        rest.start()
        perform(local_stack, live_changes)  # overwrites and deletes, racing the backfill
        rest.join(120)
        perform(local_stack, reuploads)
        assert wait_drained(local_stack, local_stack.queue_url, 240)
    assert resumed["checkpoint"]["done"] and resumed["checkpoint"]["counts"]["queued"] > 25

    final = script.final()
    notes = collect(
        local_stack,
        inbox,
        lambda got: (
            {(n.key, n.status) for n in got} >= {(k, op.expected) for k, op in final.items()}
        ),
        timeout=60,
    )
    result = reconcile(local_stack, script, notes)
    assert (result.lost, result.wrong, result.failed) == (0, 0, 0), result.lost_keys
    assert result.duplicates_notified == 0, result.line()
    assert result.done + result.rejected + result.deleted == len(final)

    # everything is current now: a new run queues nothing
    again = run_backfill("--prefix", prefix, "--min-age", "0", "--dry-run")
    assert again["counts"]["queued"] == 0 and again["counts"]["current"] > 0, again


def test_a_run_invoked_by_hand_continues_itself_until_the_listing_ends(
    local_stack: Deployment, catalog: Catalog, tmp_path: Path, corpus: Path, prefix: str
) -> None:
    """`sls invoke -f backfill -d '{"prefix": ..., "chain": true}'`, the way for runs that
    outlive a laptop: slices of about one second at 10 messages a second, each invoking the
    function again (asynchronously) with its checkpoint, until every object is queued once."""
    import json

    photos = small_photos(sorted(corpus.glob("*.jpg"))[:3], tmp_path)
    keys = [f"{prefix}chain/{i:02d}.jpg" for i in range(30)]
    s3 = local_stack.client("s3")
    with notifications_off(local_stack):
        for i, key in enumerate(keys):
            body = photos[i % 3].read_bytes() if i % 5 else b"a note, not an image %d" % i
            s3.put_object(Bucket=local_stack.uploads_bucket, Key=key, Body=body)
    payload = {"prefix": f"{prefix}chain/", "chain": True, "min_age": 0, "max_seconds": 1}
    with processing(local_stack):
        resp = local_stack.client("lambda").invoke(
            FunctionName=local_stack.backfill_function,
            Payload=json.dumps(payload | {"rate": 10}).encode(),
        )
        first = json.loads(resp["Payload"].read())
        assert first["continued"] is True and not first["checkpoint"]["done"], first
        assert first["checkpoint"]["counts"]["queued"] < len(keys)  # the rest: later slices
        records = wait_for(catalog, local_stack, keys, timeout=180)
    outcomes = {(r.status, r.reason) for r in records.values()}
    assert outcomes == {(Status.DONE, None), (Status.REJECTED, Reason.NOT_AN_IMAGE)}, outcomes
    again = run_backfill("--prefix", f"{prefix}chain/", "--min-age", "0", "--dry-run")
    counts = again["counts"]
    assert (counts["listed"], counts["queued"], counts["current"]) == (30, 0, 30), counts
