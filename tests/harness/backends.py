"""Test harness: "the pipeline is processing" on the local stack.

The endpoint's own SQS event source mapping runs the real zip, as on AWS; this only turns it on
for the block and adjusts the deployed stack for the test's duration (injected failures as
`imgpipe local faults` asks for them, a shorter visibility timeout on the queue), restoring it
afterwards.
The test gets ``crash()``: kill the execution environments mid-invocation.
"""

from __future__ import annotations

import os
import signal
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

from imgpipe.deployment import Deployment
from imgpipe.local.faults import Faults, set_faults
from imgpipe.local.stack import set_trigger


class Processing(Protocol):
    def crash(self) -> int:
        """SIGKILL the execution environments now; how many were killed."""
        ...


class MiniStackFunction:
    """The process function as MiniStack runs it (also where it stands in for LocalStack)."""

    def __init__(self, stack: Deployment) -> None:
        assert stack.process is not None
        self.stack = stack
        self.name = stack.process.name

    def workers(self) -> list[int]:
        """PIDs of MiniStack's worker processes for this function (each unpacks the zip into a
        directory named after it)."""
        marker = f"ministack-lambda-{self.name}-"
        pids = []
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                cmdline = (proc / "cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if marker in cmdline and "_worker" in cmdline:
                pids.append(int(proc.name))
        return pids

    def crash(self) -> int:
        killed = 0
        for pid in self.workers():
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except ProcessLookupError:
                pass
        return killed

    def set_queue_visibility(self, seconds: int) -> None:
        self.stack.client("sqs").set_queue_attributes(
            QueueUrl=self.stack.queue_url, Attributes={"VisibilityTimeout": str(seconds)}
        )


def functions_run_here(stack: Deployment) -> bool:
    """Whether the endpoint runs the functions as processes on this machine (MiniStack, also
    where it stands in for LocalStack), so that faults can be injected and workers killed;
    LocalStack runs them in containers."""
    url = f"{stack.access.endpoint_url}/_ministack/health"
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


@contextmanager
def processing(
    stack: Deployment, *, fault_rate: float = 0.0, retry_visibility: int | None = None
) -> Iterator[Processing]:
    """Uploads get processed inside the block. ``fault_rate``: that fraction of the handler's
    S3/DynamoDB/SNS calls fail with throttling errors. ``retry_visibility``: a failed message
    returns after that many seconds instead of the queue's visibility timeout.

    MiniStack, like AWS, returns a failed message only when the queue's visibility timeout runs
    out, and that timeout also covers messages still being processed: it is shortened to just
    above the function's timeout and never below, or a message still in flight would be
    delivered a second time."""
    # Between blocks the mapping is paused: tests then see events wait in the queue.
    function = MiniStackFunction(stack)
    assert stack.process is not None
    sqs = stack.client("sqs")
    original_visibility = sqs.get_queue_attributes(
        QueueUrl=stack.queue_url, AttributeNames=["VisibilityTimeout"]
    )["Attributes"]["VisibilityTimeout"]
    try:
        if fault_rate:
            set_faults(stack, Faults(fault_rate))  # what `imgpipe local faults on` does
        if retry_visibility is not None:
            function.set_queue_visibility(max(retry_visibility, stack.process.timeout + 1))
        set_trigger(stack, True)
        yield function
    finally:
        set_trigger(stack, False)
        if retry_visibility is not None:
            function.set_queue_visibility(int(original_visibility))
        if fault_rate:
            set_faults(stack, None)
