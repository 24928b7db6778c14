from __future__ import annotations

import json

import pytest

from imgpipe.queues import SqsQueues
from imgpipe.redrive import Queues, RedriveResult, parse_request, redrive
from tests.conftest import Events
from tests.unit.conftest import FakeStack


def _queues(stack: FakeStack) -> Queues:
    dlq = stack.sqs.create_queue(QueueName="dlq")["QueueUrl"]
    source = stack.sqs.create_queue(QueueName="source")["QueueUrl"]
    return Queues(source_url=source, dlq_url=dlq)


def _fill(stack: FakeStack, events: Events, url: str, n: int) -> None:
    for i in range(n):
        stack.sqs.send_message(
            QueueUrl=url,
            MessageBody=events.s3_body(f"k{i}.jpg"),
            MessageAttributes={"origin": {"DataType": "String", "StringValue": f"test-{i}"}},
        )


def _drain(stack: FakeStack, url: str) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    while True:
        msgs = stack.sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
        ).get("Messages", [])
        if not msgs:
            return out
        out.extend(msgs)
        for m in msgs:
            stack.sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


def test_fallback_moves_everything_with_bodies_and_attributes(
    stack: FakeStack, events: Events
) -> None:
    queues = _queues(stack)
    _fill(stack, events, queues.dlq_url, 23)  # more than two batches of ten
    result = redrive(SqsQueues(stack.sqs), queues, use_move_task=False)
    assert result == RedriveResult(moved=23, remaining=0, dry_run=False, copied=True)
    assert result.as_json() == {
        **{"moved": 23, "remaining": 0, "dry_run": False, "task": None, "task_status": ""},
        **{"task_moved": 0, "failure_reason": "", "copied": True},
    }
    moved = _drain(stack, queues.source_url)
    assert sorted(
        json.loads(str(m["Body"]))["Records"][0]["s3"]["object"]["key"] for m in moved
    ) == sorted(f"k{i}.jpg" for i in range(23))
    assert {m["MessageAttributes"]["origin"]["StringValue"] for m in moved} == {  # type: ignore[index]
        f"test-{i}" for i in range(23)
    }
    assert _drain(stack, queues.dlq_url) == []


def test_max_messages_caps_the_move(stack: FakeStack, events: Events) -> None:
    queues = _queues(stack)
    _fill(stack, events, queues.dlq_url, 15)
    result = redrive(SqsQueues(stack.sqs), queues, max_messages=12)
    assert (result.moved, result.remaining) == (12, 3)


def test_dry_run_lists_and_moves_nothing(stack: FakeStack, events: Events) -> None:
    queues = _queues(stack)
    _fill(stack, events, queues.dlq_url, 4)
    result = redrive(SqsQueues(stack.sqs), queues, dry_run=True)
    assert result.moved == 0 and result.dry_run is True
    assert sorted(k for m in result.messages for k in m.keys) == [
        f"uploads/k{i}.jpg" for i in range(4)
    ]
    # still all in the DLQ, visible again at once, none in the source queue
    assert len(_drain(stack, queues.dlq_url)) == 4
    assert _drain(stack, queues.source_url) == []


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        ({}, (None, False)),
        (None, (None, False)),
        ({"max_messages": 5, "dry_run": True}, (5, True)),
        ('{"max_messages": 2}', (2, False)),
    ],
)
def test_parse_request(event: object, expected: tuple[int | None, bool]) -> None:
    assert parse_request(event) == expected


@pytest.mark.parametrize(
    "event",
    [
        {"max_messages": 0},
        {"max_messages": "ten"},
        {"max_messages": True},
        {"dry_run": "yes"},
        {"maximum": 3},
        [1],
    ],
)
def test_parse_request_rejects(event: object) -> None:
    with pytest.raises(ValueError):
        parse_request(event)
