"""Least privilege, proven by running it: on MiniStack (AUTH=true) every function runs with its
own role's credentials, so the rest of the suite passes only if each role allows what its
function does; here, a call outside a role is refused. Where the endpoint enforces no IAM
(LocalStack's community edition), these are skipped with that reason."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from imgpipe.deployment import Deployment
from imgpipe.storage import ObjectStore
from tests.conftest import jpeg_bytes
from tests.harness.roles import as_role, role_allowed
from tests.harness.samples import Events

pytestmark = [pytest.mark.functional, pytest.mark.needs_iam]


def _denied(call: Callable[[], object]) -> str:
    with pytest.raises(ClientError) as info:
        call()
    code = str(info.value.response["Error"]["Code"])
    assert "AccessDenied" in code or code == "403", info.value.response
    return code


def test_each_role_may_do_its_work_and_nothing_else(local_stack: Deployment, s3: Any) -> None:
    key = "iam-test/photo.jpg"
    s3.put_object(Bucket=local_stack.uploads_bucket, Key=key, Body=jpeg_bytes())
    process = as_role(local_stack, "ProcessRole")
    # its own work: read an upload, write a derivative
    process("s3").get_object(Bucket=local_stack.uploads_bucket, Key=key)
    thumb = "thumbnails/iam-test/x"
    process("s3").put_object(Bucket=local_stack.derived_bucket, Key=thumb, Body=b"x")
    # outside it: write into the uploads bucket or the watermarks, read derivatives, scan the
    # table, redrive
    _denied(lambda: process("s3").put_object(Bucket=local_stack.uploads_bucket, Key="x", Body=b""))
    _denied(
        lambda: process("s3").put_object(
            Bucket=local_stack.derived_bucket, Key="watermarks/logo.png", Body=b"x"
        )
    )
    _denied(lambda: process("s3").get_object(Bucket=local_stack.derived_bucket, Key=thumb))
    _denied(lambda: process("dynamodb").scan(TableName=local_stack.table))
    _denied(lambda: process("sqs").send_message(QueueUrl=local_stack.queue_url, MessageBody="x"))
    status = as_role(local_stack, "StatusRole")
    status("dynamodb").get_item(
        TableName=local_stack.table, Key={"bucket": {"S": "b"}, "key": {"S": "k"}}
    )
    status("s3").get_object(Bucket=local_stack.derived_bucket, Key=thumb)  # it presigns these
    _denied(lambda: status("s3").get_object(Bucket=local_stack.uploads_bucket, Key=key))
    s3.put_object(Bucket=local_stack.derived_bucket, Key="results/iam-test/x.json", Body=b"{}")
    _denied(
        lambda: status("s3").get_object(
            Bucket=local_stack.derived_bucket, Key="results/iam-test/x.json"
        )
    )
    _denied(
        lambda: status("dynamodb").put_item(
            TableName=local_stack.table, Item={"bucket": {"S": "b"}, "key": {"S": "k"}}
        )
    )
    redrive = as_role(local_stack, "RedriveRole")
    _denied(lambda: redrive("s3").get_object(Bucket=local_stack.uploads_bucket, Key=key))
    _denied(lambda: redrive("sqs").purge_queue(QueueUrl=local_stack.dlq_url))


def test_the_reconcile_role_can_find_and_fix_and_nothing_more(
    local_stack: Deployment, s3: Any
) -> None:
    """The reconciler, run with the reconcile function's own role: listing, re-queueing
    (invoking the backfill function), deleting an orphan and marking a record all pass;
    deleting or writing an upload, invoking another function, scanning, sending do not."""
    from datetime import timedelta

    from imgpipe import derived
    from imgpipe.backfill import requeuer
    from imgpipe.catalog import Catalog
    from imgpipe.outcomes import Status
    from imgpipe.reconcile import Reconciler
    from imgpipe.record import ImageRecord

    prefix = "iam-reconcile/"
    s3.put_object(Bucket=local_stack.uploads_bucket, Key=prefix + "lost.jpg", Body=jpeg_bytes())
    orphan = derived.thumbnail_key(prefix + "lost.jpg", "s:01", "small", "jpg")
    s3.put_object(Bucket=local_stack.derived_bucket, Key=orphan, Body=b"x")
    Catalog(local_stack.client("dynamodb"), local_stack.table).put(
        ImageRecord(local_stack.uploads_bucket, prefix + "ghost.jpg", "s:01", Status.DONE)
    )
    role = as_role(local_stack, "ReconcileRole")
    reconciler = Reconciler(
        ObjectStore(role("s3")),
        Catalog(role("dynamodb"), local_stack.table),
        local_stack.uploads_bucket,
        local_stack.derived_bucket,
        min_age=timedelta(0),
        requeue=requeuer(role("lambda"), local_stack.backfill_function),
    )
    report = reconciler.run(prefix, fix=True)
    assert {(f.kind, f.fixed) for f in report.findings} == {
        ("no_source", "marked DELETED"),
        ("unprocessed", "re-queued (a backfill message)"),
        ("orphan", "deleted"),
    }
    _denied(
        lambda: role("s3").delete_object(Bucket=local_stack.uploads_bucket, Key=prefix + "lost.jpg")
    )
    _denied(  # it re-queues through the backfill function, never by writing an upload
        lambda: role("s3").put_object(
            Bucket=local_stack.uploads_bucket, Key=prefix + "lost.jpg", Body=b"x"
        )
    )
    _denied(lambda: role("lambda").invoke(FunctionName=f"{local_stack.name}-status"))
    _denied(lambda: role("dynamodb").scan(TableName=local_stack.table))
    _denied(lambda: role("sqs").send_message(QueueUrl=local_stack.queue_url, MessageBody="x"))


def test_only_s3_and_the_redrive_role_may_send_to_the_images_queue(
    local_stack: Deployment, sender: Any
) -> None:
    """A message in the images queue is taken for an S3 event: the queue's policy refuses
    every other sender, even one whose own policy allows sqs:* everywhere, and the account's
    administrator (an explicit deny in a resource policy binds them too)."""
    import json

    import boto3

    everything = {"Effect": "Allow", "Action": "sqs:*", "Resource": "*"}
    creds = role_allowed(local_stack, f"{local_stack.name}-broad-sender", everything)
    broad = boto3.client(
        "sqs",
        endpoint_url=local_stack.access.endpoint_url,
        region_name=local_stack.access.region,
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )
    body = json.dumps({"Records": []})  # acknowledged as empty wherever it lands
    admin = local_stack.client("sqs")
    for client in (broad, admin):

        def send(c: Any = client) -> object:
            return c.send_message(QueueUrl=local_stack.queue_url, MessageBody=body)

        _denied(send)
    sender.send_message(QueueUrl=local_stack.queue_url, MessageBody=body)


def test_no_one_may_send_to_the_dlq_yet_failures_still_land_there(
    local_stack: Deployment, sender: Any, events: Events
) -> None:
    """The DLQ goes back into the images queue verbatim at the next redrive: a message planted
    there (a forged S3 event) would skip the images queue's sender check. Its policy refuses
    every principal's send, the administrator's and the redrive role's included; a message
    that exhausts its receives still reaches it (SQS's own move)."""
    import json

    from tests.functional.conftest import dead_letter
    from tests.harness.chaos import queue_depth

    # a creation claiming the largest sequencer, which would outrank every real event
    forged = events.s3_body(
        "iam-test/pinned.jpg", etag="e", bucket=local_stack.uploads_bucket, sequencer="F" * 32
    )
    for client in (local_stack.client("sqs"), sender):

        def plant(c: Any = client) -> object:
            return c.send_message(QueueUrl=local_stack.dlq_url, MessageBody=forged)

        _denied(plant)
    assert queue_depth(local_stack, local_stack.dlq_url) == 0
    failing = json.dumps({"Records": [], "note": "exhausts its receives"})
    dead_letter(local_stack, sender, failing)
    sqs = local_stack.client("sqs")
    [landed] = sqs.receive_message(QueueUrl=local_stack.dlq_url, WaitTimeSeconds=5)["Messages"]
    assert landed["Body"] == failing
    # leave it empty for the rest of the suite (redrive is tested with a message put there
    # the same way: test_user_side.py)
    sqs.delete_message(QueueUrl=local_stack.dlq_url, ReceiptHandle=landed["ReceiptHandle"])
    assert queue_depth(local_stack, local_stack.dlq_url) == 0
