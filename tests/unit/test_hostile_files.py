"""Every file of the hostile corpus gets its outcome within the memory and time budget, run as
a user runs it: `imgpipe process --labels none` in a child process of its own."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.hostile.corpus import Case, cases

MAX_RSS_MIB = 768
# The peak RSS of imgpipe itself: wait4's figure for a direct child includes the memory of the
# process it was forked from (exec keeps the high-water mark), which made the figure depend on
# how much this test worker had loaded. A small launcher starts imgpipe and reports the peak of
# its own child instead.
LAUNCHER = """
import os, subprocess, sys
child = subprocess.Popen(sys.argv[1:], stderr=subprocess.DEVNULL)
_, status, usage = os.wait4(child.pid, 0)
sys.stderr.write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""
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
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            LAUNCHER,
            IMGPIPE,
            "process",
            "--labels",
            "none",
            "--json",
            "--out",
            str(tmp_path),
            case.name,
        ],
        cwd=corpus_dir,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, proc.stdout
    out = proc.stdout
    result = json.loads(out)
    outcome = result["status"] if result["status"] == "DONE" else result["reason"]
    assert outcome == case.expected, result
    assert elapsed <= MAX_SECONDS, f"{case.name}: {elapsed:.1f} s"
    peak_mib = int(proc.stderr) / 1024
    assert peak_mib <= MAX_RSS_MIB, f"{case.name}: peak RSS {peak_mib:.0f} MiB"
    print(f"{case.name}: {outcome}, {peak_mib:.0f} MiB, {elapsed:.2f} s")
