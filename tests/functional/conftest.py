"""Functional fixtures: a real endpoint (MiniStack running the real Lambda zip, or LocalStack when
LOCALSTACK_ENDPOINT is set), serverless.yml deployed to it with the real Serverless CLI."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from imgpipe.catalog import Catalog
from imgpipe.deployment import Deployment
from imgpipe.local import endpoint
from imgpipe.local.deploy import deploy
from imgpipe.local.stack import discover, set_trigger
from imgpipe.outcomes import FINAL
from imgpipe.record import ImageRecord
from tests.harness.backends import Processing, functions_run_here, processing
from tests.harness.wait import poll

pytestmark = pytest.mark.functional
MAX_BYTES = 3 * 1024 * 1024
UPLOAD_EXPIRES = 6


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    own_endpoint = not os.environ.get("LOCALSTACK_ENDPOINT")
    saved = os.environ.get(endpoint.STATE_DIR_ENV)
    if own_endpoint:
        # Our own endpoint, apart from any `make demo` one the developer keeps running.
        os.environ[endpoint.STATE_DIR_ENV] = str(tmp_path_factory.mktemp("local-state"))
    ep = endpoint.up()
    try:
        # A short function timeout (and, 6 times it, the visibility timeout): on MiniStack a
        # failed message returns only after the visibility timeout, as on AWS, which tests
        # shorten to just above the function's timeout.
        # maxBytes: 3 MB, so that an upload form's size limit can be tried with a small body
        # and upload forms that expire after UPLOAD_EXPIRES seconds, so that one can be seen to
        params = {
            "processTimeout": "12",
            "visibilityTimeout": "72",
            "maxBytes": str(MAX_BYTES),
            "uploadExpires": str(UPLOAD_EXPIRES),
        }
        deploy(ep, quiet=True, params=params)
        stack = discover(ep)
        set_trigger(stack, False)  # processing happens inside `processing(...)` blocks
        yield stack
    finally:
        if own_endpoint:
            endpoint.down()
            if saved is None:
                os.environ.pop(endpoint.STATE_DIR_ENV, None)
            else:
                os.environ[endpoint.STATE_DIR_ENV] = saved


@pytest.fixture(scope="session")
def iam_enforced(local_stack: Deployment) -> bool:
    """Whether the endpoint refuses a call outside a role's policy (MiniStack with AUTH=true
    does; LocalStack's community edition does not)."""
    from botocore.exceptions import ClientError

    from tests.harness.roles import as_role

    try:
        as_role(local_stack, "ProcessRole")("dynamodb").scan(TableName=local_stack.table)
    except ClientError:
        return True
    return False


# Capabilities a run knows its endpoint has (comma-separated: iam, local-functions, ministack).
# Where one is known, a probe that says "no" fails the test instead of skipping it: a broken
# probe must not quietly turn the least-privilege or fault tests into skips.
EXPECT_ENV = "IMGPIPE_EXPECT"
OWN_MINISTACK = frozenset({"iam", "local-functions", "ministack"})  # started here, AUTH=true


def require(stack: Deployment, capability: str, present: bool, reason: str) -> None:
    """Go on if ``present``; else skip with ``reason`` where the endpoint may lack
    ``capability`` (LocalStack), or fail where it is known to have it."""
    if present:
        return
    expected = {c.strip() for c in os.environ.get(EXPECT_ENV, "").split(",") if c.strip()}
    if stack.kind == "ministack":
        expected |= OWN_MINISTACK
    if capability in expected:
        pytest.fail(f"{reason}, yet this endpoint has {capability}: its probe is wrong")
    pytest.skip(reason)


def require_local_functions(stack: Deployment) -> None:
    require(
        stack,
        "local-functions",
        functions_run_here(stack),
        "the endpoint runs its functions in containers (LocalStack), out of reach of injected "
        "faults and of the crash",
    )


