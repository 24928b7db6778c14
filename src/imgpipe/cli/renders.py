"""`imgpipe render-url`: a signed URL of one on-demand rendition (docs/usage.md, renditions)."""

from __future__ import annotations

import click

from ..deployment import Deployment
from ..renditions import DEFAULT_QUALITY, FITS, FORMATS, LADDER, QUALITIES, Render, render_url, snap
from . import deployment, printable, target_options


def render_secret(dep: Deployment) -> bytes:
    """The stage's render secret, read with the caller's own credentials (Secrets Manager)."""
    value = dep.client("secretsmanager").get_secret_value(SecretId=dep.render_secret_name)
    return str(value["SecretString"]).encode()


@click.command("render-url")
@click.argument("key")
@click.option("--width", type=click.IntRange(1, LADDER[-1]), required=True, help="pixels")
@click.option("--height", type=click.IntRange(0, LADDER[-1]), default=0, help="0: any")
@click.option("--fit", type=click.Choice(FITS), default="fit", show_default=True)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="auto",
    show_default=True,
    help="auto: AVIF or WebP by the browser's Accept",
)
@click.option(
    "--quality",
    type=click.Choice([str(q) for q in QUALITIES]),
    default=str(DEFAULT_QUALITY),
    show_default=True,
)
@target_options
def render_url_command(
    key: str,
    width: int,
    height: int,
    fit: str,
    fmt: str,
    quality: str,
    stage: str,
    endpoint: str | None,
    as_json: bool,
) -> None:
    """Print a signed URL of KEY at another size (GET /render/KEY): made on first request,
    kept, then answered from what was kept. Sizes snap up to the stage's ladder."""
    dep = deployment(stage, endpoint)
    if not dep.api_url:
        raise click.ClickException(f"{dep.name} has no HTTP API to render from")
    snapped = (snap(width), snap(height) if height else 0)
    if snapped != (width, height):
        click.echo(f"snapped to the ladder: {snapped[0]}x{snapped[1] or 'any'}", err=True)
    render = Render(snapped[0], snapped[1], fit, fmt, int(quality))
    url = render_url(dep.api_url.rstrip("/"), key, render, render_secret(dep))
    click.echo(printable(url))
