"""`imgpipe reconcile` on the local stack: planted damage of each kind is found, then fixed,
then the stack is clean. The re-queue goes through S3's own notification of the copy."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from imgpipe import derived
from imgpipe.catalog import Catalog
from imgpipe.deployment import Deployment
from imgpipe.outcomes import Status
from imgpipe.record import ThumbnailRef
from tests.functional.conftest import wait_for
from tests.harness.backends import processing
from tests.harness.cli import imgpipe
from tests.harness.wait import poll

pytestmark = pytest.mark.functional


def reconcile(prefix: str, *extra: str) -> tuple[int, dict[str, Any]]:
    out = imgpipe("reconcile", "--prefix", prefix, "--min-age", "0", "--json", *extra, check=False)
    assert out.returncode in (0, 1), out.stdout + out.stderr
    return out.returncode, json.loads(out.stdout)


def found(report: dict[str, Any], kind: str) -> set[str]:
    return {f["key"] for f in report["findings"] if f["kind"] == kind}


def test_reconcile_finds_and_fixes_planted_damage(
    local_stack: Deployment, catalog: Catalog, s3: Any, prefix: str, corpus: Path
) -> None:
    uploads, derived_bucket = local_stack.uploads_bucket, local_stack.derived_bucket
    photo = (corpus / "Landscape_0.jpg").read_bytes()
    kept_key, requeued_key, ghost_key = (prefix + n for n in ("kept.jpg", "again.jpg", "ghost.jpg"))
    with processing(local_stack):
        for key in (kept_key, requeued_key):
            s3.put_object(Bucket=uploads, Key=key, Body=photo)
        records = wait_for(catalog, local_stack, [kept_key, requeued_key], timeout=120)
        kept, requeued = records[kept_key], records[requeued_key]
        assert kept.status is Status.DONE and len(kept.results) == 2

        # GIVEN a pipeline that left nothing behind, reconcile finds nothing
        code, clean = reconcile(prefix)
        assert code == 0 and clean["counts"] == dict.fromkeys(clean["counts"], 0)
        owned = sum(len(r.thumbnails) + len(r.results) for r in (kept, requeued))
        assert owned == 14  # 5 thumbnails (medium in 3 formats on the local stage) + 2 documents
        assert clean["scanned"] == {"sources": 2, "records": 2, "derived": owned}

        # WHEN damage of each kind is planted
        orphan = derived.thumbnail_key(kept_key, "s:00DEAD", "small", "jpg")
        s3.put_object(Bucket=derived_bucket, Key=orphan, Body=b"nobody owns me")
        old_doc = derived.results_key(kept_key, "s:0001", "json")
        s3.put_object(Bucket=derived_bucket, Key=old_doc, Body=b'{"version": "s:0001"}')
        (owned_json,) = [k for k in kept.results if k.endswith(".json")]
        s3.put_object(Bucket=derived_bucket, Key=owned_json, Body=b'{"version": "s:0001"}')
        ghost_thumb = derived.thumbnail_key(ghost_key, kept.version, "small", "jpg")
        s3.put_object(Bucket=derived_bucket, Key=ghost_thumb, Body=b"a ghost's thumbnail")
        ghost = replace(
            kept,
            key=ghost_key,
            thumbnails=(ThumbnailRef("small", ghost_thumb, 1, 1, 1, "image/jpeg"),),
            results=(),
        )
        catalog.put(ghost)  # a record whose source never existed (or whose delete was lost)
        local_stack.client("dynamodb").delete_item(  # a source whose record was lost
            TableName=local_stack.table,
            Key={"bucket": {"S": uploads}, "key": {"S": requeued_key}},
        )

        # THEN each is reported, with what it is
        code, report = reconcile(prefix)
        assert code == 1
        assert found(report, "no_source") == {ghost_key}
        assert found(report, "unprocessed") == {requeued_key}
        # the lost record's derivatives are owned by nobody now, like the planted orphan
        assert found(report, "orphan") == {orphan} | requeued.thumbnail_keys
        assert found(report, "stale_result") == {old_doc, owned_json, *requeued.results}

        # AND --fix repairs each and says what it did
        before = s3.head_object(Bucket=uploads, Key=requeued_key)
        code, fixed = reconcile(prefix, "--fix")
        assert code == 0, fixed
        assert all(f["fixed"] for f in fixed["findings"]), fixed["findings"]
        requeue_fix = {f["fixed"] for f in fixed["findings"] if f["kind"] == "unprocessed"}
        assert requeue_fix == {"re-queued (a backfill message)"}
        # the source goes through the pipeline again, from a message the backfill function sent
        again = poll(
            lambda: catalog.get(uploads, requeued_key),
            lambda r: r is not None and r.status is Status.DONE,
            timeout=120,
            what=f"{requeued_key} processed again",
        )
        assert again is not None and again.etag == requeued.etag

    marked = catalog.get(uploads, ghost_key)
    assert marked is not None and marked.status is Status.DELETED and marked.cleanup == ()
    listed = s3.list_objects_v2(Bucket=derived_bucket, Prefix=f"thumbnails/{prefix}")
    left = {o["Key"] for o in listed.get("Contents", [])}
    assert orphan not in left and ghost_thumb not in left
    rewritten = json.loads(s3.get_object(Bucket=derived_bucket, Key=owned_json)["Body"].read())
    assert rewritten["version"] == kept.version
    # the object itself was not touched (no copy onto itself: no event for other subscribers)
    after_fix = s3.head_object(Bucket=uploads, Key=requeued_key)
    assert (after_fix["ETag"], after_fix["LastModified"]) == (
        before["ETag"],
        before["LastModified"],
    )

    # AND afterwards the stack is clean
    code, after = reconcile(prefix)
    assert code == 0 and after["counts"] == dict.fromkeys(after["counts"], 0), after["findings"]
