"""The one place that decides whether a failure is the input's fault or the world's.

Permanent: retrying cannot help (bad image, too large, object gone) -> REJECTED, acknowledged.
Transient: everything else (throttling, timeouts, 5xx, connection errors, a crash in a
dependency) -> raised, reported in ``batchItemFailures``, retried by SQS, parked in the DLQ.
Unknown exceptions count as transient on purpose: a bug then lands in the DLQ, where a fix and
a redrive recover it, instead of being recorded as the user's fault.
"""

from __future__ import annotations

from botocore.exceptions import ClientError

from .imaging import ImageRejected


class Superseded(Exception):
    """The event is older than what the catalog holds, or a duplicate of it: nothing to do."""


# The input's fault: recorded REJECTED and acknowledged. Everything else is retried.
PERMANENT: tuple[type[ImageRejected], ...] = (ImageRejected,)


def is_permanent(exc: BaseException) -> bool:
    return isinstance(exc, PERMANENT)


def describe(exc: BaseException) -> str:
    """A one-line account of a transient failure for the FAILED record and the operator."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        operation = getattr(exc, "operation_name", "?")
        return f"{operation}: {error.get('Code', '?')}: {error.get('Message', '')}"[:500]
    return f"{type(exc).__name__}: {exc}"[:500]
