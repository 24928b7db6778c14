"""Apply what moto's CloudFormation silently ignores, read from the packaged template itself.

moto creates buckets, queues, tables and topics from the template but drops bucket notifications,
queue policies, bucket policies and public access blocks. Re-applying them through the APIs, from
the very template Serverless generated, keeps one source of truth: nothing here restates what the
notification or the policies say. On LocalStack these calls are harmless repeats.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_cloudformation import CloudFormationClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient

TEMPLATE = Path(".serverless/cloudformation-template-update-stack.json")


class UnresolvableError(ValueError):
    """The template uses an intrinsic function this resolver does not know."""


@dataclass
class Resolver:
    """Resolves Ref, Fn::GetAtt (Arn), Fn::Sub and Fn::Join against a deployed stack."""

    resources: Mapping[str, Mapping[str, Any]]  # the template's Resources
    physical: Mapping[str, str]  # logical id -> physical id, from DescribeStackResources
    pseudo: Mapping[str, str]  # AWS::Region, AWS::AccountId, ...
    queue_arn: Callable[[str], str]  # queue URL -> ARN
    cache: dict[str, str] = field(default_factory=dict)

    def ref(self, name: str) -> str:
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.physical:
            return self.physical[name]
        raise UnresolvableError(f"Ref {name}: no such resource in the deployed stack")

    def arn(self, logical: str) -> str:
        if logical in self.cache:
            return self.cache[logical]
        kind = self.resources[logical]["Type"]
        phys = self.ref(logical)
        region, account, part = (
            self.pseudo["AWS::Region"],
            self.pseudo["AWS::AccountId"],
            self.pseudo["AWS::Partition"],
        )
        if kind == "AWS::S3::Bucket":
            arn = f"arn:{part}:s3:::{phys}"
        elif kind == "AWS::SQS::Queue":
            arn = self.queue_arn(phys)
        elif kind == "AWS::DynamoDB::Table":
            arn = f"arn:{part}:dynamodb:{region}:{account}:table/{phys}"
        elif kind == "AWS::SNS::Topic":
            arn = phys
        else:
            raise UnresolvableError(f"Fn::GetAtt {logical}.Arn for {kind}")
        self.cache[logical] = arn
        return arn

    def get_att(self, logical: str, attribute: str) -> str:
        if attribute != "Arn":
            raise UnresolvableError(f"Fn::GetAtt {logical}.{attribute}")
        return self.arn(logical)

    def sub(self, template: str) -> str:
        def one(match: re.Match[str]) -> str:
            name = match.group(1)
            if "." in name and not name.startswith("AWS::"):
                logical, attribute = name.split(".", 1)
                return self.get_att(logical, attribute)
            return self.ref(name)

        return re.sub(r"\$\{([^}!]+)\}", one, template)

    def __call__(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((fn, arg),) = value.items()
            if fn == "Ref" or fn.startswith("Fn::"):
                return self.intrinsic(fn, arg)
        return {k: self(v) for k, v in value.items()}

    def intrinsic(self, fn: str, arg: Any) -> str:
        if fn == "Ref":
            return self.ref(arg)
        if fn == "Fn::GetAtt":
            logical, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
            return self.get_att(logical, attribute)
        if fn == "Fn::Sub":
            if not isinstance(arg, str):
                raise UnresolvableError("Fn::Sub with a variable map")
            return self.sub(arg)
        if fn == "Fn::Join":
            sep, parts = arg
            return str(sep).join(str(p) for p in self(parts))
        raise UnresolvableError(fn)


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: run `serverless package` or deploy first")
    template: dict[str, Any] = json.loads(path.read_text())
    return template


def resolver_for(
    template: Mapping[str, Any],
    stack: str,
    cfn: CloudFormationClient,
    sqs: SQSClient,
    region: str,
    account: str,
) -> Resolver:
    physical = {
        r["LogicalResourceId"]: r["PhysicalResourceId"]
        for r in cfn.describe_stack_resources(StackName=stack)["StackResources"]
        if r.get("LogicalResourceId") and r.get("PhysicalResourceId")
    }

    def queue_arn(url: str) -> str:
        attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
        return attrs["Attributes"]["QueueArn"]

    pseudo = {
        "AWS::Region": region,
        "AWS::AccountId": account,
        "AWS::Partition": "aws",
        "AWS::StackName": stack,
        "AWS::URLSuffix": "amazonaws.com",
    }
    return Resolver(template["Resources"], physical, pseudo, queue_arn)


def _requires_tls(statement: Mapping[str, Any]) -> bool:
    return "aws:SecureTransport" in json.dumps(statement.get("Condition", {}))


def wire(
    template: Mapping[str, Any],
    resolve: Resolver,
    s3: S3Client,
    sqs: SQSClient,
    *,
    plain_http: bool = True,
) -> list[str]:
    """Apply notifications, policies and public access blocks. Returns what was applied.

    ``plain_http``: the embedded endpoint speaks HTTP only, and moto does evaluate bucket
    policies, so the TLS-only deny statements would refuse every request there. They are left out
    locally (and checked on the packaged template by the unit tests instead)."""
    resources: Mapping[str, Mapping[str, Any]] = template["Resources"]
    # Queue policies first: S3 checks them when a notification is configured.
    applied = [
        _queue_policy(logical, res.get("Properties", {}), resolve, sqs)
        for logical, res in resources.items()
        if res["Type"] == "AWS::SQS::QueuePolicy"
    ]
    for logical, res in resources.items():
        props = res.get("Properties", {})
        if res["Type"] == "AWS::S3::Bucket":
            applied += _bucket(logical, props, resolve, s3)
        elif res["Type"] == "AWS::S3::BucketPolicy":
            applied += _bucket_policy(logical, props, resolve, s3, plain_http)
    return applied


def _queue_policy(logical: str, props: Mapping[str, Any], resolve: Resolver, sqs: SQSClient) -> str:
    policy = json.dumps(resolve(props["PolicyDocument"]))
    for url in resolve(props["Queues"]):
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": policy})
    return f"{logical}: queue policy"


def _bucket(logical: str, props: Mapping[str, Any], resolve: Resolver, s3: S3Client) -> list[str]:
    applied = []
    bucket = resolve.ref(logical)
    if "PublicAccessBlockConfiguration" in props:
        s3.put_public_access_block(
            Bucket=bucket, PublicAccessBlockConfiguration=props["PublicAccessBlockConfiguration"]
        )
        applied.append(f"{logical}: public access block")
    notification = props.get("NotificationConfiguration")
    if notification:
        s3.put_bucket_notification_configuration(
            Bucket=bucket, NotificationConfiguration=_notification(resolve(notification))
        )
        applied.append(f"{logical}: notifications")
    return applied


def _bucket_policy(
    logical: str, props: Mapping[str, Any], resolve: Resolver, s3: S3Client, plain_http: bool
) -> list[str]:
    document = dict(resolve(props["PolicyDocument"]))
    statements = document["Statement"]
    if plain_http:
        statements = [st for st in statements if not _requires_tls(st)]
    if not statements:
        return []
    document["Statement"] = statements
    s3.put_bucket_policy(Bucket=resolve(props["Bucket"]), Policy=json.dumps(document))
    return [f"{logical}: bucket policy"]


def _notification(cfn: Mapping[str, Any]) -> Any:
    """CloudFormation's NotificationConfiguration shape -> the S3 API's."""
    api: dict[str, list[dict[str, object]]] = {}
    for cfn_name, api_name, target_cfn, target_api in (
        ("QueueConfigurations", "QueueConfigurations", "Queue", "QueueArn"),
        ("TopicConfigurations", "TopicConfigurations", "Topic", "TopicArn"),
        ("LambdaConfigurations", "LambdaFunctionConfigurations", "Function", "LambdaFunctionArn"),
    ):
        for conf in cfn.get(cfn_name, []):
            entry: dict[str, object] = {target_api: conf[target_cfn], "Events": [conf["Event"]]}
            if "Filter" in conf:
                rules = conf["Filter"]["S3Key"]["Rules"]
                entry["Filter"] = {"Key": {"FilterRules": rules}}
            api.setdefault(api_name, []).append(entry)
    return api
