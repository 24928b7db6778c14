"""`make chaos` itself, smaller: the same script (bench/chaos.py) on its own stack, so a change to
a queue policy, a role or the per-key ordering that breaks the operator's chaos run cannot land.

About a hundred uploads with overwrites, non-images and deletes racing them, a fifth of the
handler's calls failing, every execution environment killed mid-batch, the DLQ redriven through
the redrive function (`imgpipe redrive`, under its role) and `imgpipe reconcile` from outside.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import ROOT

# Alone (make test-chaos-short): beside the two functional suites its workers would starve them.
pytestmark = [pytest.mark.functional, pytest.mark.own_endpoint, pytest.mark.chaos]

KEYS = 70  # round 1; with overwrites and re-uploads about 100 uploads in all


def test_make_chaos_loses_nothing_at_a_smaller_scale() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "bench.chaos", "--keys", str(KEYS)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=1200,
    )
    tail = out.stdout[-4000:] + out.stderr[-4000:]
    assert out.returncode == 0, tail
    summary = out.stdout.strip().splitlines()[-1]
    fields = dict(field.split("=", 1) for field in summary.split())
    assert int(fields["uploads"]) >= 95 and int(fields["deletes"]) >= 10, summary
    for must_be_zero in ("lost", "failed", "orphans", "stale_results"):
        assert fields[must_be_zero] == "0", summary
    # at least once: only an environment killed between a publish and its mark announces twice
    assert int(fields["duplicates_notified"]) <= int(fields["killed"]), summary
    assert "imgpipe redrive moved" in out.stdout, tail  # the DLQ went back through the function
