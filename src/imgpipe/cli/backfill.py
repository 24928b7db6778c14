"""`imgpipe backfill`: process what is already in the uploads bucket."""

from __future__ import annotations

import fcntl
import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import click

from ..backfill import BackfillError, Checkpoint, invoke
from ..costs import duration
from ..deployment import Deployment
from . import deployment, echo_json, printable, target_options


@click.command()
@click.option("--prefix", default="", help="only keys starting with this")
@click.option(
    "--inventory",
    default="",
    metavar="S3_URI",
    help="read the objects from an S3 Inventory report (s3://bucket/path/manifest.json, CSV) "
    "instead of listing the bucket",
)
@click.option(
    "--if-settings-changed",
    is_flag=True,
    help="only images already processed, under settings other than the stage's current ones",
)
@click.option("--dry-run", is_flag=True, help="count, cost and duration; send nothing")
@click.option(
    "--rate",
    type=click.FloatRange(min=0.1),
    help="messages per second into the queue (default: the stage's backfillRate)",
)
@click.option(
    "--min-age",
    type=click.IntRange(min=0),
    default=300,
    show_default=True,
    help="seconds: newer objects are left to their own S3 events",
)
@click.option(
    "--max-messages",
    type=click.IntRange(min=1),
    help="stop (resumably) after queueing this many",
)
@click.option(
    "--checkpoint",
    "checkpoint_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="where the run's progress is kept [default: imgpipe-backfill-<stage>.json here]",
)
@click.option("--resume", is_flag=True, help="continue the run the checkpoint file describes")
@click.option("--yes", is_flag=True, help="do not ask before sending")
@click.option(
    "--slice-seconds",
    type=click.IntRange(min=1, max=840),
    default=20,
    show_default=True,
    help="work per function call (progress is printed, and the checkpoint saved, after each)",
)
@target_options
def backfill(
    prefix: str,
    inventory: str,
    if_settings_changed: bool,
    dry_run: bool,
    rate: float | None,
    min_age: int,
    max_messages: int | None,
    checkpoint_path: Path | None,
    resume: bool,
    yes: bool,
    slice_seconds: int,
    stage: str,
    endpoint: str | None,
    as_json: bool,
) -> None:
    """Queue every object of the uploads bucket that has no result of its current bytes under
    the stage's current settings (or, with --if-settings-changed, only those made under other
    settings). It runs in the stage's backfill function (the one sender besides S3 the images
    queue accepts), a slice at a time; the checkpoint file says where to resume after an
    interruption. A backfill message never outranks a live upload's event, and an image done
    meanwhile costs the pipeline one catalog read.

    First a dry pass counts what needs work and prints what it costs and how long it takes at
    the stage's concurrency (--dry-run stops there)."""
    dep = deployment(stage, endpoint)
    path = checkpoint_path or Path(f"imgpipe-backfill-{stage}.json")
    say = (lambda _: None) if as_json else (lambda line: click.echo(line, err=True))
    with nullcontext() if dry_run else _only_run(path):
        if resume:
            saved = _load(path)
            request, planned = saved["request"], int(saved.get("planned", 0))
            if request["checkpoint"].get("done"):
                raise click.ClickException(f"the run in {path} is finished; start a new one")
        else:
            if not dry_run and path.exists() and not _load(path)["request"]["checkpoint"]["done"]:
                raise click.ClickException(
                    f"{path} holds an unfinished run: add --resume to continue it, or delete it"
                )
            mode = "settings-changed" if if_settings_changed else "missing"
            request = {"prefix": prefix, "inventory": inventory, "mode": mode, "min_age": min_age}
            request |= {} if rate is None else {"rate": rate}
            planned = _plan(
                dep, request, slice_seconds, say, dry_run=dry_run, yes=yes, as_json=as_json
            )
            if planned == 0:
                return
        result = _pass(dep, request, slice_seconds, max_messages, say, path=path, planned=planned)
        checkpoint = result["checkpoint"]
        if as_json:
            echo_json({"checkpoint": checkpoint, "checkpoint_file": str(path)})
        elif checkpoint["done"]:
            click.echo(_summary(checkpoint) + f" (checkpoint: {printable(str(path))})")
        else:
            click.echo(
                f"{_summary(checkpoint)}; stopped: resume with --resume ({printable(str(path))})"
            )


def _plan(
    dep: Deployment,
    request: dict[str, Any],
    slice_seconds: int,
    say: Any,
    *,
    dry_run: bool,
    yes: bool,
    as_json: bool,
) -> int:
    """The dry pass every new run starts with: what needs work, its cost and duration.
    Returns how many images a real run is to queue (0: stop here)."""
    estimate = _pass(dep, {**request, "dry_run": True}, slice_seconds, None, say)
    planned = int(estimate["checkpoint"]["counts"]["queued"])
    if dry_run or planned == 0 or not as_json:
        _report_estimate(estimate, as_json)
    if dry_run:
        return 0
    if planned == 0:
        if not as_json:
            click.echo("nothing to do: every image is current")
        return 0
    if not yes and not click.confirm(f"queue {planned} images?", err=True):
        raise click.Abort
    return planned


