"""`imgpipe local ...` and `imgpipe demo`: the embedded stack."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from ..local import endpoint as local_endpoint
from . import main


@main.group()
def local() -> None:
    """The local stack: embedded AWS endpoint, deploy, Lambda-like runner."""


@local.command("up")
def local_up() -> None:
    """Start the embedded endpoint (or find LocalStack) and print its URL."""
    ep = local_endpoint.up()
    click.echo(f"{ep.url} ({ep.kind})")


@local.command("down")
def local_down() -> None:
    """Stop the embedded endpoint started by `imgpipe local up`."""
    stopped = local_endpoint.down()
    click.echo("stopped" if stopped else "nothing to stop")


@local.command("env")
def local_env() -> None:
    """Print shell exports for talking to the local endpoint (eval "$(imgpipe local env)")."""
    ep = local_endpoint.current()
    if ep is None:
        raise click.ClickException("no local endpoint is running: run `imgpipe local up`")
    for name, value in local_endpoint.aws_env(ep).items():
        click.echo(f"export {name}={value}")


@local.command("deploy")
@click.option("--stage", default="local", show_default=True)
def local_deploy(stage: str) -> None:
    """Deploy serverless.yml to the local endpoint and apply what its CloudFormation ignores."""
    from ..local.deploy import deploy

    ep = local_endpoint.up()
    for line in deploy(ep, stage):
        click.echo(f"wired {line}")


@local.command("run")
@click.option("--stage", default="local", show_default=True)
@click.option("--concurrency", type=int, help="workers (default: the mapping's, capped at cores)")
@click.option(
    "--fault-rate",
    type=click.FloatRange(0, 1),
    default=0.0,
    help="testing only: fail this fraction of the handler's S3/DynamoDB/SNS calls",
)
@click.option(
    "--retry-visibility",
    type=click.IntRange(min=0),
    help="seconds before a failed message returns (default: the queue's visibility timeout)",
)
@click.option("--port", type=click.IntRange(0, 65535), default=0, help="for the API (0: any free)")
def local_run(
    stage: str,
    concurrency: int | None,
    fault_rate: float,
    retry_visibility: int | None,
    port: int,
) -> None:
    """Poll the images queue and invoke the process handler, as Lambda's SQS mapping would."""
    from ..local.runner import Runner
    from ..local.stack import discover

    ep = local_endpoint.current()
    if ep is None:
        raise click.ClickException("no local endpoint is running: run `make deploy STAGE=local`")
    runner = Runner(
        discover(ep, stage),
        max_concurrency=concurrency,
        retry_visibility=retry_visibility,
        fault_rate=fault_rate,
    )
    from .images import runner_pid_file
    from .local_api import serve_api

    pid_file = runner_pid_file()
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.write_text(str(os.getpid()))  # `imgpipe upload --wait` sees a runner is going
    try:
        with serve_api(runner.stack, port) as api:
            click.echo(f"polling {runner.stack.queue_url} with {runner.concurrency} workers")
            click.echo(f"status API and gallery: {api.url}/   (Ctrl-C stops)")
            runner.run_forever()
    finally:
        pid_file.unlink(missing_ok=True)
    click.echo(json.dumps({k: v for k, v in vars(runner.stats).items() if k != "lock"}))


@main.command()
@click.option("--out", type=click.Path(path_type=Path), default=Path("demo-out"), show_default=True)
@click.option("--timeout", type=float, default=180.0, show_default=True)
def demo(out: Path, timeout: float) -> None:
    """Local stack + deploy + runner, upload the corpus photos and print the results."""
    from .demo import run_demo

    sys.exit(run_demo(out, timeout))
