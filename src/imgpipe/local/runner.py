"""A local stand-in for Lambda's SQS event source mapping.

It long-polls the queue, gathers batches as the mapping would (batch size, batching window),
invokes the real handler in-process with the real event shape, deletes only the messages the
handler did not list in ``batchItemFailures`` and leaves the others to the queue's visibility
timeout and redrive policy, with at most ``max_concurrency`` invocations in flight.
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypedDict

from aws_lambda_powertools import Logger

from ..deployment import Access, Deployment, FunctionSpec, MappingSpec

if TYPE_CHECKING:
    from mypy_boto3_sqs.type_defs import MessageTypeDef

logger = Logger(service="imgpipe-runner")


class SqsMessageAttribute(TypedDict):
    stringValue: str | None
    binaryValue: bytes | None
    stringListValues: list[str]
    binaryListValues: list[bytes]
    dataType: str


class SqsRecord(TypedDict):
    """One record of the event Lambda's SQS event source mapping sends a function."""

    messageId: str
    receiptHandle: str
    body: str
    attributes: dict[str, str]
    messageAttributes: dict[str, SqsMessageAttribute]
    md5OfBody: str
    eventSource: str
    eventSourceARN: str
    awsRegion: str


class SqsEvent(TypedDict):
    Records: list[SqsRecord]


Handler = Callable[[SqsEvent, Any], object]


@dataclass
class FakeContext:
    """The LambdaContext attributes handlers and Powertools read."""

    function_name: str
    memory_limit_in_mb: int
    timeout_s: int
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    started: float = field(default_factory=time.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    @property
    def log_stream_name(self) -> str:
        return "local-runner"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.timeout_s - (time.monotonic() - self.started)) * 1000))


def import_handler(spec: str) -> Handler:
    """``src/imgpipe/handlers/process.handler`` (Lambda's form) or ``pkg.module.attr``."""
    module_path, _, attr = spec.rpartition(".")
    module_name = module_path.replace("/", ".").removeprefix("src.")
    handler: Handler = getattr(importlib.import_module(module_name), attr)
    return handler


# One execution environment per worker process, as in Lambda: module-level state (clients, the
# Powertools BatchProcessor) is reused across invocations but never shared between two at once.
_worker_handler: Handler | None = None


def _worker_init(environment: dict[str, str], spec: str, fault_rate: float) -> None:
    global _worker_handler
    os.environ.update(environment)
    if fault_rate:
        from .. import aws
        from .faults import install

        # Before the handler makes its clients: each copies the session's handlers.
        install(aws.session(), fault_rate)
    _worker_handler = import_handler(spec)


def _worker_invoke(event: SqsEvent, context: FakeContext) -> tuple[bool, object]:
    """Run the handler; (True, response) or (False, formatted traceback)."""
    assert _worker_handler is not None, "worker not initialised"
    try:
        return True, _worker_handler(event, context)
    except Exception:  # noqa: BLE001 - a raising handler fails the whole batch, as in Lambda
        return False, traceback.format_exc(limit=8)


def to_lambda_record(message: MessageTypeDef, queue_arn: str) -> SqsRecord:
    attributes = message.get("MessageAttributes", {})
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": {str(k): v for k, v in message.get("Attributes", {}).items()},
        "messageAttributes": {
            name: {
                "stringValue": attr.get("StringValue"),
                "binaryValue": attr.get("BinaryValue"),
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": attr.get("DataType", "String"),
            }
            for name, attr in attributes.items()
        },
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": queue_arn.split(":")[3],
    }


def failed_ids(response: object, message_ids: set[str]) -> set[str]:
    """Message ids to keep, read from a partial batch response as Lambda reads it: a malformed
    response, or one naming an unknown id, fails the whole batch."""
    if response is None:
        return set()
    if not isinstance(response, dict):
        return set(message_ids)
    failures = response.get("batchItemFailures", [])
    if not isinstance(failures, list):
        return set(message_ids)
    ids: set[str] = set()
    for item in failures:
        ident = item.get("itemIdentifier") if isinstance(item, dict) else None
        if not isinstance(ident, str) or ident not in message_ids:
            return set(message_ids)
        ids.add(ident)
    return ids


@dataclass
class RunnerStats:
    batches: int = 0
    messages: int = 0
    deleted: int = 0
    failed: int = 0
    errors: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, messages: int, failed: int, error: bool) -> None:
        with self.lock:
            self.batches += 1
            self.messages += messages
            self.failed += failed
            self.deleted += messages - failed
            self.errors += int(error)


def function_env(access: Access) -> dict[str, str]:
    """What Lambda gives a function besides its own variables: a region and credentials; plus,
    locally, the endpoint to talk to."""
    env = {"AWS_REGION": access.region or "", "AWS_DEFAULT_REGION": access.region or ""}
    if access.endpoint_url:
        env["AWS_ENDPOINT_URL"] = access.endpoint_url
    if access.key_id and access.secret:
        env.update(AWS_ACCESS_KEY_ID=access.key_id, AWS_SECRET_ACCESS_KEY=access.secret)
    return {k: v for k, v in env.items() if v}


