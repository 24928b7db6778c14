"""The ``imgpipe`` command: one group, commands in modules by subject, each module imported only
when its command runs (``imgpipe process`` on local files never loads boto3: ~200 ms a run)."""

from __future__ import annotations

import importlib
import json
import os
import sys
import unicodedata
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from ..deployment import Deployment

F = TypeVar("F", bound=Callable[..., Any])

# command -> "module:object" that defines it: loaded by name when it is run or its help is
# asked for (click's LazyGroup pattern), so `imgpipe process` never imports boto3 and no
# module registers anything by being imported.
LAZY_COMMANDS = {
    "upload": "images:upload",
    "status": "images:status",
    "ls": "images:list_images",
    "get": "images:get",
    "open": "images:open_thumbnail",
    "render-url": "renders:render_url_command",
    "dlq": "dlq:dlq",
    "redrive": "dlq:redrive",
    "reconcile": "reconcile:reconcile",
    "backfill": "backfill:backfill",
    "remove": "remove:remove",
    "gallery": "gallery:gallery",
    "process": "offline:process",
    "local": "local:local",
    "demo": "local:demo",
}


class ImgpipeGroup(click.Group):
    """Commands loaded by name; errors are one line that says what to do (``--debug`` shows
    the traceback)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(LAZY_COMMANDS))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in LAZY_COMMANDS:
            module, _, name = LAZY_COMMANDS[cmd_name].partition(":")
            command = getattr(importlib.import_module(f"{__name__}.{module}"), name)
            if not isinstance(command, click.Command):
                raise TypeError(f"{LAZY_COMMANDS[cmd_name]} is not a click command")
            return command
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            # The reader went away (`imgpipe ls | head -2`): stop quietly, as SIGPIPE would, and
            # keep the interpreter's final flush from failing on the closed pipe again.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(128 + 13)
        except (click.ClickException, click.exceptions.Exit, click.Abort, SystemExit):
            raise
        except Exception as exc:
            # deployment.py is imported by the commands that use it, and only then can raise
            deployment_module = sys.modules.get("imgpipe.deployment")
            if deployment_module is not None and isinstance(exc, deployment_module.DeploymentError):
                raise click.ClickException(printable(str(exc))) from None
            if ctx.meta.get("imgpipe.debug") or os.environ.get("IMGPIPE_DEBUG"):
                raise
            raise click.ClickException(
                printable(f"{type(exc).__name__}: {exc} (run with --debug for the traceback)")
            ) from None


@click.group(cls=ImgpipeGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="imgpipe")
@click.option("--debug", is_flag=True, help="show tracebacks instead of one-line errors")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """imgpipe: S3 uploads become thumbnails, metadata, labels and status records.

    Against the local stack (default: `make demo` starts one) or a deployed stage
    (`--stage dev`, with your AWS credentials)."""
    ctx.meta["imgpipe.debug"] = debug


def target_options(fn: F) -> F:
    """--stage, --endpoint and --json, the same on every command that talks to a stack."""
    fn = click.option("--json", "as_json", is_flag=True, help="machine-readable output")(fn)
    fn = click.option(
        "--endpoint",
        envvar="IMGPIPE_ENDPOINT",
        help="AWS-compatible endpoint (LocalStack); default: the local stack's or AWS",
    )(fn)
    stage = click.option(
        "--stage",
        default="local",
        show_default=True,
        envvar="IMGPIPE_STAGE",
        help="`local` for the local stack, else the deployed stage (imgpipe-<stage>)",
    )
    return stage(fn)


def deployment(stage: str, endpoint: str | None) -> Deployment:
    """The stage to talk to: the local stack (its endpoint, or ``endpoint``), or CloudFormation's
    outputs of ``imgpipe-<stage>`` on AWS (or at ``endpoint``)."""
    from ..deployment import DeploymentError, from_cloudformation

    if stage != "local":
        return from_cloudformation(stage, endpoint)
    from ..local import endpoint as local_endpoint
    from ..local.stack import StackNotDeployed, discover

    ep = (
        local_endpoint.Endpoint(endpoint.rstrip("/"), local_endpoint.Kind.LOCALSTACK)
        if endpoint
        else local_endpoint.current()
    )
    if ep is None:
        raise DeploymentError(
            f"no local stack is running (looked in {local_endpoint.where_looked()}): run"
            " `make demo` (or `imgpipe local deploy`) in the imgpipe checkout first, or point"
            f" {local_endpoint.STATE_DIR_ENV} at the state directory of the one you started"
        )
    try:
        return discover(ep, "local")
    except StackNotDeployed as exc:
        raise DeploymentError(str(exc)) from None


def echo_json(data: object) -> None:
    """JSON, readable UTF-8, but with every non-printable character (C0 and C1 controls, bidi
    overrides...) as a \\u escape: valid JSON that cannot drive the terminal it lands on."""
    click.echo(escape_json(json.dumps(data, indent=2, ensure_ascii=False)))


def escape_json(text: str) -> str:
    """JSON text with each non-printable character as a \\u escape (still the same JSON)."""
    out = []
    for c in text:
        if c.isprintable() or c in "\n ":
            out.append(c)
        elif ord(c) > 0xFFFF:  # JSON spells those as a surrogate pair
            high, low = divmod(ord(c) - 0x10000, 0x400)
            out.append(f"\\u{0xD800 + high:04x}\\u{0xDC00 + low:04x}")
        else:
            out.append(f"\\u{ord(c):04x}")
    return "".join(out)


def printable(text: str) -> str:
    """``text`` (a key, a detail: user input) with control characters shown as escapes, so
    that it cannot move the cursor, recolour or retitle the terminal it is printed on."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)


def display_width(text: str) -> int:
    """Columns ``text`` takes in a terminal: wide (CJK) characters two, combining marks none."""
    return sum(
        0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1
        for c in text
    )


def table(rows: Sequence[tuple[str, ...]]) -> str:
    """Rows aligned by display width (a CJK key takes two columns a character)."""
    rows = [tuple(printable(cell) for cell in row) for row in rows]
    widths = [max(display_width(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(c + " " * (w - display_width(c)) for c, w in zip(r, widths, strict=True)).rstrip()
        for r in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


__all__ = ["main"]
