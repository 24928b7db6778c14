"""Test harness, never shipped: fault injection inside MiniStack's Lambda workers.

On MiniStack the process function runs in MiniStack's own worker processes, not in ours, so no
hook of ours can reach it. ``backends.processing(fault_rate=...)`` instead adds this
folder to the function's ``PYTHONPATH`` and sets ``IMGPIPE_FAULT_RATE``: Python imports this
module at start-up, and every boto3 session the handler creates then carries the same
``tests.harness.faults`` injector.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any


def _install() -> None:
    rate = float(os.environ.get("IMGPIPE_FAULT_RATE") or 0)
    if not rate or not os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
        return  # not a Lambda worker with faults asked for: leave the interpreter alone
    sys.path.append(str(Path(__file__).resolve().parents[3]))  # the checkout: tests.harness
    import boto3

    from tests.harness.faults import install

    original = boto3.Session.__init__

    def init(self: boto3.Session, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        install(self, rate)

    boto3.Session.__init__ = init  # type: ignore[method-assign]


_install()