class Runner:
    def __init__(
        self,
        stack: Deployment,
        handler: str | None = None,
        *,
        max_concurrency: int | None = None,
        retry_visibility: int | None = None,
        environment: dict[str, str] | None = None,
        fault_rate: float = 0.0,
    ) -> None:
        """``handler``: a handler spec to run instead of the deployed one (tests use this).
        ``retry_visibility``: when set, failed messages come back after that many seconds
        instead of the queue's visibility timeout (tests use it to reach the DLQ quickly).
        ``fault_rate``: testing only, fail that fraction of the handler's S3/DynamoDB/SNS
        calls with throttling errors (see ``local.faults``)."""
        if stack.process is None or stack.mapping is None:
            raise ValueError(f"{stack.name}: no process function or mapping was read back")
        self.stack = stack
        self.function: FunctionSpec = stack.process
        self.mapping: MappingSpec = stack.mapping
        self.handler = handler or self.function.handler
        self.fault_rate = fault_rate
        # Lambda caps concurrency at the mapping's maximum; locally more workers than cores
        # would only contend for them.
        self.concurrency = max_concurrency or min(self.mapping.max_concurrency, os.cpu_count() or 2)
        self.retry_visibility = retry_visibility
        # What Lambda would give the function: its configured variables, a region, credentials;
        # plus the endpoint, since the function must talk to the local stack.
        self.environment = {
            **function_env(stack.access),
            **self.function.environment,
            "AWS_LAMBDA_FUNCTION_NAME": self.function.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(self.function.memory),
            **(environment or {}),
        }
        self.stats = RunnerStats()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._sqs = stack.client("sqs")
        self._pool: ProcessPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=self.concurrency,
            # spawn, not fork: the parent has polling threads and boto3 connections.
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_worker_init,
            initargs=(self.environment, self.handler, self.fault_rate),
        )

    def _submit(self, event: SqsEvent, context: FakeContext) -> tuple[bool, object]:
        with self._pool_lock:
            if self._pool is None:
                self._pool = self._new_pool()
            pool = self._pool
        try:
            return pool.submit(_worker_invoke, event, context).result()
        except BrokenProcessPool:
            # An execution environment died mid-invocation (crash, OOM, kill): Lambda would
            # retry the batch in a fresh environment, so fail the batch and replace the pool.
            with self._pool_lock:
                if self._pool is pool:
                    self._pool = None
            pool.shutdown(wait=False, cancel_futures=True)
            return False, "execution environment died"

    def crash(self) -> int:
        """SIGKILL every execution environment now, mid-invocation if one is running (the
        crash, timeout or out-of-memory case). Returns how many processes were killed."""
        with self._pool_lock:
            pool = self._pool
        # ProcessPoolExecutor exposes no public list of its workers; _processes is stable.
        processes = list(getattr(pool, "_processes", {}).values()) if pool else []
        for process in processes:
            process.kill()
        return len(processes)

    def start(self) -> Runner:
        with self._pool_lock:
            if self._pool is None:
                self._pool = self._new_pool()
        for i in range(self.concurrency):
            t = threading.Thread(target=self._poll_loop, name=f"poller-{i}", daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout)
        self._threads.clear()
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> Runner:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _receive(self, max_messages: int, wait: int) -> list[MessageTypeDef]:
        resp = self._sqs.receive_message(
            QueueUrl=self.stack.queue_url,
            MaxNumberOfMessages=max(1, min(10, max_messages)),
            WaitTimeSeconds=wait,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        return list(resp.get("Messages", []))

    def _gather(self) -> list[MessageTypeDef]:
        """One batch: up to batch_size messages, waiting at most the batching window once the
        first message arrived."""
        batch = self._receive(self.mapping.batch_size, wait=1)
        if not batch:
            return batch
        deadline = time.monotonic() + self.mapping.window
        while len(batch) < self.mapping.batch_size and time.monotonic() < deadline:
            more = self._receive(self.mapping.batch_size - len(batch), wait=0)
            if not more:
                time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
            batch.extend(more)
        return batch

    def _poll_loop(self) -> None:
        while not self._stop.is_set():
            try:
                batch = self._gather()
                if batch:
                    self.invoke(batch)
            except Exception:  # a poller must survive the endpoint's hiccups
                logger.exception("poll failed; retrying")
                time.sleep(0.5)

    def invoke(self, batch: list[MessageTypeDef]) -> set[str]:
        """Invoke the handler on ``batch`` and settle the messages; returns the failed ids."""
        event: SqsEvent = {"Records": [to_lambda_record(m, self.mapping.queue_arn) for m in batch]}
        ids = {m["MessageId"] for m in batch}
        fn = self.function
        ok, response = self._submit(event, FakeContext(fn.name, fn.memory, fn.timeout))
        if ok:
            failed = failed_ids(response, ids) if self.mapping.report_failures else set()
        else:
            logger.warning("invocation failed; the whole batch will be retried: %s", response)
            failed = set(ids)
        done = [m for m in batch if m["MessageId"] not in failed]
        for start in range(0, len(done), 10):
            entries = [
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                for i, m in enumerate(done[start : start + 10])
            ]
            self._sqs.delete_message_batch(QueueUrl=self.stack.queue_url, Entries=entries)
        if self.retry_visibility is not None:
            for m in batch:
                if m["MessageId"] in failed:
                    self._sqs.change_message_visibility(
                        QueueUrl=self.stack.queue_url,
                        ReceiptHandle=m["ReceiptHandle"],
                        VisibilityTimeout=self.retry_visibility,
                    )
        self.stats.add(len(batch), len(failed), not ok)
        return failed

    def run_forever(self) -> None:
        self.start()
        try:
            while not self._stop.is_set():
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()
