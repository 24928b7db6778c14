"""`imgpipe dlq ls` and `imgpipe redrive`: after an incident."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime

import click

from ..catalog import Catalog
from ..codec import JsonObject, structure, unstructure
from ..deployment import Deployment
from ..ports import MoveTask
from ..queues import SqsQueues
from ..redrive import Patience, Queues, RedriveResult, follow, peek
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
    task = SqsQueues(dep.client("sqs")).latest_move(dep.dlq_url)
    if as_json:
        echo_json(
            [
                {**(unstructure(m) or {}), "errors": e}  # type: ignore[dict-item]
                for m, e in zip(listed, errors, strict=True)
            ]
        )
        return
    if task is not None:
        click.echo(describe_task(task))
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


def describe_task(task: MoveTask) -> str:
    """The DLQ's latest move task, for `dlq ls` and a followed redrive."""
    started = (
        datetime.fromtimestamp(task.started_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        if task.started_ms
        else "?"
    )
    of = f" of {task.to_move}" if task.to_move is not None else ""
    line = f"move task {task.status} (started {started}): {task.moved}{of} moved"
    return line + (f"; {printable(task.failure_reason)}" if task.failure_reason else "")


@click.command()
@click.option("--dry-run", is_flag=True, help="list what would move, move nothing")
@click.option("--max", "max_messages", type=click.IntRange(min=1), help="move at most N")
@click.option(
    "--follow-minutes",
    type=click.FloatRange(min=0),
    default=30,
    show_default=True,
    help="keep following a move task still RUNNING when the function answers (0: do not)",
)
@target_options
def redrive(
    dry_run: bool,
    max_messages: int | None,
    follow_minutes: float,
    stage: str,
    endpoint: str | None,
    as_json: bool,
) -> None:
    """Move DLQ messages back to the images queue: invokes the stage's redrive function, the
    one sender besides S3 that the images queue accepts (the local stack's too). On AWS it
    follows SQS's move task to its end and exits 1 if SQS failed or cancelled it."""
    dep = deployment(stage, endpoint)
    result = _invoke_redrive(dep, dry_run, max_messages)
    if result.task_status == "RUNNING" and follow_minutes > 0:
        if not as_json:
            click.echo(printable(result.summary()))
        result = _follow_on(dep, result, follow_minutes * 60, quiet=as_json)
    if as_json:
        echo_json(result.as_json())
    elif dry_run:
        click.echo(f"{len(result.messages)} messages would move (dry run):")
        for m in result.messages:
            keys = printable(", ".join(user_key(k) for k in m.keys))
            click.echo(f"  {m.message_id[:12]}  {keys}  receives={m.receive_count}")
    else:
        click.echo(printable(result.summary()))
    if result.task_failed:
        raise click.ClickException(
            f"SQS's move task ended {result.task_status}: "
            + printable(result.failure_reason or "?")
            + ("" if result.copied else "; run `imgpipe redrive` again once the cause is fixed")
        )


def _follow_on(
    dep: Deployment, result: RedriveResult, seconds: float, *, quiet: bool
) -> RedriveResult:
    """Follow a task the function left RUNNING, with the caller's own credentials."""
    queues = SqsQueues(dep.client("sqs"))

    def progress(task: MoveTask) -> None:
        if not quiet:
            click.echo(f"  {describe_task(task)}", err=True)

    task = follow(queues, dep.dlq_url, Patience.within(seconds), on_progress=progress)
    if task is None:
        return result
    return replace(
        result,
        moved=task.moved,
        remaining=queues.depth(dep.dlq_url),
        task_status=task.status,
        task_moved=task.moved,
        task_to_move=task.to_move,
        failure_reason=task.failure_reason,
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
