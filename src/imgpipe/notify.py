"""SNS notifications: one message per final outcome, filterable by the ``status`` attribute."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_sns import SNSClient


# Bookkeeping fields of the catalog record that mean nothing to a subscriber.
_INTERNAL = frozenset({"notified"})


class Notifier:
    def __init__(self, client: SNSClient | None, topic_arn: str) -> None:
        self._sns = client
        self._topic = topic_arn

    def publish(self, record: Mapping[str, Any]) -> None:
        if self._sns is None or not self._topic:
            return
        status, key = str(record["status"]), str(record["key"])
        attributes = {
            "status": status,
            "bucket": str(record["bucket"]),
            "key": key,
            "reason": str(record.get("reason") or "-"),
        }
        subject = f"imgpipe {status}: {key}"
        self._sns.publish(
            TopicArn=self._topic,
            # SNS subjects must be ASCII, without line breaks, at most 100 characters.
            Subject=subject.encode("ascii", "replace").decode()[:100].replace("\n", " "),
            Message=json.dumps(
                {k: v for k, v in record.items() if k not in _INTERNAL},
                default=str,
                ensure_ascii=False,
            ),
            MessageAttributes={
                k: {"DataType": "String", "StringValue": v or "-"} for k, v in attributes.items()
            },
        )
