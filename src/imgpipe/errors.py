"""The one place that decides what a failure means: reject, retry, skip or degrade.

AccessDenied is deliberately absent: the process role may list the uploads bucket, so a missing
key answers NoSuchKey, and AccessDenied means a real permission problem — retried, then in the
DLQ for the operator, never blamed on the upload.

Adapters (storage, catalog, redrive, the Rekognition labeler) hand provider errors to
``raise_typed``/``translate``, which turns the answers listed in ``AWS_ERRORS`` into typed errors;
the imaging core turns Pillow's into ``ImageRejected``. ``decide`` then maps each typed error to
an outcome:

- REJECT: the input's fault (bad image, object gone) -> REJECTED with a reason, acknowledged.
- SKIP: nothing to do (an older or duplicate delivery, an object replaced since its event).
- DEGRADE: one detector refused the image -> the image is still DONE, the refusal recorded.
- RETRY: everything else (throttling, timeouts, 5xx, connection errors, a crash in a
  dependency) -> raised, reported in ``batchItemFailures``, retried by SQS, parked in the DLQ.
  Unknown exceptions are retried on purpose: a bug then lands in the DLQ, where a fix and a
  redrive recover it, instead of being recorded as the user's fault.

``tests/unit/test_errors.py`` walks the whole table.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import NoReturn

from botocore.exceptions import ClientError

from .imaging import ImageRejected
from .outcomes import Reason


class PipelineError(Exception):
    """A provider's answer, translated: what it means for us, not which service said it."""


class SourceMissing(PipelineError):
    """The uploaded object no longer exists."""


class SourceArchived(PipelineError):
    """The uploaded object is in an archive storage class and cannot be read."""


class KeyTooLong(PipelineError):
    """A derived key built from the source key exceeds S3's limit of 1,024 bytes."""


class SourceChanged(PipelineError):
    """The object was replaced after its event was sent; the newer event follows."""


class Superseded(PipelineError):
    """The catalog already holds this version's outcome, or a newer version's."""


class DetectorRefused(PipelineError):
    """A labelling service refused this image (format, size); the others may still answer."""


class Unsupported(PipelineError):
    """The endpoint does not offer this operation (an emulator, an older API)."""


class ConditionFailed(PipelineError):
    """A conditional write lost to a newer or equal state."""


class DeadlineNear(PipelineError):
    """Too little of the invocation is left to start another record: it is retried."""


class CleanupIncomplete(PipelineError):
    """Some derived objects could not be deleted: retried (they stay in the record's cleanup)."""


class WriteContended(PipelineError):
    """The record changed under every attempt to replace it: retried later."""


class NotificationPending(PipelineError):
    """Another delivery of this version wrote its outcome moments ago and may still be
    announcing it: retry later rather than announce it twice."""


# (service, error code or HTTP status) -> the typed error it means. Anything absent is transient.
AWS_ERRORS: dict[tuple[str, str], type[PipelineError]] = {
    ("s3", "NoSuchKey"): SourceMissing,
    ("s3", "404"): SourceMissing,
    ("s3", "NotFound"): SourceMissing,
    ("s3", "InvalidObjectState"): SourceArchived,
    ("s3", "KeyTooLongError"): KeyTooLong,
    ("s3", "PreconditionFailed"): SourceChanged,
    ("s3", "412"): SourceChanged,
    ("dynamodb", "ConditionalCheckFailedException"): ConditionFailed,
    ("rekognition", "InvalidImageFormatException"): DetectorRefused,
    ("rekognition", "ImageTooLargeException"): DetectorRefused,
    ("rekognition", "InvalidParameterException"): DetectorRefused,
    ("rekognition", "InvalidS3ObjectException"): DetectorRefused,
    ("sqs", "UnsupportedOperation"): Unsupported,
    ("sqs", "InvalidAction"): Unsupported,
    ("sqs", "NotImplemented"): Unsupported,
    ("sqs", "501"): Unsupported,
}


class Action(Enum):
    REJECT = "reject"
    RETRY = "retry"
    SKIP = "skip"
    DEGRADE = "degrade"


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    reason: Reason | None = None  # with REJECT


_DECISIONS: tuple[tuple[type[Exception], Decision], ...] = (
    (SourceMissing, Decision(Action.REJECT, Reason.MISSING)),
    (SourceArchived, Decision(Action.REJECT, Reason.ARCHIVED)),
    (KeyTooLong, Decision(Action.REJECT, Reason.KEY_TOO_LONG)),
    (SourceChanged, Decision(Action.SKIP)),
    (Superseded, Decision(Action.SKIP)),
    (ConditionFailed, Decision(Action.SKIP)),
    (DetectorRefused, Decision(Action.DEGRADE)),
    (NotificationPending, Decision(Action.RETRY)),
    (DeadlineNear, Decision(Action.RETRY)),
    (CleanupIncomplete, Decision(Action.RETRY)),
    (WriteContended, Decision(Action.RETRY)),
)


def decide(exc: BaseException) -> Decision:
    if isinstance(exc, ImageRejected):
        return Decision(Action.REJECT, exc.reason)
    for kind, decision in _DECISIONS:
        if isinstance(exc, kind):
            return decision
    return Decision(Action.RETRY)


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def translate(service: str, exc: ClientError) -> Exception:
    """The typed error ``exc`` means, or ``exc`` itself when it is not in the table."""
    status = str(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
    kind = AWS_ERRORS.get((service, error_code(exc))) or AWS_ERRORS.get((service, status))
    return exc if kind is None else kind(describe(exc))


def raise_typed(service: str, exc: ClientError) -> NoReturn:
    """Re-raise ``exc`` as the typed error it means (chained), or as itself."""
    typed = translate(service, exc)
    if typed is exc:
        raise exc
    raise typed from exc


def describe(exc: BaseException) -> str:
    """A one-line account of a failure for the FAILED record and the operator."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        operation = getattr(exc, "operation_name", "?")
        return f"{operation}: {error.get('Code', '?')}: {error.get('Message', '')}"[:500]
    return f"{type(exc).__name__}: {exc}"[:500]
