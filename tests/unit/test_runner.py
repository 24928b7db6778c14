"""The local runner's reading of partial batch responses must match Lambda's."""

from __future__ import annotations

from typing import Any

import pytest

from imgpipe.local.runner import failed_ids, import_handler, to_lambda_record

IDS = {"a", "b", "c"}


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (None, set()),
        ({"batchItemFailures": []}, set()),
        ({"batchItemFailures": [{"itemIdentifier": "b"}]}, {"b"}),
        # Lambda fails the whole batch on a malformed response or an unknown id
        ({"batchItemFailures": [{"itemIdentifier": "zzz"}]}, IDS),
        ({"batchItemFailures": [{"id": "b"}]}, IDS),
        ({"batchItemFailures": "b"}, IDS),
        ("not a dict", IDS),
    ],
)
def test_failed_ids(response: Any, expected: set[str]) -> None:
    assert failed_ids(response, IDS) == expected


def test_record_shape() -> None:
    message: Any = {
        "MessageId": "m1",
        "ReceiptHandle": "rh",
        "Body": "{}",
        "MD5OfBody": "x",
        "Attributes": {"ApproximateReceiveCount": "2"},
        "MessageAttributes": {"k": {"DataType": "String", "StringValue": "v"}},
    }
    record = to_lambda_record(message, "arn:aws:sqs:eu-west-1:123456789012:q")
    assert record["messageId"] == "m1" and record["receiptHandle"] == "rh"
    assert record["attributes"]["ApproximateReceiveCount"] == "2"
    assert record["messageAttributes"]["k"]["stringValue"] == "v"
    assert record["eventSource"] == "aws:sqs" and record["awsRegion"] == "eu-west-1"


def test_import_handler_accepts_lambdas_path_form() -> None:
    from imgpipe.handlers import process

    assert import_handler("src/imgpipe/handlers/process.handler") is process.handler