def _pass(
    dep: Deployment,
    request: dict[str, Any],
    slice_seconds: int,
    max_messages: int | None,
    say: Any,
    *,
    path: Path | None = None,
    planned: int = 0,
) -> dict[str, Any]:
    """Slices until the source ends (or ``max_messages`` are queued), saving the checkpoint
    after each one when ``path`` is given."""
    payload = dict(request)
    started = time.monotonic()
    base = int(payload.get("checkpoint", {}).get("counts", {}).get("queued", 0))
    while True:
        payload["max_seconds"] = slice_seconds
        if max_messages is not None:
            queued = int(payload.get("checkpoint", {}).get("counts", {}).get("queued", 0))
            payload["max_messages"] = max_messages - (queued - base)
        answer = _invoke(dep, payload)
        checkpoint = answer["checkpoint"]
        payload = {k: v for k, v in payload.items() if k not in ("prefix", "inventory", "mode")}
        payload["checkpoint"] = checkpoint
        if path is not None:
            _save(path, payload, planned)
        counts = checkpoint["counts"]
        elapsed = time.monotonic() - started
        say(_progress(counts, counts["queued"] - base, elapsed, planned, payload.get("dry_run")))
        if checkpoint["done"] or (max_messages and counts["queued"] - base >= max_messages):
            return answer


def _invoke(dep: Deployment, payload: dict[str, Any]) -> dict[str, Any]:
    try:
        return invoke(dep.client("lambda"), dep.backfill_function, payload)
    except BackfillError as exc:
        raise click.ClickException(f"backfill failed: {printable(str(exc))}") from None


def _progress(
    counts: dict[str, int], queued_here: int, elapsed: float, planned: int, dry: object
) -> str:
    verb = "would queue" if dry else "queued"
    rate = queued_here / elapsed if elapsed > 0 else 0.0
    line = (
        f"  listed {counts['listed']:,} · {verb} {counts['queued']:,}"
        f" · current {counts['current']:,} · recent {counts['recent']:,}"
    )
    if counts.get("unchanged"):
        line += f" · unchanged {counts['unchanged']:,}"
    if not dry:
        line += f" · {rate:,.1f}/s"
        if planned and rate > 0 and counts["queued"] < planned:
            line += f" · ETA {duration((planned - counts['queued']) / rate)}"
    return line


def _summary(checkpoint: dict[str, Any]) -> str:
    counts = checkpoint["counts"]
    return (
        f"queued {counts['queued']:,} of {counts['listed']:,} listed"
        f" ({counts['current']:,} current, {counts['recent']:,} too recent"
        + (f", {counts['unchanged']:,} unchanged" if counts.get("unchanged") else "")
        + ")"
    )


def _report_estimate(answer: dict[str, Any], as_json: bool) -> None:
    guess, counts = answer["estimate"], answer["checkpoint"]["counts"]
    if as_json:
        echo_json({"counts": counts, "estimate": guess})
        return
    detectors = ",".join(guess["detectors"]) or "none"
    click.echo(
        f"{guess['images']:,} of {counts['listed']:,} listed objects need work"
        f" ({counts['current']:,} current, {counts['recent']:,} too recent"
        + (f", {counts['unchanged']:,} unchanged" if counts.get("unchanged") else "")
        + ")\n"
        f"estimated cost: {_dollars(guess['dollars'])}"
        f" (Rekognition detectors: {detectors}; {guess['memory_mb']} MB;"
        " list prices in src/imgpipe/prices.json)\n"
        f"estimated duration: {duration(guess['seconds'])} at {guess['per_second']:,.1f} images/s,"
        f" bound by {guess['bound_by']} (maximumConcurrency {guess['concurrency']})"
    )


def _dollars(amount: float) -> str:
    return f"${amount:,.2f}" if amount >= 1 else f"${amount:.4f}"


@contextmanager
def _only_run(path: Path) -> Iterator[None]:
    """One run per checkpoint file at a time: two would send the same keys and overwrite each
    other's progress. An advisory lock on a file beside it, released when the run ends, or
    when its process dies."""
    lock_path = path.with_name(path.name + ".lock")
    with lock_path.open("a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise click.ClickException(
                f"another imgpipe backfill is using {printable(str(path))}; "
                "wait for it, or give this one its own --checkpoint"
            ) from None
        yield


def _load(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text())
        Checkpoint.from_json(doc["request"]["checkpoint"])
    except FileNotFoundError:
        raise click.ClickException(f"no checkpoint file {path}") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise click.ClickException(f"{path} is not a backfill checkpoint: {exc}") from None
    if not isinstance(doc, dict):
        raise click.ClickException(f"{path} is not a backfill checkpoint")
    return doc


def _save(path: Path, request: dict[str, Any], planned: int) -> None:
    """Atomically: an interruption leaves the previous checkpoint or this one, never half."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"request": request, "planned": planned}, indent=2) + "\n")
    tmp.replace(path)
    if sys.platform != "win32":
        path.chmod(0o600)
