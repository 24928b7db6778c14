"""Where a stage lives: names of its buckets, table, queues and topic, and clients to reach them.

One type for every kind of stage. On AWS it is read from the CloudFormation outputs of
``imgpipe-<stage>`` (``from_cloudformation``); the local tools (``imgpipe.local.stack``) build
the same type for the stack on their endpoint, adding the process function's configuration
(the test harness changes it). Nothing here imports the local tools: they depend on the core,
not the other way round.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

SERVICE = "imgpipe"


class DeploymentError(RuntimeError):
    """Says what to do, in one line."""


@dataclass(frozen=True, slots=True)
class FunctionSpec:
    name: str
    handler: str
    timeout: int
    memory: int
    environment: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Access:
    """How to reach a stage: an endpoint (None: AWS itself) and, locally, fixed credentials."""

    endpoint_url: str | None = None
    region: str | None = None
    key_id: str | None = None
    secret: str | None = None


@lru_cache(maxsize=64)
def make_client(access: Access, service: str) -> Any:
    """One client per place and service: making one costs tens of milliseconds, and polls and
    reconciliations ask for them in loops (clients are thread-safe)."""
    factory: Callable[..., Any] = boto3.client  # typed per service by the callers' stubs
    return factory(
        service,
        # SigV4 everywhere: presigned thumbnail URLs must work in every region.
        config=Config(signature_version="s3v4") if service == "s3" else None,
        endpoint_url=access.endpoint_url,
        region_name=access.region,
        aws_access_key_id=access.key_id,
        aws_secret_access_key=access.secret,
    )


@dataclass(frozen=True, slots=True)
class Deployment:
    stage: str
    uploads_bucket: str
    derived_bucket: str
    table: str
    topic_arn: str
    queue_url: str
    dlq_url: str
    access: Access = Access()
    kind: str = "aws"  # "aws", or the local endpoint's kind (local.endpoint.Kind)
    process: FunctionSpec | None = None  # read back locally
    api_url: str | None = None  # the HTTP API's base URL, where the endpoint serves one

    @property
    def name(self) -> str:
        return stack_name(self.stage)

    @property
    def is_local(self) -> bool:
        return self.kind != "aws"

    @property
    def redrive_function(self) -> str:
        return f"{self.name}-redrive"

    @property
    def backfill_function(self) -> str:
        return f"{self.name}-backfill"

    @property
    def render_secret_name(self) -> str:
        """The Secrets Manager name of the key of render URLs (resources/api.yml)."""
        return f"{self.name}-render"

    def client(self, service: str) -> Any:
        return make_client(self.access, service)


def stack_name(stage: str) -> str:
    return f"{SERVICE}-{stage}"


def from_cloudformation(stage: str, endpoint_url: str | None = None) -> Deployment:
    """The stage ``stage`` deployed on AWS (or ``endpoint_url``), from its stack outputs."""
    access = Access(endpoint_url=endpoint_url)
    try:
        stacks = make_client(access, "cloudformation").describe_stacks(StackName=stack_name(stage))[
            "Stacks"
        ]
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
            f"stack {stack_name(stage)} not found ({exc.response['Error']['Code']}): "
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
            topic_arn=outputs["EventsTopicArn"],
            queue_url=outputs["ImagesQueueUrl"],
            dlq_url=outputs["DeadLetterQueueUrl"],
            access=access,
            api_url=outputs.get("HttpApiUrl"),
        )
    except KeyError as exc:
        raise DeploymentError(
            f"stack {stack_name(stage)} lacks output {exc}: redeploy it"
        ) from None
