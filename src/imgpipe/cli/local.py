"""`imgpipe local ...` and `imgpipe demo`: the embedded stack."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import click

from ..deployment import Deployment
from ..local import endpoint as local_endpoint
from . import main


@main.group()
def local() -> None:
    """The local stack: embedded AWS endpoint, deploy, Lambda-like runner."""


BACKEND = click.option(
    "--backend",
    type=click.Choice(local_endpoint.BACKENDS),
    envvar=local_endpoint.BACKEND_ENV,
    default="auto",
    show_default=True,
    help="auto: MiniStack where installed (it runs the real Lambda zip), else moto",
)


@local.command("up")
@BACKEND
def local_up(backend: str) -> None:
    """Start the embedded endpoint (or find LocalStack) and print its URL."""
    ep = _up(backend)
    click.echo(f"{ep.url} ({ep.kind})")


def _up(backend: str) -> local_endpoint.Endpoint:
    try:
        return local_endpoint.up(backend=backend, say=lambda line: click.echo(line, err=True))
    except FileNotFoundError as exc:
        raise click.ClickException(str(exc)) from None


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
@BACKEND
def local_deploy(stage: str, backend: str) -> None:
    """Deploy serverless.yml to the local endpoint (moto: and apply what its CloudFormation
    ignores)."""
    from ..local.deploy import deploy

    ep = _up(backend)
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
    """Serve the status API and the gallery on loopback; on moto, also poll the images queue and
    invoke the process handler, as Lambda's SQS event source mapping would."""
    from ..local.runner import Runner
    from ..local.stack import discover, set_trigger

    ep = local_endpoint.current()
    if ep is None:
        raise click.ClickException("no local endpoint is running: run `make deploy STAGE=local`")
    stack = discover(ep, stage)
    if stack.kind != "moto":
        if fault_rate or retry_visibility is not None or concurrency:
            raise click.ClickException(
                f"--fault-rate, --retry-visibility and --concurrency drive the local runner; on "
                f"{stack.kind} the endpoint's own event source mapping runs the function"
            )
        _serve_only(stack, port, set_trigger)
        return
    runner = Runner(
        stack,
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
            click.echo(f"status API and gallery: {api.gallery_url}   (Ctrl-C stops)")
            runner.run_forever()
    finally:
        pid_file.unlink(missing_ok=True)
    click.echo(json.dumps({k: v for k, v in vars(runner.stats).items() if k != "lock"}))


def _serve_only(
    stack: Deployment, port: int, set_trigger: Callable[[Deployment, bool], bool]
) -> None:
    from .local_api import serve_api

    if not set_trigger(stack, True):
        click.echo("the event source mapping was paused: enabled it")
    with serve_api(stack, port) as api:
        click.echo(f"{stack.kind} runs {stack.queue_url} through its event source mapping")
        if stack.api_url:
            click.echo(f"HTTP API (API Gateway, the status Lambda): {stack.api_url}/images")
        click.echo(f"status API and gallery: {api.gallery_url}   (Ctrl-C stops)")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


@main.command()
@click.option("--out", type=click.Path(path_type=Path), default=Path("demo-out"), show_default=True)
@click.option("--timeout", type=float, default=180.0, show_default=True)
def demo(out: Path, timeout: float) -> None:
    """Local stack + deploy + runner, upload the corpus photos and print the results."""
    from .demo import run_demo

    sys.exit(run_demo(out, timeout))
