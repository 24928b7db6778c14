"""Transient failures are retried by SQS, then parked in the DLQ; a redrive brings them back."""

from __future__ import annotations

from typing import Any

import pytest

from imgpipe.catalog import Catalog
from imgpipe.deployment import Deployment
from imgpipe.queues import SqsQueues
from imgpipe.redrive import Queues, peek, redrive
from tests.conftest import jpeg_bytes
from tests.functional.conftest import dlq_keys, require_local_functions, wait_for
from tests.harness.backends import processing
from tests.harness.wait import poll

# on both endpoints: what LocalStack users run (make test-functional-localstack)
pytestmark = [pytest.mark.functional, pytest.mark.localstack_path]


def test_always_transient_failure_reaches_dlq_and_redrive_recovers_it(
    local_stack: Deployment, catalog: Catalog, s3: Any, sender: Any, prefix: str
) -> None:
    require_local_functions(local_stack)
    key = prefix + "unlucky.jpg"
    assert local_stack.process is not None
    max_receives = int(local_stack.process.environment["MAX_RECEIVE_COUNT"])
    # GIVEN a handler whose every S3/DynamoDB/SNS call is throttled, failed messages returning
    # at once rather than after the queue's visibility timeout
    with processing(local_stack, fault_rate=1.0, retry_visibility=0):
        s3.put_object(Bucket=local_stack.uploads_bucket, Key=key, Body=jpeg_bytes())
        # THEN after maxReceiveCount failed receives the message is in the DLQ, not processed
        poll(lambda: dlq_keys(local_stack), lambda keys: key in keys, 60, what="DLQ arrival")
    [parked] = [
        m
        for m in peek(
            SqsQueues(local_stack.client("sqs")),
            Queues(local_stack.queue_url, local_stack.dlq_url),
            50,
        )
        if any(k.endswith(f"/{key}") for k in m.keys)
    ]
    assert parked.receive_count >= max_receives
    assert catalog.get(local_stack.uploads_bucket, key) is None
    # WHEN the incident is over and the DLQ is redriven
    result = redrive(
        SqsQueues(sender),  # as the redrive function: the queue accepts no other sender
        Queues(local_stack.queue_url, local_stack.dlq_url),
        use_move_task=False,  # as the local stage's function: MiniStack has no move task
    )
    assert result.moved >= 1
    with processing(local_stack):
        record = wait_for(catalog, local_stack, [key])[key]
    # THEN the upload completes and the DLQ no longer holds it
    assert record.status == "DONE"
    assert key not in dlq_keys(local_stack)
