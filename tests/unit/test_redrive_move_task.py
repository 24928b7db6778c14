"""Redrive follows SQS's move task to its end (botocore's Stubber answers for the task: moto
has no move tasks) while the messages themselves live on moto's SQS, so the fallback's copies
are real. The CLI is run in-process with the function's work done by ``redrive()`` itself."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber
from click.testing import CliRunner

from imgpipe.cli import dlq as dlq_cli
from imgpipe.cli import main
from imgpipe.deployment import Access, Deployment
from imgpipe.ports import MoveTask, QueuedMessage
from imgpipe.queues import SqsQueues
from imgpipe.redrive import Patience, Queues, RedriveResult, follow, redrive
from tests.conftest import Events
from tests.unit.conftest import FakeStack

HANDLE = "eyJ0YXNrSWQiOiJ0LTEifQ=="


class SplitQueues:
    """Messages on moto, move tasks on a stubbed client."""

    def __init__(self, messages: SqsQueues, tasks: SqsQueues) -> None:
        self.messages, self.tasks = messages, tasks

    def depth(self, url: str) -> int:
        return self.messages.depth(url)

    def receive(self, url: str, count: int, visibility: int) -> list[QueuedMessage]:
        return self.messages.receive(url, count, visibility)

    def release(self, url: str, receipts: list[str]) -> None:
        self.messages.release(url, receipts)

    def send(self, url: str, messages: list[QueuedMessage]) -> tuple[set[int], list[str]]:
        return self.messages.send(url, messages)

    def delete(self, url: str, receipts: list[str]) -> None:
        self.messages.delete(url, receipts)

    def start_move(self, source_url: str, destination_url: str) -> str | None:
        return self.tasks.start_move(source_url, destination_url)

    def latest_move(self, source_url: str) -> MoveTask | None:
        return self.tasks.latest_move(source_url)


@pytest.fixture
def stubbed() -> Iterator[tuple[SqsQueues, Stubber]]:
    client = boto3.client("sqs", region_name="us-east-1")
    with Stubber(client) as stubber:
        yield SqsQueues(client), stubber
        stubber.assert_no_pending_responses()


ARN = "arn:aws:sqs:us-east-1:123456789012:q"


def _arn(stubber: Stubber) -> None:
    stubber.add_response(
        "get_queue_attributes",
        {"Attributes": {"QueueArn": ARN}},
        {"QueueUrl": ANY, "AttributeNames": ["QueueArn"]},
    )


def _started(stubber: Stubber) -> None:
    _arn(stubber)
    _arn(stubber)
    stubber.add_response(
        "start_message_move_task",
        {"TaskHandle": HANDLE},
        {"SourceArn": ARN, "DestinationArn": ARN},
    )


def _listed(stubber: Stubber, **task: Any) -> None:
    _arn(stubber)
    stubber.add_response(
        "list_message_move_tasks",
        {"Results": [{"SourceArn": ARN, "StartedTimestamp": 1765152000000, **task}]},
        {"SourceArn": ARN, "MaxResults": 1},
    )


def _setup(
    stack: FakeStack, events: Events, n: int, stubbed: tuple[SqsQueues, Stubber]
) -> tuple[SplitQueues, Queues]:
    dlq = stack.sqs.create_queue(QueueName="dlq")["QueueUrl"]
    source = stack.sqs.create_queue(QueueName="source")["QueueUrl"]
    for i in range(n):
        stack.sqs.send_message(QueueUrl=dlq, MessageBody=events.s3_body(f"k{i}.jpg"))
    return SplitQueues(SqsQueues(stack.sqs), stubbed[0]), Queues(source_url=source, dlq_url=dlq)


NO_WAIT = Patience(time_left=lambda: 60.0, sleep=lambda _s: None)


def _depth(stack: FakeStack, url: str) -> int:
    attrs = stack.sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
    )
    return int(attrs["Attributes"]["ApproximateNumberOfMessages"])


def test_a_completed_task_reports_sqs_own_count(
    stack: FakeStack, events: Events, stubbed: tuple[SqsQueues, Stubber]
) -> None:
    queues, urls = _setup(stack, events, 3, stubbed)
    _started(stubbed[1])
    _listed(
        stubbed[1],
        Status="RUNNING",
        TaskHandle=HANDLE,
        ApproximateNumberOfMessagesMoved=2,
        ApproximateNumberOfMessagesToMove=40,
    )
    _listed(stubbed[1], Status="COMPLETED", ApproximateNumberOfMessagesMoved=40)
    slept: list[float] = []
    result = redrive(queues, urls, patience=Patience(time_left=lambda: 60.0, sleep=slept.append))
    assert (result.task_status, result.task_moved, result.moved) == ("COMPLETED", 40, 40)
    assert result.task == HANDLE and not result.copied and not result.task_failed
    assert slept == [2.0]  # polled again once after RUNNING
    assert (
        result.summary()
        == f"move task {HANDLE} COMPLETED: moved 40 (SQS's count), 3 left in the DLQ"
    )
    assert _depth(stack, urls.source_url) == 0  # the copy path did not run


def test_a_failed_task_says_why_and_the_copy_path_moves_the_rest(
    stack: FakeStack, events: Events, stubbed: tuple[SqsQueues, Stubber]
) -> None:
    queues, urls = _setup(stack, events, 12, stubbed)
    _started(stubbed[1])
    reason = "AWS.SimpleQueueService.AccessDenied: the destination refused the move"
    _listed(stubbed[1], Status="FAILED", ApproximateNumberOfMessagesMoved=0, FailureReason=reason)
    result = redrive(queues, urls, patience=NO_WAIT)
    assert (result.task_status, result.failure_reason, result.copied) == ("FAILED", reason, True)
    assert (result.moved, result.remaining) == (12, 0)
    assert result.task_failed
    assert _depth(stack, urls.source_url) == 12 and _depth(stack, urls.dlq_url) == 0
    assert result.summary().endswith("it moved 0; the copy path then moved 12, 0 left in the DLQ")


def test_a_cancelled_task_is_not_overridden(
    stack: FakeStack, events: Events, stubbed: tuple[SqsQueues, Stubber]
) -> None:
    queues, urls = _setup(stack, events, 4, stubbed)
    _started(stubbed[1])
    _listed(stubbed[1], Status="CANCELLED", ApproximateNumberOfMessagesMoved=1)
    result = redrive(queues, urls, patience=NO_WAIT)
    assert (result.task_status, result.moved, result.copied, result.task_failed) == (
        "CANCELLED",
        1,
        False,
        True,
    )
    assert _depth(stack, urls.dlq_url) == 4  # nobody moved them behind the operator's back


def test_a_task_still_running_when_time_runs_out_is_reported_running(
    stack: FakeStack, events: Events, stubbed: tuple[SqsQueues, Stubber]
) -> None:
    queues, urls = _setup(stack, events, 2, stubbed)
    _started(stubbed[1])
    _listed(
        stubbed[1],
        Status="RUNNING",
        TaskHandle=HANDLE,
        ApproximateNumberOfMessagesMoved=7,
        ApproximateNumberOfMessagesToMove=50,
    )
    result = redrive(queues, urls, patience=Patience(time_left=lambda: 6.0, sleep=lambda _s: None))
    assert (result.task_status, result.task_moved, result.task_to_move) == ("RUNNING", 7, 50)
    assert not result.task_failed
    assert "RUNNING: 7 of 50 moved so far" in result.summary()


def test_a_task_that_cannot_start_falls_back_to_copies_and_says_why(
    stack: FakeStack, events: Events, stubbed: tuple[SqsQueues, Stubber]
) -> None:
    queues, urls = _setup(stack, events, 5, stubbed)
    _arn(stubbed[1])
    _arn(stubbed[1])
    stubbed[1].add_client_error(
        "start_message_move_task",
        "AccessDenied",
        "not authorized to perform sqs:StartMessageMoveTask",
    )
    _listed(stubbed[1], Status="COMPLETED", ApproximateNumberOfMessagesMoved=9)  # an old task
    result = redrive(queues, urls, patience=NO_WAIT)
    assert (result.moved, result.remaining, result.copied, result.task_status) == (5, 0, True, "")
    assert "AccessDenied" in result.failure_reason
    assert (
        "(by copy: the move task could not start: StartMessageMoveTask: AccessDenied"
        in result.summary()
    )


def test_a_task_already_running_is_followed_not_doubled(
    stack: FakeStack, events: Events, stubbed: tuple[SqsQueues, Stubber]
) -> None:
    queues, urls = _setup(stack, events, 5, stubbed)
    _arn(stubbed[1])
    _arn(stubbed[1])
    stubbed[1].add_client_error(
        "start_message_move_task",
        "UnsupportedOperation",
        "a task is already running",
        http_status_code=400,
    )
    _listed(stubbed[1], Status="RUNNING", TaskHandle="other", ApproximateNumberOfMessagesMoved=1)
    _listed(stubbed[1], Status="COMPLETED", ApproximateNumberOfMessagesMoved=5)
    result = redrive(queues, urls, patience=NO_WAIT)
    assert (result.task_status, result.moved, result.copied) == ("COMPLETED", 5, False)


def _cli(
    monkeypatch: pytest.MonkeyPatch,
    queues: SplitQueues,
    urls: Queues,
    patience: Patience = NO_WAIT,
) -> Any:
    """`imgpipe redrive --stage dev` with the function's own work done in-process by
    ``redrive()`` (as the deployed function runs it, waiting ``patience``)."""
    dep = Deployment(
        *("dev", "uploads", "derived", "images", "arn", urls.source_url, urls.dlq_url),
        Access(None, "us-east-1"),
    )
    monkeypatch.setattr(dlq_cli, "deployment", lambda stage, endpoint: dep)
    monkeypatch.setattr(
        dlq_cli,
        "_invoke_redrive",
        lambda d, dry, cap: redrive(queues, urls, cap, dry, patience=patience),
    )
    return CliRunner().invoke(main, ["redrive", "--stage", "dev"])


def test_the_cli_exits_non_zero_on_a_failed_task_with_sqs_reason(
    monkeypatch: pytest.MonkeyPatch,
    stack: FakeStack,
    events: Events,
    stubbed: tuple[SqsQueues, Stubber],
) -> None:
    queues, urls = _setup(stack, events, 3, stubbed)
    _started(stubbed[1])
    _listed(
        stubbed[1],
        Status="FAILED",
        ApproximateNumberOfMessagesMoved=0,
        FailureReason="KMS.AccessDeniedException",
    )
    done = _cli(monkeypatch, queues, urls)
    assert done.exit_code == 1
    assert "SQS's move task ended FAILED: KMS.AccessDeniedException" in done.output
    assert "the copy path then moved 3, 0 left in the DLQ" in done.output
    assert _depth(stack, urls.source_url) == 3


def test_the_cli_follows_a_running_task_to_its_end(
    monkeypatch: pytest.MonkeyPatch,
    stack: FakeStack,
    events: Events,
    stubbed: tuple[SqsQueues, Stubber],
) -> None:
    queues, urls = _setup(stack, events, 0, stubbed)
    _started(stubbed[1])
    running = {"Status": "RUNNING", "TaskHandle": HANDLE, "ApproximateNumberOfMessagesToMove": 30}
    _listed(stubbed[1], **running, ApproximateNumberOfMessagesMoved=3)  # the function's last look
    _listed(stubbed[1], **running, ApproximateNumberOfMessagesMoved=20)  # the CLI's first
    _listed(stubbed[1], Status="COMPLETED", ApproximateNumberOfMessagesMoved=30)
    monkeypatch.setattr(dlq_cli, "follow", _no_wait(follow))
    queues_for_cli = stubbed[0]
    monkeypatch.setattr(dlq_cli, "SqsQueues", lambda _client: queues_for_cli)
    monkeypatch.setattr(SqsQueues, "depth", lambda self, url: 0)
    one_look = Patience(time_left=lambda: 6.0, sleep=lambda _s: None)  # the function's
    done = _cli(monkeypatch, queues, urls, one_look)
    assert done.exit_code == 0, done.output
    assert "RUNNING: 3 of 30 moved so far" in done.output
    assert "move task RUNNING (started 2025-12-08 00:00:00Z): 20 of 30 moved" in done.stderr
    assert done.stdout.strip().endswith("COMPLETED: moved 30 (SQS's count), 0 left in the DLQ")


def _no_wait(follow: Any) -> Any:
    def quick(queues: Any, url: str, patience: Patience, on_progress: Any = None) -> Any:
        return follow(queues, url, Patience(patience.time_left, lambda _s: None), on_progress)

    return quick


def test_dlq_ls_shows_the_latest_move_task(
    monkeypatch: pytest.MonkeyPatch,
    stack: FakeStack,
    events: Events,
    stubbed: tuple[SqsQueues, Stubber],
) -> None:
    queues, urls = _setup(stack, events, 2, stubbed)
    dep = Deployment(
        "dev",
        "uploads",
        "derived",
        "images",
        "arn",
        urls.source_url,
        urls.dlq_url,
        Access(None, "us-east-1"),
    )
    monkeypatch.setattr(dlq_cli, "deployment", lambda stage, endpoint: dep)
    monkeypatch.setattr(dlq_cli, "SqsQueues", lambda _client: queues)
    _listed(
        stubbed[1],
        Status="FAILED",
        ApproximateNumberOfMessagesMoved=2,
        FailureReason="the queue was\x1b[2J deleted",
    )
    done = CliRunner().invoke(main, ["dlq", "ls", "--stage", "dev"])
    assert done.exit_code == 0, done.output
    lines = done.stdout.splitlines()
    assert lines[0] == (
        "move task FAILED (started 2025-12-08 00:00:00Z): 2 moved; the queue was\\x1b[2J deleted"
    )
    assert sum("k0.jpg" in line or "k1.jpg" in line for line in lines) == 2


def test_redrive_result_round_trips_through_the_function_answer() -> None:
    from imgpipe.codec import structure

    result = RedriveResult(
        moved=5,
        remaining=0,
        dry_run=False,
        task=HANDLE,
        task_status="FAILED",
        task_moved=2,
        failure_reason="x",
        copied=True,
    )
    assert structure(RedriveResult, result.as_json()) == result
