"""Deploy serverless.yml to the local endpoint with the real Serverless CLI, then wire it."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from ..deployment import stack_name
from .endpoint import REGION, Endpoint, aws_env, client
from .wire import load_template, resolver_for, wire


def project_dir() -> Path:
    """The directory holding serverless.yml: $IMGPIPE_PROJECT_DIR, or the nearest parent of cwd."""
    explicit = os.environ.get("IMGPIPE_PROJECT_DIR")
    if explicit:
        return Path(explicit).resolve()
    here = Path.cwd().resolve()
    for candidate in (here, *here.parents):
        if (candidate / "serverless.yml").exists():
            return candidate
    raise FileNotFoundError("serverless.yml not found here or above; run from the project")


def serverless_env(ep: Endpoint | None) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        SLS_TELEMETRY_DISABLED="1",
        SLS_NOTIFICATIONS_MODE="off",
        # Polls the stack twice a second instead of every 5 s: a local deploy in ~8 s, not 15.
        SLS_AWS_MONITORING_FREQUENCY="500",
    )
    if ep is not None:
        env.update(aws_env(ep))
        # serverless-localstack sets the endpoint itself; boto-style variables would be ignored
        # by the CLI but would mislead a Python subprocess it starts.
        env.pop("AWS_ENDPOINT_URL", None)
    return env


def serverless(args: list[str], ep: Endpoint | None, *, quiet: bool = False) -> None:
    root = project_dir()
    cli = root / "node_modules" / ".bin" / "serverless"
    if not cli.exists():
        raise FileNotFoundError(f"{cli} is missing: run `npm ci` (or `make install`)")
    result = subprocess.run(
        [str(cli), *args],
        cwd=root,
        env=serverless_env(ep),
        check=False,
        capture_output=quiet,
        text=True,
    )
    if result.returncode != 0:
        detail = (result.stdout or "") + (result.stderr or "") if quiet else ""
        raise RuntimeError(f"serverless {' '.join(args)} failed ({result.returncode})\n{detail}")


def backend_params(ep: Endpoint) -> dict[str, str]:
    """Stage parameters the backend decides. MiniStack runs the function from the real SQS
    event source mapping, so the trigger is on (moto cannot run a function: it stays off and
    the local runner polls instead), with one execution environment per core at most (Lambda's
    floor is 2): ten environments each loading the labeler's models on two cores spend their
    time contending, not working. The redrive function keeps the local stage's `manual`
    strategy: MiniStack has no StartMessageMoveTask, and its IAM check of that call (made before
    it says so) looks at another resource than AWS's, the source queue."""
    if ep.kind != "ministack":
        return {}
    return {"triggerEnabled": "true", "maxConcurrency": str(max(2, os.cpu_count() or 2))}


def deploy(
    ep: Endpoint,
    stage: str = "local",
    *,
    quiet: bool = False,
    params: dict[str, str] | None = None,
) -> list[str]:
    """``serverless deploy`` to ``ep``; on moto, then apply what its CloudFormation ignores
    (MiniStack's and LocalStack's apply the whole template). ``params`` override stage
    parameters (``--param key=value``)."""
    merged = {**backend_params(ep), **(params or {})}
    extra = [f"--param={k}={v}" for k, v in merged.items()]
    serverless(["deploy", "--stage", stage, "--region", REGION, *extra], ep, quiet=quiet)
    if ep.kind == "moto":
        return wire_stack(ep, stage)
    if ep.kind == "ministack":
        return grant_batch_names(ep, stage)
    return []


# AWS authorizes SQS batch calls with the single-message action; MiniStack (1.5) evaluates them
# under the batch operation's own name, which IAM does not have (cfn-lint: W3037), so the
# template cannot name them. Locally each role gets the batch names of exactly the actions it
# was granted, on the same resources.
_BATCH_NAMES = {
    "sqs:ChangeMessageVisibility": "sqs:ChangeMessageVisibilityBatch",
    "sqs:DeleteMessage": "sqs:DeleteMessageBatch",
    "sqs:SendMessage": "sqs:SendMessageBatch",
}
BATCH_POLICY = "ministack-sqs-batch-action-names"


def grant_batch_names(ep: Endpoint, stage: str = "local") -> list[str]:
    cfn, iam = client(ep, "cloudformation"), client(ep, "iam")
    resources = cfn.describe_stack_resources(StackName=stack_name(stage))["StackResources"]
    applied = []
    for res in resources:
        if res["ResourceType"] != "AWS::IAM::Role":
            continue
        role = res["PhysicalResourceId"]
        statements = []
        for name in iam.list_role_policies(RoleName=role)["PolicyNames"]:
            if name == BATCH_POLICY:
                continue
            document = iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
            if isinstance(document, str):
                document = json.loads(unquote(document))
            statements += _batch_statements(document.get("Statement", []))
        if statements:
            iam.put_role_policy(
                RoleName=role,
                PolicyName=BATCH_POLICY,
                PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements}),
            )
            applied.append(f"{res['LogicalResourceId']}: SQS batch action names (MiniStack)")
    return applied


def _batch_statements(statements: Any) -> list[dict[str, object]]:
    out = []
    for st in statements if isinstance(statements, list) else [statements]:
        actions = st.get("Action", [])
        actions = actions if isinstance(actions, list) else [actions]
        batch = sorted({_BATCH_NAMES[a] for a in actions if a in _BATCH_NAMES})
        if st.get("Effect") == "Allow" and batch:
            out.append({"Effect": "Allow", "Action": batch, "Resource": st["Resource"]})
    return out


def wire_stack(ep: Endpoint, stage: str = "local") -> list[str]:
    template = load_template(
        project_dir() / ".serverless/cloudformation-template-update-stack.json"
    )
    account = client(ep, "sts").get_caller_identity()["Account"]
    s3, sqs = client(ep, "s3"), client(ep, "sqs")
    resolve = resolver_for(
        template, stack_name(stage), client(ep, "cloudformation"), sqs, REGION, account
    )
    return wire(template, resolve, s3, sqs, plain_http=ep.url.startswith("http://"))
