"""Polling instead of sleeping: wait for a condition, never for a guessed duration."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def poll(
    probe: Callable[[], T],
    until: Callable[[T], bool],
    timeout: float,
    interval: float = 0.2,
    what: str = "the condition",
) -> T:
    """Call ``probe`` until ``until(result)`` holds; AssertionError with the last result after
    ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if until(result):
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(
                f"{what} did not hold within {timeout:.0f}s; last: {result!r:.300}"
            )
        time.sleep(interval)
