"""`imgpipe remove`: empty a stage's buckets, then delete its stack.

CloudFormation refuses to delete a bucket that holds anything — an object, an old version of
one, a delete marker — and leaves incomplete multipart uploads' parts billed in it. Users of
such stacks otherwise empty the buckets by hand in the console; this does it, for the stack's
own buckets only, says what it found first, asks for the stage name (unless --yes), and says
what it deleted.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import click
from botocore.exceptions import ClientError, WaiterError

from ..deployment import Deployment
from . import deployment, printable

BATCH = 1000  # DeleteObjects takes at most this many keys per call


@dataclass
class Contents:
    versions: int = 0  # objects and their older versions
    markers: int = 0  # delete markers
    uploads: int = 0  # incomplete multipart uploads

    def __str__(self) -> str:
        return (
            f"{self.versions} object versions, {self.markers} delete markers,"
            f" {self.uploads} incomplete multipart uploads"
        )


def _entries(s3: Any, bucket: str) -> Iterator[tuple[str, dict[str, str]]]:
    """("version" | "marker", {Key, VersionId}) for everything a bucket holds; an unversioned
    bucket lists its objects here too (version "null")."""
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        for kind, field in (("version", "Versions"), ("marker", "DeleteMarkers")):
            for item in page.get(field, []):
                yield kind, {"Key": item["Key"], "VersionId": item["VersionId"]}


def _uploads(s3: Any, bucket: str) -> Iterator[dict[str, str]]:
    for page in s3.get_paginator("list_multipart_uploads").paginate(Bucket=bucket):
        for upload in page.get("Uploads", []):
            yield {"Key": upload["Key"], "UploadId": upload["UploadId"]}


def survey(s3: Any, bucket: str) -> Contents:
    found = Contents(uploads=sum(1 for _ in _uploads(s3, bucket)))
    for kind, _ in _entries(s3, bucket):
        if kind == "version":
            found.versions += 1
        else:
            found.markers += 1
    return found


def empty(s3: Any, bucket: str) -> Contents:
    """Abort the multipart uploads, delete every version and marker; what was deleted."""
    done = Contents()
    for upload in _uploads(s3, bucket):
        s3.abort_multipart_upload(Bucket=bucket, **upload)
        done.uploads += 1
    batch: list[tuple[str, dict[str, str]]] = []

    def flush() -> None:
        answer = s3.delete_objects(
            Bucket=bucket, Delete={"Objects": [o for _, o in batch], "Quiet": True}
        )
        if answer.get("Errors"):
            first = answer["Errors"][0]
            raise click.ClickException(
                printable(
                    f"{bucket}: {len(answer['Errors'])} objects could not be deleted"
                    f" ({first.get('Code')}: {first.get('Key')}); the stack was not deleted"
                )
            )
        for kind, _ in batch:
            if kind == "version":
                done.versions += 1
            else:
                done.markers += 1
        batch.clear()

    # Listing while deleting is safe: each page is fetched with its own marker.
    for entry in _entries(s3, bucket):
        batch.append(entry)
        if len(batch) == BATCH:
            flush()
    if batch:
        flush()
    return done


# What each of the stack's own buckets is, by its logical id (anything else: the id itself).
_ROLES = {
    "UploadsBucket": "uploads",
    "DerivedBucket": "derived",
    "ServerlessDeploymentBucket": "deployment",
}


def _buckets(dep: Deployment) -> dict[str, str]:
    """What to empty: exactly the buckets that are resources of the stack itself. A
    deployment bucket named in ``provider.deploymentBucket`` is not one (other services may
    keep their artifacts in it), and neither is any bucket an output merely names."""
    cfn = dep.client("cloudformation")
    found: dict[str, str] = {}
    for page in cfn.get_paginator("list_stack_resources").paginate(StackName=dep.name):
        for res in page.get("StackResourceSummaries", []):
            if res["ResourceType"] == "AWS::S3::Bucket" and res.get("PhysicalResourceId"):
                logical = res["LogicalResourceId"]
                found[_ROLES.get(logical, logical)] = res["PhysicalResourceId"]
    return found


def _confirmed(dep: Deployment) -> bool:
    typed = click.prompt(
        f"Delete all of it and the stack {dep.name}? This cannot be undone. Type the stage"
        " name to go on",
        default="",
        show_default=False,
    )
    return bool(typed.strip() == dep.stage)


@click.command()
@click.option("--stage", required=True, help="the stage to remove (no default: say which)")
@click.option("--endpoint", help="an AWS-compatible endpoint URL instead of AWS")
@click.option("--yes", is_flag=True, help="do not ask for the stage name")
def remove(stage: str, endpoint: str | None, yes: bool) -> None:
    """Empty the stage's buckets (objects, versions, delete markers, incomplete multipart
    uploads) and delete its CloudFormation stack: everything it stored is gone."""
    dep = deployment(stage, endpoint)
    s3 = dep.client("s3")
    buckets = _buckets(dep)
    click.echo(printable(f"stack {dep.name} ({'local' if dep.is_local else 'AWS'}):"))
    for role, bucket in buckets.items():
        click.echo(printable(f"  {role} bucket {bucket}: {survey(s3, bucket)}"))
    if not yes and not _confirmed(dep):
        raise click.ClickException(f"not removed: that is not {dep.stage!r}")
    stopped = _stop_intake(dep)
    if stopped:
        click.echo(f"stopped {stopped} queue trigger(s): nothing new is processed meanwhile")
    for role, bucket in buckets.items():
        click.echo(printable(f"emptied {role} bucket {bucket}: {empty(s3, bucket)}"))
    cfn = dep.client("cloudformation")
    for attempt in (1, 2):
        cfn.delete_stack(StackName=dep.name)
        click.echo(printable(f"deleting stack {dep.name}..."), err=True)
        try:
            cfn.get_waiter("stack_delete_complete").wait(
                StackName=dep.name, WaiterConfig={"Delay": 2, "MaxAttempts": 450}
            )
            break
        except WaiterError:
            if attempt == 2:
                raise click.ClickException(
                    f"stack {dep.name} could not be deleted: see its events in CloudFormation"
                ) from None
            # A batch still in flight when the buckets were emptied wrote after it: again.
            for role, bucket in buckets.items():
                if _exists(s3, bucket):
                    click.echo(
                        printable(f"emptied {role} bucket {bucket} again: {empty(s3, bucket)}")
                    )
    click.echo(printable(f"removed stack {dep.name}"))


def _stop_intake(dep: Deployment) -> int:
    """Disable the process function's queue triggers, so that no batch writes thumbnails into
    a bucket being emptied (one already running may: the delete is retried once for that)."""
    lam = dep.client("lambda")
    stopped = 0
    try:
        mappings = lam.list_event_source_mappings(FunctionName=f"{dep.name}-process")
    except ClientError as exc:  # no such function (half-deployed), or not allowed to look
        click.echo(f"queue triggers not stopped ({exc.response['Error']['Code']})", err=True)
        return 0
    for mapping in mappings.get("EventSourceMappings", []):
        if mapping.get("State") in {"Disabled", "Disabling"}:
            continue
        try:
            lam.update_event_source_mapping(UUID=mapping["UUID"], Enabled=False)
        except ClientError as exc:  # not allowed: go on; the delete is retried once anyway
            click.echo(
                f"could not stop a queue trigger ({exc.response['Error']['Code']})", err=True
            )
            continue
        stopped += 1
    return stopped


def _exists(s3: Any, bucket: str) -> bool:
    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError:
        return False
    return True
