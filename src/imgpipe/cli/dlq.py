"""`imgpipe dlq ls` and `imgpipe redrive`: after an incident."""

from __future__ import annotations

import json

import click

from ..catalog import Catalog
from ..codec import JsonObject, structure, unstructure
from ..deployment import Deployment
from ..queues import SqsQueues
from ..redrive import Queues, RedriveResult, peek
from . import deployment, echo_json, printable, table, target_options


@click.group()
def dlq() -> None:
    """The dead-letter queue: what failed after every retry."""


@dlq.command("ls")
@click.option("--max", "max_messages", type=click.IntRange(min=1), default=100, show_default=True)
@target_options
def dlq_ls(max_messages: int, stage: str, endpoint: str | None, as_json: bool) -> None:
    """List DLQ messages (without moving them): keys, receive count, the last error."""
    dep = deployment(stage, endpoint)
    listed = peek(SqsQueues(dep.client("sqs")), Queues(dep.queue_url, dep.dlq_url), max_messages)
    catalog = Catalog(dep.client("dynamodb"), dep.table)

    def last_error(full: str) -> str:
        bucket, _, key = full.partition("/")
        record = catalog.get(bucket, key) if key else None
        return record.detail if record is not None and record.detail else "-"

    errors = [[last_error(full) for full in m.keys] for m in listed]
    if as_json:
        echo_json(
            [
                {**(unstructure(m) or {}), "errors": e}  # type: ignore[dict-item]
                for m, e in zip(listed, errors, strict=True)
            ]
        )
        return
    if not listed:
        click.echo("the DLQ is empty")
        return
    rows = [("message", "key", "receives", "last error")]
    for m, message_errors in zip(listed, errors, strict=True):
        for full, error in zip(m.keys, message_errors, strict=True):
            # the whole error: its cause is at the end ("... (SlowDown: reduce your rate)")
            rows.append((m.message_id[:12], user_key(full), str(m.receive_count), error))
    click.echo(table(rows))


def user_key(full: str) -> str:
    """``bucket/key`` as messages name it -> the key, as the user uploaded it (one format in
    `dlq ls` and `redrive --dry-run`)."""
    return full.partition("/")[2] or full


@click.command()
@click.option("--dry-run", is_flag=True, help="list what would move, move nothing")
@click.option("--max", "max_messages", type=click.IntRange(min=1), help="move at most N")
@target_options
def redrive(
    dry_run: bool, max_messages: int | None, stage: str, endpoint: str | None, as_json: bool
) -> None:
    """Move DLQ messages back to the images queue: invokes the stage's redrive function, the
    one sender besides S3 that the images queue accepts (the local stack's too)."""
    result = _invoke_redrive(deployment(stage, endpoint), dry_run, max_messages)
    if as_json:
        echo_json(result.as_json())
    elif dry_run:
        click.echo(f"{len(result.messages)} messages would move (dry run):")
        for m in result.messages:
            keys = printable(", ".join(user_key(k) for k in m.keys))
            click.echo(f"  {m.message_id[:12]}  {keys}  receives={m.receive_count}")
    else:
        click.echo(
            f"moved {result.moved}, {result.remaining} left in the DLQ"
            + (f" (move task {result.task})" if result.task else "")
        )


def _invoke_redrive(dep: Deployment, dry_run: bool, max_messages: int | None) -> RedriveResult:
    payload: JsonObject = {"dry_run": dry_run}
    if max_messages is not None:
        payload["max_messages"] = max_messages
    resp = dep.client("lambda").invoke(
        FunctionName=dep.redrive_function, Payload=json.dumps(payload).encode()
    )
    answer = json.loads(resp["Payload"].read())
    if "FunctionError" in resp or not isinstance(answer, dict) or "error" in answer:
        raise click.ClickException(f"redrive failed: {answer}")
    return structure(RedriveResult, answer)
