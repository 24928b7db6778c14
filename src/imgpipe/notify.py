"""SNS notifications: one message per final outcome, filterable by the ``status`` attribute."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from .record import ImageRecord, to_document

if TYPE_CHECKING:
    from mypy_boto3_sns import SNSClient


def subject(record: ImageRecord) -> str:
    """SNS subjects must be printable ASCII without line breaks or control characters, at most
    100 characters; keys can hold anything, so anything else becomes '?'."""
    text = f"imgpipe {record.status}: {record.key}"
    return "".join(c if " " <= c <= "~" else "?" for c in text)[:100]


class Notifier:
    def __init__(self, client: SNSClient | None, topic_arn: str) -> None:
        self._sns = client
        self._topic = topic_arn

    def publish(self, record: ImageRecord) -> None:
        if self._sns is None or not self._topic:
            return
        attributes = {
            "status": record.status.value,
            "bucket": record.bucket,
            "key": record.key,
            "reason": record.reason.value if record.reason else "-",
        }
        self._sns.publish(
            TopicArn=self._topic,
            Subject=subject(record),
            Message=json.dumps(to_document(record), ensure_ascii=False),
            MessageAttributes={
                k: {"DataType": "String", "StringValue": v or "-"} for k, v in attributes.items()
            },
        )
