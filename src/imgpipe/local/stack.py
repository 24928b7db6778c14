"""What a deployed stack looks like to the local tools: names, the process function, its mapping.

Everything is read back from the endpoint (CloudFormation resources, Lambda configuration, the
event source mapping), never restated, so the runner plays exactly the function that was deployed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .endpoint import Endpoint, client

SERVICE = "imgpipe"


@dataclass(frozen=True, slots=True)
class FunctionSpec:
    name: str
    handler: str
    timeout: int
    memory: int
    environment: dict[str, str]


@dataclass(frozen=True, slots=True)
class MappingSpec:
    queue_arn: str
    batch_size: int
    window: int
    max_concurrency: int
    report_failures: bool
    enabled: bool


@dataclass(frozen=True, slots=True)
class Stack:
    endpoint: Endpoint
    name: str
    uploads_bucket: str
    derived_bucket: str
    table: str
    topic_arn: str
    queue_url: str
    dlq_url: str
    process: FunctionSpec
    mapping: MappingSpec

    def client(self, service: str) -> Any:
        return client(self.endpoint, service)


class StackNotDeployed(RuntimeError):
    pass


def stack_name(stage: str) -> str:
    return f"{SERVICE}-{stage}"


def discover(endpoint: Endpoint, stage: str = "local") -> Stack:
    name = stack_name(stage)
    cfn, lam, sqs = (client(endpoint, s) for s in ("cloudformation", "lambda", "sqs"))
    try:
        resources = cfn.describe_stack_resources(StackName=name)["StackResources"]
    except cfn.exceptions.ClientError as exc:
        raise StackNotDeployed(
            f"stack {name} is not deployed on {endpoint.url}: run `make deploy STAGE={stage}`"
        ) from exc
    physical = {
        r["LogicalResourceId"]: r.get("PhysicalResourceId", "")
        for r in resources
        if "LogicalResourceId" in r
    }
    config = lam.get_function_configuration(FunctionName=physical["ProcessLambdaFunction"])
    env: dict[str, str] = dict(config.get("Environment", {}).get("Variables", {}))
    function = FunctionSpec(
        name=config["FunctionName"],
        handler=config["Handler"],
        timeout=int(config["Timeout"]),
        memory=int(config["MemorySize"]),
        environment=env,
    )
    mappings = [
        m
        for m in lam.list_event_source_mappings()["EventSourceMappings"]
        if m.get("FunctionArn", "").endswith(f":function:{function.name}")
    ]
    if not mappings:
        raise StackNotDeployed(f"{function.name} has no SQS event source mapping")
    m = mappings[0]
    mapping = MappingSpec(
        queue_arn=m["EventSourceArn"],
        batch_size=int(m.get("BatchSize", 10)),
        window=int(m.get("MaximumBatchingWindowInSeconds", 0)),
        max_concurrency=int(m.get("ScalingConfig", {}).get("MaximumConcurrency", 2)),
        report_failures="ReportBatchItemFailures" in m.get("FunctionResponseTypes", []),
        enabled=m.get("State") in {"Enabled", "Enabling", "Creating"},
    )

    def queue_url(logical: str) -> str:
        queue_name = physical[logical].rstrip("/").rsplit("/", 1)[-1]
        url: str = sqs.get_queue_url(QueueName=queue_name)["QueueUrl"]
        return url

    return Stack(
        endpoint=endpoint,
        name=name,
        uploads_bucket=physical["UploadsBucket"],
        derived_bucket=physical["DerivedBucket"],
        table=physical["ImagesTable"],
        topic_arn=physical["EventsTopic"],
        queue_url=queue_url("ImagesQueue"),
        dlq_url=queue_url("DeadLetterQueue"),
        process=function,
        mapping=mapping,
    )
