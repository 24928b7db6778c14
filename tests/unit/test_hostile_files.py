"""Every file of the hostile corpus gets its outcome within the memory and time budget, run as
a user runs it: `imgpipe process --labels none` in a child process of its own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.hostile.corpus import Case, cases

MAX_RSS_MIB = 768
MAX_SECONDS = 10.0
IMGPIPE = str(Path(sys.executable).with_name("imgpipe"))
CASES = cases()


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("hostile")
    for case in CASES:
        (folder / case.name).write_bytes(case.data)
    return folder


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_outcome_memory_and_time(case: Case, corpus_dir: Path, tmp_path: Path) -> None:
    started = time.monotonic()
    proc = subprocess.Popen(
        [IMGPIPE, "process", "--labels", "none", "--json", "--out", str(tmp_path), case.name],
        cwd=corpus_dir,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    # wait4: the kernel's peak RSS of this child (its JSON line fits the pipe). It counts the
    # copy of this test process the child began as, so it is an upper bound (about +190 MiB).
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.monotonic() - started
    assert proc.stdout is not None
    out = proc.stdout.read()
    proc.stdout.close()
    proc.returncode = os.waitstatus_to_exitcode(status)
    assert proc.returncode == 0, out
    result = json.loads(out)
    outcome = result["status"] if result["status"] == "DONE" else result["reason"]
    assert outcome == case.expected, result
    assert elapsed <= MAX_SECONDS, f"{case.name}: {elapsed:.1f} s"
    peak_mib = usage.ru_maxrss / 1024
    assert peak_mib <= MAX_RSS_MIB, f"{case.name}: peak RSS {peak_mib:.0f} MiB"
    print(f"{case.name}: {outcome}, {peak_mib:.0f} MiB, {elapsed:.2f} s")
