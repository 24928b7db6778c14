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


def role_allowed(stack: Deployment, name: str, *statements: dict[str, Any]) -> dict[str, str]:
    """Credentials of a role (made if need be) whose only policy is ``statements``: someone
    in the account with just those rights."""
    import json

    from botocore.exceptions import ClientError

    iam = stack.client("iam")
    trust = {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}
    try:
        iam.create_role(
            RoleName=name[:64],
            AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [trust]}),
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "EntityAlreadyExists":
            raise
    iam.put_role_policy(
        RoleName=name[:64],
        PolicyName="only",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": list(statements)}),
    )
    arn = iam.get_role(RoleName=name[:64])["Role"]["Arn"]
    creds: dict[str, str] = stack.client("sts").assume_role(
        RoleArn=arn, RoleSessionName="only-these-rights"
    )["Credentials"]
    return creds
