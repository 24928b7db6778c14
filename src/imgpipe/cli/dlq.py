"""`imgpipe dlq ls` and `imgpipe redrive`: after an incident."""

from __future__ import annotations

import json

import click

from ..catalog import Catalog
from ..redrive import Queues, peek
from ..redrive import redrive as run_redrive
from . import deployment, echo_json, main, table, target_options


@main.group()
def dlq() -> None:
    """The dead-letter queue: what failed after every retry."""


@dlq.command("ls")
@click.option("--max", "max_messages", type=click.IntRange(min=1), default=100, show_default=True)
@target_options
def dlq_ls(max_messages: int, stage: str, endpoint: str | None, as_json: bool) -> None:
    """List DLQ messages (without moving them): keys, receive count, the last error."""
    dep = deployment(stage, endpoint)
    listed = peek(dep.client("sqs"), Queues(dep.queue_url, dep.dlq_url), max_messages)
    catalog = Catalog(dep.client("dynamodb"), dep.table)
    for message in listed:
        errors = []
        for full in message["keys"]:
            bucket, _, key = full.partition("/")
            record = catalog.get(bucket, key) if key else None
            errors.append((record or {}).get("detail", "-") if record else "-")
        message["errors"] = errors
    if as_json:
        echo_json(listed)
        return
    if not listed:
        click.echo("the DLQ is empty")
        return
    rows = [("message", "key", "receives", "last error")]
    for m in listed:
        for full, error in zip(m["keys"], m["errors"], strict=True):
            rows.append(
                (
                    m["message_id"][:12],
                    full.partition("/")[2] or full,
                    str(m["receive_count"]),
                    error[:80],
                )
            )
    click.echo(table(rows))


@main.command()
@click.option("--dry-run", is_flag=True, help="list what would move, move nothing")
@click.option("--max", "max_messages", type=click.IntRange(min=1), help="move at most N")
@target_options
def redrive(
    dry_run: bool, max_messages: int | None, stage: str, endpoint: str | None, as_json: bool
) -> None:
    """Move DLQ messages back to the images queue (AWS: invokes the redrive function)."""
    dep = deployment(stage, endpoint)
    if dep.is_local:
        result = run_redrive(
            dep.client("sqs"),
            Queues(dep.queue_url, dep.dlq_url),
            max_messages=max_messages,
            dry_run=dry_run,
            use_move_task=dep.local_stack.endpoint.kind != "moto",
        )
    else:
        payload: dict[str, object] = {"dry_run": dry_run}
        if max_messages is not None:
            payload["max_messages"] = max_messages
        resp = dep.client("lambda").invoke(
            FunctionName=dep.redrive_function, Payload=json.dumps(payload).encode()
        )
        result = json.loads(resp["Payload"].read())
        if "FunctionError" in resp or "error" in result:
            raise click.ClickException(f"redrive failed: {result}")
    if as_json:
        echo_json(result)
    elif dry_run:
        click.echo(f"{len(result.get('messages', []))} messages would move (dry run):")
        for m in result.get("messages", []):
            click.echo(
                f"  {m['message_id'][:12]}  {', '.join(m['keys'])}  receives={m['receive_count']}"
            )
    else:
        click.echo(
            f"moved {result['moved']}, {result['remaining']} left in the DLQ"
            + (f" (move task {result['task']})" if result.get("task") else "")
        )
