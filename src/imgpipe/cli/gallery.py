"""`imgpipe gallery`: the gallery page on loopback, for any stage."""

from __future__ import annotations

import time

import click

from ..web.server import ApiServer, NoHttpApi, stage_api
from . import deployment, target_options


@click.command()
@click.option("--port", type=click.IntRange(0, 65535), default=0, help="default: any free one")
@target_options
def gallery(port: int, stage: str, endpoint: str | None, as_json: bool) -> None:
    """Serve the gallery on 127.0.0.1, its calls signed with your AWS credentials.

    The page talks to this loopback server only; each call is forwarded to the stage's HTTP API
    signed with SigV4 (the API's routes take IAM-authorised callers only). Open the printed URL:
    its token keeps other local users and web pages out."""
    dep = deployment(stage, endpoint)
    try:
        answer = stage_api(dep)
    except NoHttpApi as exc:
        raise click.ClickException(str(exc)) from None
    with ApiServer(answer, port) as server:
        via = f"signed calls to {dep.api_url}"
        if as_json:
            click.echo(f'{{"url": "{server.gallery_url}"}}')
        else:
            click.echo(f"gallery of {dep.name}, via {via}:\n  {server.gallery_url}\n(Ctrl-C stops)")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
