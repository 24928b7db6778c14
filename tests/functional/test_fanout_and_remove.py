"""A second stack on its own MiniStack, deployed with `uploadsFanOut: true`: uploads go
S3 -> SNS -> the images queue (and to any other subscriber), are processed as usual, and then
`imgpipe remove` empties its buckets (versions, delete markers, multipart debris) and deletes it.

Its own MiniStack, so that removing it cannot disturb the session's stack, even where the session
runs on LocalStack (LOCALSTACK_ENDPOINT) or a long-lived endpoint: MiniStack delivers S3
notifications to SNS and SNS to SQS, and checks the topic and queue policies that admit each
hop, as AWS does."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote_plus

import pytest
from botocore.exceptions import ClientError

from imgpipe.catalog import Catalog
from imgpipe.deployment import Deployment
from imgpipe.local import endpoint
from imgpipe.local.deploy import deploy
from imgpipe.local.stack import discover
from imgpipe.outcomes import Status
from tests.functional.conftest import require, wait_for
from tests.harness.chaos import subscribe_inbox
from tests.harness.cli import IMGPIPE, imgpipe
from tests.harness.wait import poll

# Its own endpoint: the same test wherever LOCALSTACK_ENDPOINT points (the LocalStack run skips it).
pytestmark = [pytest.mark.functional, pytest.mark.own_endpoint]


@pytest.fixture(scope="module")
def fanout(
    local_stack: Deployment, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    require(
        local_stack,
        "ministack",
        endpoint.ministack_executable() is not None,
        "MiniStack is not installed here (make install): no endpoint of its own to remove",
    )
    saved = os.environ.get(endpoint.STATE_DIR_ENV)
    localstack = os.environ.pop("LOCALSTACK_ENDPOINT", None)  # the CLI below must not see it
    os.environ[endpoint.STATE_DIR_ENV] = str(tmp_path_factory.mktemp("fanout-state"))
    try:
        ep = endpoint.up()
        try:
            deploy(
                ep,
                quiet=True,
                params={"uploadsFanOut": "true", "processTimeout": "12", "visibilityTimeout": "72"},
            )
            yield discover(ep)
        finally:
            endpoint.down()
    finally:
        if saved is None:
            os.environ.pop(endpoint.STATE_DIR_ENV, None)
        else:
            os.environ[endpoint.STATE_DIR_ENV] = saved
        if localstack is not None:
            os.environ["LOCALSTACK_ENDPOINT"] = localstack


def _topic_arn(stack: Deployment) -> str:
    outputs = stack.client("cloudformation").describe_stacks(StackName=stack.name)["Stacks"][0]
    found = {o["OutputKey"]: o["OutputValue"] for o in outputs["Outputs"]}
    return str(found["UploadsTopicArn"])


def _keys_in(stack: Deployment, url: str, want: int) -> list[str]:
    sqs, keys = stack.client("sqs"), list[str]()

    def receive() -> list[str]:
        for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get(
            "Messages", []
        ):
            body = json.loads(message["Body"])
            keys.extend(r["s3"]["object"]["key"] for r in body.get("Records", []))
        return keys

    return poll(receive, lambda got: len(got) >= want, 30, what="the second subscriber's events")


def test_fan_out_feeds_the_pipeline_and_another_subscriber_then_remove_empties_and_deletes(
    fanout: Deployment, corpus: Path
) -> None:
    stack = fanout
    topic = _topic_arn(stack)
    # another team's queue on the same uploads: its policy admits exactly the topic
    other = subscribe_inbox(stack, "another-team", topic=topic, raw=True)
    s3 = stack.client("s3")
    # the bucket notifies the topic, not the queue
    notifications = s3.get_bucket_notification_configuration(Bucket=stack.uploads_bucket)
    assert [c["TopicArn"] for c in notifications["TopicConfigurations"]] == [topic, topic]
    assert not notifications.get("QueueConfigurations")
    s3.put_object(
        Bucket=stack.uploads_bucket,
        Key="fan/photo one.jpg",
        Body=(corpus / "Landscape_3.jpg").read_bytes(),
    )
    s3.put_object(Bucket=stack.uploads_bucket, Key="fan/notes.jpg", Body=b"not a photo")
    records = wait_for(
        Catalog(stack.client("dynamodb"), stack.table),
        stack,
        ["fan/photo one.jpg", "fan/notes.jpg"],
    )
    assert records["fan/photo one.jpg"].status is Status.DONE
    assert records["fan/notes.jpg"].status is Status.REJECTED
    # the same S3 events, raw (keys URL-encoded, as S3 sends them)
    events = sorted(unquote_plus(k) for k in _keys_in(stack, other, 2))
    assert events == ["fan/notes.jpg", "fan/photo one.jpg"]

    # debris CloudFormation would refuse to delete a bucket for
    s3.put_bucket_versioning(
        Bucket=stack.derived_bucket, VersioningConfiguration={"Status": "Enabled"}
    )
    for body in (b"one", b"two"):
        s3.put_object(Bucket=stack.derived_bucket, Key="debris/versioned", Body=body)
    s3.delete_object(Bucket=stack.derived_bucket, Key="debris/versioned")  # a delete marker
    s3.create_multipart_upload(Bucket=stack.uploads_bucket, Key="debris/half-uploaded.jpg")

    env = {**os.environ, "COLUMNS": "200"}
    refused = subprocess.run(
        [IMGPIPE, "remove", "--stage", "local"],
        input="prod\n",  # not the stage's name
        capture_output=True,
        text=True,
        env=env,
    )
    assert refused.returncode == 1 and "not removed" in refused.stderr
    assert "1 incomplete multipart uploads" in refused.stdout
    assert s3.head_bucket(Bucket=stack.derived_bucket)  # nothing deleted

    removed = imgpipe("remove", "--stage", "local", "--yes")
    out = removed.stdout
    assert "1 delete markers" in out and "1 incomplete multipart uploads" in out
    assert f"removed stack {stack.name}" in out
    for bucket in (stack.uploads_bucket, stack.derived_bucket):
        with pytest.raises(ClientError):
            s3.head_bucket(Bucket=bucket)
    try:
        stacks = stack.client("cloudformation").describe_stacks(StackName=stack.name)["Stacks"]
        state = stacks[0]["StackStatus"]  # AWS keeps a DELETE_COMPLETE tombstone a while
    except ClientError:
        state = "gone"
    assert state in {"gone", "DELETE_COMPLETE"}
