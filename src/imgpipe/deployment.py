"""Where a stage lives: bucket, table and queue names, read from the deployed stack.

Locally that is the stack on the embedded endpoint (or LocalStack); on AWS, the CloudFormation
outputs of ``imgpipe-<stage>``. The CLI works against either the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

SERVICE = "imgpipe"


class DeploymentError(RuntimeError):
    """Says what to do, in one line."""


@dataclass
class Deployment:
    stage: str
    uploads_bucket: str
    derived_bucket: str
    table: str
    queue_url: str
    dlq_url: str
    endpoint_url: str | None = None  # None: real AWS
    local_stack: Any = None  # imgpipe.local.stack.Stack when local
    _clients: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def is_local(self) -> bool:
        return self.local_stack is not None

    def client(self, service: str) -> Any:
        if self.local_stack is not None:
            return self.local_stack.client(service)
        if service not in self._clients:
            self._clients[service] = boto3.client(service, endpoint_url=self.endpoint_url)  # type: ignore[call-overload]
        return self._clients[service]

    @property
    def redrive_function(self) -> str:
        return f"{SERVICE}-{self.stage}-redrive"


def resolve(stage: str, endpoint_url: str | None = None) -> Deployment:
    if stage == "local":
        return _local(endpoint_url)
    try:
        cfn = boto3.client("cloudformation", endpoint_url=endpoint_url)
        stacks = cfn.describe_stacks(StackName=f"{SERVICE}-{stage}")["Stacks"]
    except NoRegionError:
        raise DeploymentError(
            "no AWS region: set AWS_REGION (or AWS_DEFAULT_REGION, or a profile's region),"
            " or use --stage local"
        ) from None
    except NoCredentialsError:
        raise DeploymentError(
            "no AWS credentials: set AWS_PROFILE (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY),"
            " or use --stage local"
        ) from None
    except ClientError as exc:
        raise DeploymentError(
            f"stack {SERVICE}-{stage} not found ({exc.response['Error']['Code']}): "
            f"deploy it with `make deploy STAGE={stage}`"
        ) from None
    except BotoCoreError as exc:
        raise DeploymentError(f"cannot reach AWS: {exc}") from None
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
    try:
        return Deployment(
            stage=stage,
            uploads_bucket=outputs["UploadsBucketName"],
            derived_bucket=outputs["DerivedBucketName"],
            table=outputs["ImagesTableName"],
            queue_url=outputs["ImagesQueueUrl"],
            dlq_url=outputs["DeadLetterQueueUrl"],
            endpoint_url=endpoint_url,
        )
    except KeyError as exc:
        raise DeploymentError(f"stack {SERVICE}-{stage} lacks output {exc}: redeploy it") from None


def _local(endpoint_url: str | None) -> Deployment:
    from .local import endpoint as local_endpoint
    from .local.stack import StackNotDeployed, discover

    ep = (
        local_endpoint.Endpoint(endpoint_url.rstrip("/"), "localstack")
        if endpoint_url
        else local_endpoint.current()
    )
    if ep is None:
        raise DeploymentError("no local stack is running: run `make deploy STAGE=local` first")
    try:
        stack = discover(ep, "local")
    except StackNotDeployed as exc:
        raise DeploymentError(str(exc)) from None
    return Deployment(
        stage="local",
        uploads_bucket=stack.uploads_bucket,
        derived_bucket=stack.derived_bucket,
        table=stack.table,
        queue_url=stack.queue_url,
        dlq_url=stack.dlq_url,
        endpoint_url=ep.url,
        local_stack=stack,
    )
