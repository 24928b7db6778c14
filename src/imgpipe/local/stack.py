"""What a stack deployed on the local endpoint looks like: a ``Deployment``, read back.

Everything is read back from the endpoint (CloudFormation resources, the Lambda configuration),
never restated.
"""

from __future__ import annotations

from ..deployment import Deployment, FunctionSpec, stack_name
from .endpoint import Endpoint, access, client


class StackNotDeployed(RuntimeError):
    pass


def discover(endpoint: Endpoint, stage: str = "local") -> Deployment:
    name = stack_name(stage)
    cfn, lam, sqs = (client(endpoint, s) for s in ("cloudformation", "lambda", "sqs"))
    try:
        resources = cfn.describe_stack_resources(StackName=name)["StackResources"]
    except cfn.exceptions.ClientError as exc:
        raise StackNotDeployed(
            f"stack {name} is not deployed on {endpoint.url}: run `make deploy STAGE={stage}`"
        ) from exc
    physical: dict[str, str] = {
        r["LogicalResourceId"]: r.get("PhysicalResourceId", "")
        for r in resources
        if "LogicalResourceId" in r
    }
    config = lam.get_function_configuration(FunctionName=physical["ProcessLambdaFunction"])
    function = FunctionSpec(
        name=config["FunctionName"],
        handler=config["Handler"],
        timeout=int(config["Timeout"]),
        memory=int(config["MemorySize"]),
        environment=dict(config.get("Environment", {}).get("Variables", {})),
    )

    def queue_url(logical: str) -> str:
        queue_name = physical[logical].rstrip("/").rsplit("/", 1)[-1]
        url: str = sqs.get_queue_url(QueueName=queue_name)["QueueUrl"]
        return url

    return Deployment(
        stage=stage,
        uploads_bucket=physical["UploadsBucket"],
        derived_bucket=physical["DerivedBucket"],
        table=physical["ImagesTable"],
        topic_arn=physical["EventsTopic"],
        queue_url=queue_url("ImagesQueue"),
        dlq_url=queue_url("DeadLetterQueue"),
        access=access(endpoint),
        kind=endpoint.kind,
        process=function,
        api_url=_api_url(endpoint, physical.get("HttpApi", "")),
    )


def _api_url(endpoint: Endpoint, api_id: str) -> str | None:
    """Where MiniStack and LocalStack serve an HTTP API under the endpoint's own address
    (``/_aws/execute-api/<id>``): every HTTP client reaches it. The other form,
    ``<id>.execute-api.localhost``, resolves only where the resolver maps ``*.localhost`` to
    loopback (curl, browsers), not in Python's or awscurl's."""
    if not api_id:
        return None
    return f"{endpoint.url}/_aws/execute-api/{api_id}"


def set_trigger(stack: Deployment, enabled: bool) -> bool:
    """Enable or pause the process function's SQS event source mapping (the local endpoint
    runs the function from it, as AWS does). Returns whether it was enabled before."""
    assert stack.process is not None
    lam = stack.client("lambda")
    mappings = lam.list_event_source_mappings(FunctionName=stack.process.name)
    [mapping] = mappings["EventSourceMappings"]
    was = mapping.get("State") in {"Enabled", "Enabling"}
    if was != enabled:
        lam.update_event_source_mapping(UUID=mapping["UUID"], Enabled=enabled)
    return was
