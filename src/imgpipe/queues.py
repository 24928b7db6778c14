"""``ports.QueuePort`` on SQS: receive, copy (body and attributes intact), delete, and the
server-side move task where the endpoint has one."""

from __future__ import annotations

from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from .errors import Unsupported, translate
from .ports import MoveTask, QueuedMessage

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import (
        ChangeMessageVisibilityBatchRequestEntryTypeDef,
        DeleteMessageBatchRequestEntryTypeDef,
        MessageAttributeValueTypeDef,
        MessageTypeDef,
        SendMessageBatchRequestEntryTypeDef,
    )


class SqsQueues:
    def __init__(self, client: SQSClient) -> None:
        self._sqs = client

    def depth(self, url: str) -> int:
        attrs = self._sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        return int(attrs.get("ApproximateNumberOfMessages", 0))

    def receive(self, url: str, count: int, visibility: int) -> list[QueuedMessage]:
        resp = self._sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=max(1, min(10, count)),
            WaitTimeSeconds=0,
            VisibilityTimeout=visibility,
            MessageAttributeNames=["All"],
            MessageSystemAttributeNames=["All"],
        )
        return [_message(m) for m in resp.get("Messages", [])]

    def release(self, url: str, receipts: list[str]) -> None:
        for start in range(0, len(receipts), 10):
            entries: list[ChangeMessageVisibilityBatchRequestEntryTypeDef] = [
                {"Id": str(i), "ReceiptHandle": receipt, "VisibilityTimeout": 0}
                for i, receipt in enumerate(receipts[start : start + 10])
            ]
            self._sqs.change_message_visibility_batch(QueueUrl=url, Entries=entries)

    def send(self, url: str, messages: list[QueuedMessage]) -> tuple[set[int], list[str]]:
        entries: list[SendMessageBatchRequestEntryTypeDef] = [
            {
                "Id": str(i),
                "MessageBody": m.body,
                "MessageAttributes": {
                    name: _attribute(kind, text, binary)
                    for name, kind, text, binary in m.attributes
                },
            }
            for i, m in enumerate(messages)
        ]
        sent = self._sqs.send_message_batch(QueueUrl=url, Entries=entries)
        ok = {int(s["Id"]) for s in sent.get("Successful", [])}
        return ok, [str(f.get("Message", "")) for f in sent.get("Failed", [])]

    def delete(self, url: str, receipts: list[str]) -> None:
        for start in range(0, len(receipts), 10):
            entries: list[DeleteMessageBatchRequestEntryTypeDef] = [
                {"Id": str(i), "ReceiptHandle": receipt}
                for i, receipt in enumerate(receipts[start : start + 10])
            ]
            self._sqs.delete_message_batch(QueueUrl=url, Entries=entries)

    def start_move(self, source_url: str, destination_url: str) -> str | None:
        try:
            resp = self._sqs.start_message_move_task(
                SourceArn=self._arn(source_url), DestinationArn=self._arn(destination_url)
            )
        except ClientError as exc:
            if isinstance(translate("sqs", exc), Unsupported):
                return None
            raise
        return resp["TaskHandle"]

    def latest_move(self, source_url: str) -> MoveTask | None:
        try:
            resp = self._sqs.list_message_move_tasks(SourceArn=self._arn(source_url), MaxResults=1)
        except ClientError as exc:
            if isinstance(translate("sqs", exc), Unsupported):
                return None
            raise
        tasks = resp.get("Results", [])
        if not tasks:
            return None
        task = tasks[0]  # most recent first
        to_move = task.get("ApproximateNumberOfMessagesToMove")
        return MoveTask(
            status=task.get("Status", "?"),
            moved=int(task.get("ApproximateNumberOfMessagesMoved", 0)),
            to_move=None if to_move is None else int(to_move),
            failure_reason=task.get("FailureReason", ""),
            handle=task.get("TaskHandle", ""),
            started_ms=int(task.get("StartedTimestamp", 0)),
        )

    def _arn(self, url: str) -> str:
        attrs = self._sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
        return attrs["Attributes"]["QueueArn"]


def _message(m: MessageTypeDef) -> QueuedMessage:
    return QueuedMessage(
        message_id=m.get("MessageId", ""),
        receipt=m.get("ReceiptHandle", ""),
        body=m.get("Body", ""),
        receive_count=int(m.get("Attributes", {}).get("ApproximateReceiveCount", 0)),
        attributes=tuple(
            (name, a["DataType"], a.get("StringValue"), a.get("BinaryValue"))
            for name, a in m.get("MessageAttributes", {}).items()
        ),
    )


def _attribute(
    data_type: str, text: str | None, binary: bytes | None
) -> MessageAttributeValueTypeDef:
    copied: MessageAttributeValueTypeDef = {"DataType": data_type}
    if text is not None:
        copied["StringValue"] = text
    if binary is not None:
        copied["BinaryValue"] = binary
    return copied
