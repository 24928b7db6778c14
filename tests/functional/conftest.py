"""Functional fixtures: a real endpoint (embedded moto server, or LocalStack when
LOCALSTACK_ENDPOINT is set), serverless.yml deployed to it with the real Serverless CLI, and the
local runner playing Lambda's SQS event source mapping."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from imgpipe.catalog import Catalog
from imgpipe.local import endpoint
from imgpipe.local.demo import wait_final
from imgpipe.local.deploy import deploy
from imgpipe.local.runner import Runner
from imgpipe.local.stack import Stack, discover

pytestmark = pytest.mark.functional


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    own_endpoint = not os.environ.get("LOCALSTACK_ENDPOINT")
    saved = os.environ.get(endpoint.STATE_DIR_ENV)
    if own_endpoint:
        # Our own endpoint, apart from any `make demo` one the developer keeps running.
        os.environ[endpoint.STATE_DIR_ENV] = str(tmp_path_factory.mktemp("local-state"))
    ep = endpoint.up()
    try:
        deploy(ep, quiet=True)
        yield discover(ep)
    finally:
        if own_endpoint:
            endpoint.down()
            if saved is None:
                os.environ.pop(endpoint.STATE_DIR_ENV, None)
            else:
                os.environ[endpoint.STATE_DIR_ENV] = saved


@pytest.fixture(scope="session")
def catalog(local_stack: Stack) -> Catalog:
    return Catalog(local_stack.client("dynamodb"), local_stack.table)


@pytest.fixture(scope="session")
def s3(local_stack: Stack) -> Any:
    return local_stack.client("s3")


@pytest.fixture
def prefix(request: pytest.FixtureRequest) -> str:
    """A key prefix of this test's own, so tests never see each other's uploads."""
    return f"t/{request.node.name}-{time.monotonic_ns()}/"


@pytest.fixture(scope="module")
def runner(local_stack: Stack) -> Iterator[Runner]:
    with Runner(local_stack) as running:
        yield running


def wait_for(
    catalog: Catalog, stack: Stack, keys: list[str], timeout: float = 60.0
) -> dict[str, dict[str, Any]]:
    records = wait_final(catalog, stack.uploads_bucket, keys, timeout)
    missing = sorted(set(keys) - set(records))
    assert not missing, f"no final status within {timeout:.0f}s for {missing}"
    return records


def dlq_keys(stack: Stack) -> list[str]:
    """Keys named by the messages now in the DLQ (listed without moving them)."""
    from imgpipe.redrive import Queues, peek

    listed = peek(stack.client("sqs"), Queues(stack.queue_url, stack.dlq_url), 100)
    return [k.split("/", 1)[1] for m in listed for k in m["keys"]]


def corpus_bytes(corpus: Path, name: str) -> bytes:
    return (corpus / name).read_bytes()
