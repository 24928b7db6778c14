"""Act as one of the stack's roles, as its function does (least-privilege tests)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import boto3

from imgpipe.deployment import Deployment


def as_role(stack: Deployment, logical_id: str) -> Callable[[str], Any]:
    """Clients that act with ``logical_id``'s role, as its function does."""
    cfn, sts = stack.client("cloudformation"), stack.client("sts")
    role = cfn.describe_stack_resource(StackName=stack.name, LogicalResourceId=logical_id)[
        "StackResourceDetail"
    ]["PhysicalResourceId"]
    arn = stack.client("iam").get_role(RoleName=role)["Role"]["Arn"]
    creds = sts.assume_role(RoleArn=arn, RoleSessionName="iam-test")["Credentials"]
    session: Any = boto3.Session(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
        region_name=stack.access.region,
    )
    return lambda service: session.client(service, endpoint_url=stack.access.endpoint_url)
