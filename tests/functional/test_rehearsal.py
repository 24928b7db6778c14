"""The incident runbook, walked as a user would with the `imgpipe` command on the local stack:
failures turned on, uploads FAILED and parked in the DLQ, inspected, failures off, a dry run, the
redrive, every upload DONE."""

from __future__ import annotations

import shlex
from pathlib import Path
from subprocess import CompletedProcess

import pytest

from imgpipe.catalog import Catalog
from imgpipe.deployment import Deployment
from imgpipe.outcomes import Status
from tests.conftest import ROOT
from tests.functional.conftest import dlq_keys, require_local_functions
from tests.harness.backends import processing
from tests.harness.cli import imgpipe
from tests.harness.wait import poll

pytestmark = pytest.mark.functional


RUNBOOK = ROOT / "docs" / "reliability.md"


def documented_drill() -> list[list[str]]:
    """The rehearsal's commands as docs/reliability.md gives them, one argument list each
    (comments dropped, `a && b` as two)."""
    text = RUNBOOK.read_text()
    block = text[text.index("**Rehearse it on the local stack**") :]
    block = block[block.index("```bash\n") + len("```bash\n") :]
    block = block[: block.index("```")]
    commands = []
    for line in block.splitlines():
        line = line.split("  #", 1)[0].strip()
        commands += [shlex.split(part) for part in line.split("&&") if part.strip()]
    return commands


def test_the_runbook_can_be_rehearsed_with_local_faults(
    local_stack: Deployment, catalog: Catalog, corpus: Path, tmp_path: Path, prefix: str
) -> None:
    """docs/reliability.md's drill, word for word but for the folder and the prefix: with the
    stage's own queue settings (faults on shorten the retry delay, faults off restore it)."""
    require_local_functions(local_stack)
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("Landscape_2.jpg", "Portrait_4.jpg"):
        (photos / name).write_bytes((corpus / name).read_bytes())
    keys = [prefix + name for name in ("Landscape_2.jpg", "Portrait_4.jpg")]
    drill = documented_drill()
    assert [c[:3] for c in drill] == [
        ["imgpipe", "local", "faults"],
        ["imgpipe", "upload", "photos/"],
        ["imgpipe", "dlq", "ls"],
        ["imgpipe", "local", "faults"],
        ["imgpipe", "redrive", "--dry-run"],
        ["imgpipe", "redrive"],
    ]

    def run(command: list[str], check: bool = True) -> CompletedProcess[str]:
        args = [
            f"{photos}/" if a == "photos/" else prefix if a == "drill/" else a for a in command[1:]
        ]
        return imgpipe(*args, check=check)

    sqs = local_stack.client("sqs")

    def visibility() -> str:
        return str(
            sqs.get_queue_attributes(
                QueueUrl=local_stack.queue_url, AttributeNames=["VisibilityTimeout"]
            )["Attributes"]["VisibilityTimeout"]
        )

    stage_visibility = visibility()
    with processing(local_stack):
        # GIVEN S3 failing every call of the process function (DynamoDB still records FAILED)
        on = run(drill[0])
        assert "100% of the s3 calls fail" in on.stdout
        assert "faults on" in imgpipe("local", "faults", "status").stdout
        assert local_stack.process is not None
        assert int(visibility()) == local_stack.process.timeout + 1  # retries come back soon
        try:
            # WHEN photos are uploaded: FAILED after every retry, and the user is told what next
            failed = run(drill[1], check=False)
            assert failed.returncode == 1, failed.stdout + failed.stderr
            assert failed.stdout.count("FAILED") >= 2
            assert "lands in the DLQ within about" in failed.stderr
            assert "`imgpipe dlq ls`" in failed.stderr
            # THEN `dlq ls` shows them, with the whole error, once their last receive is over
            poll(
                lambda: dlq_keys(local_stack), lambda got: set(keys) <= set(got), 60, what="the DLQ"
            )
            listed = run(drill[2]).stdout
            assert all(k in listed for k in keys) and "SlowDown" in listed
        finally:
            assert "faults off" in run(drill[3]).stdout
        assert imgpipe("local", "faults", "status").stdout.strip() == "faults off"
        assert visibility() == stage_visibility  # the stage's retry delay again
        # AND the dry run names the same keys, the redrive brings them back, and they end DONE
        dry = run(drill[4]).stdout
        assert all(k in dry for k in keys)
        moved = run(drill[5]).stdout
        assert moved.startswith("moved ")

        def statuses() -> list[Status | None]:
            found = [catalog.get(local_stack.uploads_bucket, k) for k in keys]
            return [r.status if r else None for r in found]

        poll(statuses, lambda got: got == [Status.DONE, Status.DONE], 120, what="DONE")
    assert not set(keys) & set(dlq_keys(local_stack))
