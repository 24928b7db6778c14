"""The `imgpipe` command run as a user runs it: its installed entry point, in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

IMGPIPE = str(Path(sys.executable).with_name("imgpipe"))


def imgpipe(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(
        [IMGPIPE, *args],
        capture_output=True,
        text=True,
        check=False,
        # no display: `imgpipe open` prints its URL instead of starting a browser
        env={
            **{k: v for k, v in os.environ.items() if k not in {"DISPLAY", "WAYLAND_DISPLAY"}},
            "COLUMNS": "200",
        },
    )
    if check:
        assert out.returncode == 0, out.stdout + out.stderr
    return out
