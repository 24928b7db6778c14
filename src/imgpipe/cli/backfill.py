"""`imgpipe backfill`: process what is already in the uploads bucket."""

from __future__ import annotations

import fcntl
import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import replace
from pathlib import Path

import click

from ..backfill import MAX_RATE, Answer, Ask, BackfillError, Checkpoint, invoke
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
    type=click.FloatRange(min=0.1, max=MAX_RATE),
    help="messages per second into the queue, at most 1,000 (default: the stage's backfillRate)",
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
            ask, planned = _load(path)
            if ask.checkpoint.done:
                raise click.ClickException(f"the run in {path} is finished; start a new one")
        else:
            if not dry_run and path.exists() and not _load(path)[0].checkpoint.done:
                raise click.ClickException(
                    f"{path} holds an unfinished run: add --resume to continue it, or delete it"
                )
            mode = "settings-changed" if if_settings_changed else "missing"
            start = Checkpoint(prefix=prefix, inventory=inventory, mode=mode)
            ask = Ask(start, rate=rate, min_age=min_age)
            planned = _plan(dep, ask, slice_seconds, say, dry_run=dry_run, yes=yes, as_json=as_json)
            if planned == 0:
                return
        checkpoint = _pass(
            dep, ask, slice_seconds, max_messages, say, path=path, planned=planned
        ).checkpoint
        if as_json:
            echo_json({"checkpoint": checkpoint.to_json(), "checkpoint_file": str(path)})
        elif checkpoint.done:
            click.echo(_summary(checkpoint) + f" (checkpoint: {printable(str(path))})")
        else:
            click.echo(
                f"{_summary(checkpoint)}; stopped: resume with --resume ({printable(str(path))})"
            )


Say = Callable[[str], None]


def _plan(
    dep: Deployment,
    ask: Ask,
    slice_seconds: int,
    say: Say,
    *,
    dry_run: bool,
    yes: bool,
    as_json: bool,
) -> int:
    """The dry pass every new run starts with: what needs work, its cost and duration.
    Returns how many images a real run is to queue (0: stop here)."""
    estimate = _pass(dep, replace(ask, dry_run=True), slice_seconds, None, say)
    planned = estimate.checkpoint.counts["queued"]
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
    ask: Ask,
    slice_seconds: int,
    max_messages: int | None,
    say: Say,
    *,
    path: Path | None = None,
    planned: int = 0,
) -> Answer:
    """Slices until the source ends (or ``max_messages`` are queued), saving the checkpoint
    after each one when ``path`` is given."""
    started = time.monotonic()
    base = ask.checkpoint.counts["queued"]
    while True:
        queued_here = ask.checkpoint.counts["queued"] - base
        cap = None if max_messages is None else max_messages - queued_here
        ask = replace(ask, max_seconds=slice_seconds, max_messages=cap)
        answer = _invoke(dep, ask)
        ask = replace(ask, checkpoint=answer.checkpoint)
        if path is not None:
            _save(path, ask, planned)
        counts = answer.checkpoint.counts
        elapsed = time.monotonic() - started
        say(_progress(counts, counts["queued"] - base, elapsed, planned, ask.dry_run))
        if answer.checkpoint.done or (max_messages and counts["queued"] - base >= max_messages):
            return answer


def _invoke(dep: Deployment, ask: Ask) -> Answer:
    try:
        return invoke(dep.client("lambda"), dep.backfill_function, ask)
    except BackfillError as exc:
        raise click.ClickException(f"backfill failed: {printable(str(exc))}") from None


def _progress(
    counts: dict[str, int], queued_here: int, elapsed: float, planned: int, dry: bool
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


def _skipped(counts: dict[str, int]) -> str:
    """Why the rest were left alone, in words."""
    parts = [f"{counts['current']:,} current (done under the stage's settings)"]
    if counts["recent"]:
        parts.append(
            f"{counts['recent']:,} too recent (uploaded within --min-age: their own S3 events"
            " will process them; --min-age 0 to include them)"
        )
    if counts.get("unchanged"):
        parts.append(
            f"{counts['unchanged']:,} unchanged (not finished yet: --if-settings-changed only"
            " re-renders finished images)"
        )
    return "; ".join(parts)


def _summary(checkpoint: Checkpoint) -> str:
    counts = checkpoint.counts
    return f"queued {counts['queued']:,} of {counts['listed']:,} listed; {_skipped(counts)}"


def _report_estimate(answer: Answer, as_json: bool) -> None:
    guess, counts = answer.estimate, answer.checkpoint.counts
    if guess is None:
        raise click.ClickException("the backfill function answered no estimate")
    if as_json:
        echo_json({"counts": answer.checkpoint.to_json()["counts"], "estimate": guess.to_json()})
        return
    detectors = ",".join(guess.detectors) or "none"
    click.echo(
        f"{guess.images:,} of {counts['listed']:,} listed objects need work; {_skipped(counts)}\n"
        f"estimated cost: {_dollars(guess.dollars)}"
        f" (Rekognition detectors: {detectors}; {guess.memory_mb} MB;"
        " list prices in src/imgpipe/prices.json)\n"
        f"estimated duration: {duration(guess.seconds)} at {guess.per_second:,.1f} images/s,"
        f" bound by {guess.bound_by} (maximumConcurrency {guess.concurrency})"
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


def _load(path: Path) -> tuple[Ask, int]:
    """The ask a checkpoint file holds, and how many images its run planned to queue."""
    try:
        doc = json.loads(path.read_text())
        if not isinstance(doc, dict):
            raise BackfillError("not a JSON object")
        planned = doc.get("planned", 0)
        return Ask.from_json(doc["request"]), planned if isinstance(planned, int) else 0
    except FileNotFoundError:
        raise click.ClickException(f"no checkpoint file {path}") from None
    except (ValueError, KeyError, TypeError, BackfillError) as exc:
        raise click.ClickException(f"{path} is not a backfill checkpoint: {exc}") from None


def _save(path: Path, ask: Ask, planned: int) -> None:
    """Atomically: an interruption leaves the previous checkpoint or this one, never half."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"request": ask.to_json(), "planned": planned}, indent=2) + "\n")
    tmp.replace(path)
    if sys.platform != "win32":
        path.chmod(0o600)
