"""`make bench-coldstart`: what a cold start pays before the first record.

Unzips the packaged Lambda zip (`make package`) and, in fresh python3.12 processes (Lambda's
runtime version) with the zip on the path and boto3 from outside it (the runtime provides it),
times `import src.imgpipe.handlers.<name>` — median of --runs — then lists the slowest imports
of the process handler (`python -X importtime`). Prints the zip's size against its budget.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import boto3

ROOT = Path(__file__).resolve().parents[1]
ZIP = ROOT / "build" / "dev" / "imgpipe.zip"
IMPORT_BUDGET_MS = 300
ZIP_BUDGET_MB = 20


def python312() -> str:
    installed = sorted(Path.home().glob(".pyenv/versions/3.12*/bin/python3.12"))
    if installed:
        return str(installed[-1])
    raise SystemExit("python3.12 (Lambda's runtime version) is needed")


def run(code: str, path: list[str], *flags: str) -> subprocess.CompletedProcess[str]:
    prelude = f"import sys; sys.path[:0] = {path!r}\n"
    return subprocess.run(
        [python312(), "-I", *flags, "-c", prelude + code],
        capture_output=True,
        text=True,
        check=True,
        env={
            "PATH": "/usr/bin:/bin",
            "AWS_DEFAULT_REGION": "us-east-1",
            "POWERTOOLS_SERVICE_NAME": "imgpipe",
            "POWERTOOLS_METRICS_NAMESPACE": "imgpipe",
        },
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    if not ZIP.exists():
        print(f"{ZIP} is missing: run `make package` first", file=sys.stderr)
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="imgpipe-coldstart-"))
    with zipfile.ZipFile(ZIP) as zf:
        zf.extractall(workdir)
    path = [str(workdir), str(Path(boto3.__file__).parents[1])]
    print(
        f"{ZIP.relative_to(ROOT)}: {ZIP.stat().st_size / 1048576:.1f} MB zipped "
        f"(budget {ZIP_BUDGET_MB} MB), python3.12, median of {args.runs} fresh processes\n"
    )
    print(f"{'handler':10s}{'import ms':>12s}{'budget':>10s}")
    for name in ("process", "status", "redrive"):
        code = (
            "import time; t = time.perf_counter()\n"
            f"import src.imgpipe.handlers.{name}\n"
            "print((time.perf_counter() - t) * 1000)\n"
        )
        samples = [float(run(code, path).stdout) for _ in range(args.runs)]
        print(f"{name:10s}{statistics.median(samples):12.0f}{IMPORT_BUDGET_MS:10d}")
    trace = run("import src.imgpipe.handlers.process", path, "-X", "importtime").stderr
    rows = []
    for line in trace.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)", line)
        # the handler's own imports and theirs (two levels), not the interpreter's start-up
        if m and 3 <= len(m.group(3)) <= 5 and m.group(4).count(".") <= 2:
            rows.append((int(m.group(2)) / 1000, m.group(4)))
    print("\nslowest imports under the process handler (ms, cumulative):")
    for ms, module in sorted(rows, reverse=True)[:8]:
        print(f"  {ms:7.1f}  {module}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
