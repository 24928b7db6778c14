"""`imgpipe local ...` and `imgpipe demo`: the embedded stack."""

from __future__ import annotations

import shlex
import sys
import time
from pathlib import Path

import click

from ..deployment import Deployment
from ..local import endpoint as local_endpoint


@click.group()
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
    """Print shell exports for talking to the local endpoint (eval "$(imgpipe local env)"):
    AWS_* with this run's secret, and once the stack is deployed, IMGPIPE_API_URL and the
    buckets (IMGPIPE_UPLOADS_BUCKET, IMGPIPE_DERIVED_BUCKET) for aws s3 and the like."""
    ep = local_endpoint.current()
    if ep is None:
        raise click.ClickException(
            "no local endpoint is running: run `make demo` or `imgpipe local up`"
        )
    for name, value in local_endpoint.aws_env(ep).items():
        click.echo(f"export {name}={shlex.quote(value)}")
    stack = _deployed(ep)
    if stack is not None:
        named: tuple[tuple[str, str | None], ...] = (
            ("IMGPIPE_API_URL", stack.api_url),
            ("IMGPIPE_UPLOADS_BUCKET", stack.uploads_bucket),
            ("IMGPIPE_DERIVED_BUCKET", stack.derived_bucket),
        )
        for export, found in named:
            if found:
                click.echo(f"export {export}={shlex.quote(found)}")


def _deployed(ep: local_endpoint.Endpoint, stage: str = "local") -> Deployment | None:
    """The stack deployed on the endpoint, or None when nothing is deployed there yet."""
    from ..local.stack import StackNotDeployed, discover

    try:
        return discover(ep, stage)
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
    deployed = _deployed(ep, stage)
    api = deployed.api_url if deployed is not None else None
    click.echo(f"HTTP API on the local stack: {api}/images (SigV4-signed calls)")


@local.command("run")
@click.option("--stage", default="local", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=0, help="for the API (0: any free)")
def local_run(stage: str, port: int) -> None:
    """Serve the status API and the gallery on loopback, with the queue trigger on (the
    endpoint runs the process function from it)."""
    from ..local.stack import set_trigger
    from .local_api import serve_api

    stack = _local_stack(stage)
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


@local.group("faults")
def local_faults() -> None:
    """Rehearse an incident: make the local process function's AWS calls fail, then stop.

    \b
    imgpipe local faults on --rate 1 --minutes 10   every S3/DynamoDB/SNS call fails
    imgpipe upload photo.jpg --wait                 FAILED after every retry, then the DLQ
    imgpipe dlq ls                                  what failed and why
    imgpipe local faults off
    imgpipe redrive --dry-run; imgpipe redrive      back to the queue: DONE"""


def _local_stack(stage: str = "local") -> Deployment:
    from ..local.stack import StackNotDeployed, discover

    ep = local_endpoint.current()
    if ep is None:
        raise click.ClickException(
            "no local endpoint is running: run `make demo` (or `imgpipe local deploy`)"
        )
    try:
        return discover(ep, stage)
    except StackNotDeployed as exc:
        raise click.ClickException(str(exc)) from None


@local_faults.command("on")
@click.option("--rate", type=click.FloatRange(0, 1, min_open=True), default=1.0, show_default=True)
@click.option(
    "--calls",
    default="s3,dynamodb,sns",
    show_default=True,
    help="which AWS services' calls fail (comma-separated)",
)
@click.option(
    "--minutes",
    type=click.FloatRange(min=0),
    default=10.0,
    show_default=True,
    help="then calls go through again (0: until `faults off`)",
)
def faults_on(rate: float, calls: str, minutes: float) -> None:
    """Make RATE of the process function's calls to CALLS fail, for MINUTES."""
    from ..local.faults import Faults, set_faults

    try:
        faults = Faults(
            rate,
            tuple(c.strip().lower() for c in calls.split(",") if c.strip()),
            time.time() + minutes * 60 if minutes else 0.0,
        )
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    set_faults(_local_stack(), faults)
    click.echo(f"faults on: {faults.describe()} (the process function's next invocations)")
    click.echo("transient failures are retried; after the last receive the DLQ has the message")


@local_faults.command("off")
def faults_off() -> None:
    """Stop injected failures (the next invocations run clean)."""
    from ..local.faults import set_faults

    set_faults(_local_stack(), None)
    click.echo("faults off: then `imgpipe redrive --dry-run` and `imgpipe redrive`")


@local_faults.command("status")
def faults_status() -> None:
    """Say whether failures are being injected."""
    from ..local.faults import current

    stack = _local_stack()
    assert stack.process is not None
    found = current(stack.process.environment)
    click.echo(f"faults on: {found.describe()}" if found else "faults off")


@click.command()
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
