"""Deploy serverless.yml to the local endpoint with the real Serverless CLI."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from ..codec import JsonObject
from ..deployment import stack_name
from .endpoint import LAMBDA_PYTHON, REGION, Endpoint, aws_env, client
from .project import project_dir


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
        # The zip's native wheels (Pillow, numpy) must match the interpreter that runs them.
        env["IMGPIPE_ZIP_PYTHON"] = ep.python
        # serverless-localstack sets the endpoint itself; boto-style variables would be ignored
        # by the CLI but would mislead a Python subprocess it starts.
        env.pop("AWS_ENDPOINT_URL", None)
    return env


LOCK_NAME = ".serverless.lock"


@contextmanager
def project_lock(root: Path) -> Iterator[None]:
    """One Serverless CLI at a time per checkout: it builds into the checkout's own
    `.serverless/` and `.requirements/`, so two deploys at once (two endpoints, or two test
    runs side by side) would package into, and clean up, each other's files."""
    with (root / LOCK_NAME).open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def serverless(args: list[str], ep: Endpoint | None, *, quiet: bool = False) -> None:
    root = project_dir()
    cli = root / "node_modules" / ".bin" / "serverless"
    if not cli.exists():
        raise FileNotFoundError(f"{cli} is missing: run `npm ci` (or `make install`)")
    with project_lock(root):
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


def endpoint_params() -> dict[str, str]:
    """Stage parameters for a local endpoint. It runs the function from its own SQS event
    source mapping, as AWS does, so the trigger is on, with one execution environment per core
    at most (Lambda's floor is 2): ten environments each loading the labeler's models on two
    cores spend their time contending, not working. The redrive function keeps the local
    stage's `manual` strategy: MiniStack has no StartMessageMoveTask, and its IAM check of that
    call (made before it says so) looks at another resource than AWS's, the source queue."""
    return {"triggerEnabled": "true", "maxConcurrency": str(max(2, os.cpu_count() or 2))}


def zip_python_note(ep: Endpoint) -> str | None:
    """Said once per deploy when the local zip is not built for Lambda's own Python."""
    if ep.python == LAMBDA_PYTHON:
        return None
    return (
        f"{ep.kind} runs the functions on Python {ep.python} here (no {LAMBDA_PYTHON} found): "
        f"the local stage's zip is built for {ep.python}; AWS stages stay on {LAMBDA_PYTHON}"
    )


def deploy(
    ep: Endpoint,
    stage: str = "local",
    *,
    quiet: bool = False,
    params: dict[str, str] | None = None,
) -> list[str]:
    """``serverless deploy`` to ``ep``; what was adjusted for the endpoint, one line each.
    ``params`` override stage parameters (``--param key=value``)."""
    merged = {**endpoint_params(), **(params or {})}
    extra = [f"--param={k}={v}" for k, v in merged.items()]
    serverless(["deploy", "--stage", stage, "--region", REGION, *extra], ep, quiet=quiet)
    notes = [note] if (note := zip_python_note(ep)) else []
    return notes + (grant_batch_names(ep, stage) if ep.traits.batch_action_names else [])


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
            applied.append(
                f"granted {res['LogicalResourceId']} the SQS batch action names (MiniStack)"
            )
    return applied


def _batch_statements(statements: Any) -> list[JsonObject]:
    out = []
    for st in statements if isinstance(statements, list) else [statements]:
        actions = st.get("Action", [])
        actions = actions if isinstance(actions, list) else [actions]
        batch = sorted({_BATCH_NAMES[a] for a in actions if a in _BATCH_NAMES})
        if st.get("Effect") == "Allow" and batch:
            out.append({"Effect": "Allow", "Action": batch, "Resource": st["Resource"]})
    return out
