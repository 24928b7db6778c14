"""Debian's chromium under Playwright, as the browser tests start it."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
)


def chromium(playwright: Any) -> Any:
    """A headless Chromium (``make browser-deps`` installs it)."""
    path = shutil.which("chromium") or "/usr/bin/chromium"
    assert Path(path).exists(), "Debian's chromium is needed: make browser-deps"
    return playwright.chromium.launch(executable_path=path, args=list(ARGS))
