"""The error table: every provider answer we translate, and what each typed error means."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from imgpipe.errors import (
    AWS_ERRORS,
    Action,
    ConditionFailed,
    Decision,
    DetectorRefused,
    KeyTooLong,
    SourceArchived,
    SourceChanged,
    SourceMissing,
    Superseded,
    Unsupported,
    decide,
    describe,
    translate,
)
from imgpipe.imaging import ImageRejected
from imgpipe.outcomes import Reason


def client_error(code: str, status: int = 400, operation: str = "Op") -> ClientError:
    response: Any = {
        "Error": {"Code": code, "Message": f"{code} happened"},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return ClientError(response, operation)


# (service, code, HTTP status) -> the typed error; every row of AWS_ERRORS appears here.
TRANSLATIONS = [
    ("s3", "NoSuchKey", 404, SourceMissing),
    ("s3", "404", 404, SourceMissing),
    ("s3", "NotFound", 404, SourceMissing),
    ("s3", "InvalidObjectState", 403, SourceArchived),
    ("s3", "KeyTooLongError", 400, KeyTooLong),
    ("s3", "PreconditionFailed", 412, SourceChanged),
    ("s3", "412", 412, SourceChanged),
    ("dynamodb", "ConditionalCheckFailedException", 400, ConditionFailed),
    ("rekognition", "InvalidImageFormatException", 400, DetectorRefused),
    ("rekognition", "ImageTooLargeException", 400, DetectorRefused),
    ("rekognition", "InvalidParameterException", 400, DetectorRefused),
    ("rekognition", "InvalidS3ObjectException", 400, DetectorRefused),
    ("sqs", "UnsupportedOperation", 400, Unsupported),
    ("sqs", "InvalidAction", 400, Unsupported),
    ("sqs", "NotImplemented", 501, Unsupported),
    ("sqs", "501", 501, Unsupported),
    ("sqs", "InternalError", 501, Unsupported),  # by status alone: moto's bare 501
]


@pytest.mark.parametrize(("service", "code", "status", "kind"), TRANSLATIONS)
def test_translation(service: str, code: str, status: int, kind: type[Exception]) -> None:
    exc = client_error(code, status)
    typed = translate(service, exc)
    assert isinstance(typed, kind)
    assert str(typed) == describe(exc)


def test_the_table_has_no_row_without_a_test() -> None:
    tested = {(service, code) for service, code, _, _ in TRANSLATIONS}
    assert set(AWS_ERRORS) <= tested


@pytest.mark.parametrize(
    ("service", "code", "status"),
    [
        ("s3", "SlowDown", 503),
        ("s3", "InternalError", 500),
        ("dynamodb", "ProvisionedThroughputExceededException", 400),
        ("dynamodb", "ThrottlingException", 400),
        ("sns", "Throttling", 400),
        ("rekognition", "ThrottlingException", 400),
        ("rekognition", "ProvisionedThroughputExceededException", 400),
        # the same code from another service means something else: not translated
        ("dynamodb", "NotFound", 404),
        ("sqs", "NoSuchKey", 404),
        # with s3:ListBucket granted, AccessDenied is a permission problem for the operator
        ("s3", "AccessDenied", 403),
    ],
)
def test_everything_else_stays_itself_and_is_retried(service: str, code: str, status: int) -> None:
    exc = client_error(code, status)
    assert translate(service, exc) is exc
    assert decide(exc) == Decision(Action.RETRY)


@pytest.mark.parametrize(
    ("exc", "decision"),
    [
        (SourceMissing("gone"), Decision(Action.REJECT, Reason.MISSING)),
        (SourceChanged("replaced"), Decision(Action.SKIP)),
        (SourceArchived("glacier"), Decision(Action.REJECT, Reason.ARCHIVED)),
        (KeyTooLong("1100 bytes"), Decision(Action.REJECT, Reason.KEY_TOO_LONG)),
        (Superseded("older"), Decision(Action.SKIP)),
        (ConditionFailed("lost"), Decision(Action.SKIP)),
        (DetectorRefused("format"), Decision(Action.DEGRADE)),
        (Unsupported("no move task"), Decision(Action.RETRY)),
        (RuntimeError("a bug in a dependency"), Decision(Action.RETRY)),
        (TimeoutError("read timed out"), Decision(Action.RETRY)),
    ],
)
def test_decisions(exc: Exception, decision: Decision) -> None:
    assert decide(exc) == decision


@pytest.mark.parametrize("reason", list(Reason))
def test_every_image_rejection_is_rejected_with_its_reason(reason: Reason) -> None:
    assert decide(ImageRejected(reason, "x")) == Decision(Action.REJECT, reason)


def test_describe_is_one_line_naming_operation_and_code() -> None:
    assert describe(client_error("SlowDown", 503, "GetObject")) == (
        "GetObject: SlowDown: SlowDown happened"
    )
    assert describe(ValueError("x" * 900)).startswith("ValueError: x")
    assert len(describe(ValueError("x" * 900))) == 500


def test_sns_subjects_carry_no_control_characters() -> None:
    from imgpipe.notify import subject
    from imgpipe.outcomes import Status
    from imgpipe.record import ImageRecord

    record = ImageRecord("b", "evil\x1b[31m\nkey\u202e\u00e9.jpg" + "x" * 200, "s:1", Status.DONE)
    text = subject(record)
    assert len(text) <= 100 and all(" " <= c <= "~" for c in text)
    assert text.startswith("imgpipe DONE: evil?[31m?key??.jpg")


@pytest.mark.parametrize(("timeout", "most"), [(60.0, 30.0), (10.0, 5.0), (300.0, 150.0)])
def test_sdk_retries_end_well_inside_the_function_timeout(timeout: float, most: float) -> None:
    from imgpipe.aws import ATTEMPTS, client_config

    config: Any = client_config(timeout)
    per_attempt = config.connect_timeout + config.read_timeout
    assert config.retries == {"mode": "standard", "total_max_attempts": ATTEMPTS}
    assert per_attempt * ATTEMPTS <= most + 1


def test_rekognition_slows_down_on_throttles_within_the_same_attempts() -> None:
    from imgpipe import aws as clients
    from imgpipe.aws import ATTEMPTS, client_config

    config: Any = clients.rekognition().meta.config
    assert config.retries == {"mode": "adaptive", "total_max_attempts": ATTEMPTS}
    base: Any = client_config()
    assert (config.connect_timeout, config.read_timeout) == (
        base.connect_timeout,
        base.read_timeout,
    )
