"""`imgpipe local ...` and `imgpipe demo`: the embedded stack."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from ..local import endpoint as local_endpoint
from . import main


@main.group()
def local() -> None:
    """The local stack: MiniStack (or LocalStack) running the deployed functions."""


@local.command("up")
def local_up() -> None:
    """Start MiniStack (or use LOCALSTACK_ENDPOINT) and print the endpoint's URL."""
    ep = _up()
    click.echo(f"{ep.url} ({ep.kind})")


def _up() -> local_endpoint.Endpoint:
    try:
        return local_endpoint.up()
    except FileNotFoundError as exc:
        raise click.ClickException(str(exc)) from None


@local.command("down")
def local_down() -> None:
    """Stop the local endpoint started by `imgpipe local up`."""
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
    api = _api_url(ep)
    if api:
        click.echo(f"export IMGPIPE_API_URL={api}")


def _api_url(ep: local_endpoint.Endpoint, stage: str = "local") -> str | None:
    """The deployed HTTP API's base URL on the endpoint (plain HTTP, ``*.localhost`` resolves
    to loopback), or None when nothing is deployed there yet."""
    from ..local.stack import StackNotDeployed, discover

    try:
        return discover(ep, stage).api_url
    except StackNotDeployed:
        return None


@local.command("deploy")
@click.option("--stage", default="local", show_default=True)
def local_deploy(stage: str) -> None:
    """Deploy serverless.yml to the local endpoint with the Serverless CLI."""
    from ..local.deploy import deploy

    ep = _up()
    try:
        for line in deploy(ep, stage):
            click.echo(line)
    except FileNotFoundError as exc:
        raise click.ClickException(str(exc)) from None
    # serverless-localstack prints an https://...localstack.cloud address: not this endpoint's
    click.echo(f"HTTP API on the local stack: {_api_url(ep, stage)}/images (SigV4-signed calls)")


@local.command("run")
@click.option("--stage", default="local", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=0, help="for the API (0: any free)")
def local_run(stage: str, port: int) -> None:
    """Serve the status API and the gallery on loopback, with the queue trigger on (the
    endpoint runs the process function from it)."""
    from ..local.stack import discover, set_trigger
    from .local_api import serve_api

    ep = local_endpoint.current()
    if ep is None:
        raise click.ClickException("no local endpoint is running: run `make deploy STAGE=local`")
    stack = discover(ep, stage)
    if not set_trigger(stack, True):
        click.echo("the event source mapping was paused: enabled it")
    with serve_api(stack, port) as api:
        click.echo(f"{stack.kind} runs {stack.queue_url} through its event source mapping")
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
    """Local stack + deploy, upload the corpus photos and print the results."""
    from .demo import run_demo

    try:
        code = run_demo(out, timeout)
    except FileNotFoundError as exc:
        raise click.ClickException(str(exc)) from None
    sys.exit(code)