@pytest.fixture(autouse=True)
def _require_iam(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("needs_iam"):
        stack = request.getfixturevalue("local_stack")
        require(
            stack,
            "iam",
            request.getfixturevalue("iam_enforced"),
            "the endpoint does not enforce IAM (e.g. LocalStack community): a call outside a "
            "role's policy is not refused there",
        )


@pytest.fixture(scope="session")
def catalog(local_stack: Deployment) -> Catalog:
    return Catalog(local_stack.client("dynamodb"), local_stack.table)


@pytest.fixture(scope="session")
def s3(local_stack: Deployment) -> Any:
    return local_stack.client("s3")


@pytest.fixture(scope="session")
def sender(local_stack: Deployment) -> Any:
    """An SQS client that may put messages into the images queue: its policy refuses every
    sender but S3 (or the fan-out topic) and the redrive function's role, which this acts as."""
    from tests.harness.roles import as_role

    return as_role(local_stack, "RedriveRole")("sqs")


@pytest.fixture
def prefix(request: pytest.FixtureRequest) -> str:
    """A key prefix of this test's own, so tests never see each other's uploads."""
    return f"t/{request.node.name}-{time.monotonic_ns()}/"


@pytest.fixture(scope="module")
def running(local_stack: Deployment) -> Iterator[Processing]:
    """Uploads get processed for the whole module."""
    with processing(local_stack) as started:
        yield started


def wait_for(
    catalog: Catalog, stack: Deployment, keys: list[str], timeout: float = 60.0
) -> dict[str, ImageRecord]:
    """The final record of each key, polled; fails naming the keys still without one."""

    def final() -> dict[str, ImageRecord]:
        found = {k: catalog.get(stack.uploads_bucket, k) for k in keys}
        return {k: r for k, r in found.items() if r is not None and r.status in FINAL}

    try:
        return poll(
            final, lambda got: len(got) == len(keys), timeout, what=f"final status of {keys}"
        )
    except AssertionError as error:
        # Where the missing ones are: never queued, waiting, in flight, or in the DLQ.
        raise AssertionError(f"{error}; {_queues_now(stack)}") from None


def _queues_now(stack: Deployment) -> str:
    sqs = stack.client("sqs")
    shown = []
    for name, url in (("queue", stack.queue_url), ("dlq", stack.dlq_url)):
        attrs = sqs.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        shown.append(
            f"{name}: {attrs.get('ApproximateNumberOfMessages')} waiting, "
            f"{attrs.get('ApproximateNumberOfMessagesNotVisible')} in flight"
        )
    return "; ".join(shown)


def dead_letter(stack: Deployment, sender: Any, body: str) -> None:
    """Put ``body`` into the DLQ the one way anything gets there: sent into the images queue
    (as ``sender``) and received more times than the queue's maxReceiveCount without being
    deleted, so that SQS moves it (the DLQ's policy refuses every principal's send). Processing
    must be off: what earlier tests left in the queue is processed first, so that only this
    message is received over and over."""
    from tests.harness.chaos import wait_drained

    with processing(stack):
        assert wait_drained(stack, stack.queue_url, 120), "the images queue did not drain"
    sqs = stack.client("sqs")
    sent = sender.send_message(QueueUrl=stack.queue_url, MessageBody=body)["MessageId"]

    def ours_still_in_the_queue() -> bool:
        got = sqs.receive_message(
            QueueUrl=stack.queue_url, MaxNumberOfMessages=10, VisibilityTimeout=0
        ).get("Messages", [])
        return any(m["MessageId"] == sent for m in got)

    # each receive counts; the one past maxReceiveCount finds it moved
    poll(ours_still_in_the_queue, lambda present: not present, 30, interval=0.05, what="the DLQ")


def dlq_keys(stack: Deployment) -> list[str]:
    """Keys named by the messages now in the DLQ (listed without moving them)."""
    from imgpipe.queues import SqsQueues
    from imgpipe.redrive import Queues, peek

    listed = peek(SqsQueues(stack.client("sqs")), Queues(stack.queue_url, stack.dlq_url), 100)
    return [k.split("/", 1)[1] for m in listed for k in m.keys]


def corpus_bytes(corpus: Path, name: str) -> bytes:
    return (corpus / name).read_bytes()
