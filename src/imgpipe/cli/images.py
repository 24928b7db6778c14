"""`imgpipe upload | status | ls | get`: put photos in, see what became of them."""

from __future__ import annotations

import contextlib
import os
import shlex
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Protocol

import click

from ..api import Page, StatusApi, decode_cursor, encode_cursor
from ..catalog import Catalog, PageKey
from ..deployment import Access, Deployment
from ..outcomes import FINAL, Status
from ..record import ImageRecord, ThumbnailRef, to_document
from ..uploads import content_type_of
from . import deployment, echo_json, printable, table, target_options
from .files import files_under
from .upload_api import upload_via_api
from .watch import wait_final


def _files(paths: tuple[Path, ...], prefix: str) -> list[tuple[Path, str]]:
    """(file, key) for every file named or under a folder named: a folder's files keep their
    path below it. Two different files that would get the same key (``README`` in ``a/`` and
    in ``b/``) stop the upload before anything is sent: the second would replace the first."""
    found: list[tuple[Path, str]] = []
    for path in paths:
        if path.is_dir():
            for file in files_under(path):
                found.append((file, prefix + file.relative_to(path).as_posix()))
        else:
            found.append((path, prefix + path.name))
    by_key: dict[str, list[Path]] = {}
    unique: list[tuple[Path, str]] = []
    for file, key in found:
        same = by_key.setdefault(key, [])
        if any(f.resolve() == file.resolve() for f in same):
            continue  # the same file named twice is uploaded once
        same.append(file)
        unique.append((file, key))
    clashes = {key: files for key, files in by_key.items() if len(files) > 1}
    if clashes:
        lines = [f"  {key}: {', '.join(str(f) for f in files)}" for key, files in clashes.items()]
        raise click.ClickException(
            printable(
                f"{len(clashes)} key(s) would be written by more than one file; nothing uploaded"
                " (upload the folders one at a time with --prefix, or rename):\n" + "\n".join(lines)
            )
        )
    return unique


@contextlib.contextmanager
def _processing(dep: Deployment) -> Iterator[None]:
    """Make sure something processes the uploads while we wait: on the local stack, its event
    source mapping (enabled for the wait if it was paused), as on AWS."""
    if not dep.is_local:
        yield
        return
    from ..local.stack import set_trigger

    if set_trigger(dep, True):
        yield
        return
    click.echo("the event source mapping was paused: enabling it for this wait", err=True)
    try:
        yield
    finally:
        set_trigger(dep, False)


def _summary(record: ImageRecord) -> tuple[str, ...]:
    status = record.status + (f" ({record.reason})" if record.reason else "")
    original = f"{record.image.width}x{record.image.height}" if record.image else "-"
    thumbs = " ".join(f"{t.width}x{t.height}" for t in record.thumbnails)
    labels = ", ".join(x.name for x in record.findings.labels[:3]) if record.findings else ""
    return (
        record.key,
        status,
        original,
        thumbs or "-",
        labels or "-",
        "-" if record.ms is None else str(record.ms),
    )


HEADER = ("key", "status", "original", "thumbnails", "top labels", "ms")


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--prefix", default="", help="key prefix, e.g. trips/2026/")
@click.option("--wait", is_flag=True, help="wait for every upload's final status and show them")
@click.option("--timeout", type=float, default=300.0, show_default=True, help="for --wait, seconds")
@click.option(
    "--via-api",
    is_flag=True,
    help="through the stage's POST /uploads, as an app's user: only execute-api:Invoke needed;"
    " the stage chooses the keys (--prefix does not apply)",
)
@click.option(
    "--api-url",
    envvar="IMGPIPE_API_URL",
    help="with --via-api: the HTTP API's URL [default: the stage's, from its stack]",
)
@target_options
def upload(
    paths: tuple[Path, ...],
    prefix: str,
    wait: bool,
    timeout: float,
    via_api: bool,
    api_url: str | None,
    stage: str,
    endpoint: str | None,
    as_json: bool,
) -> None:
    """Upload files or folders (multipart above 8 MB), optionally waiting for the results.

    Exits 1 if any upload FAILED or had no final status within --timeout."""
    if via_api:
        if prefix:
            raise click.UsageError("--prefix does not apply with --via-api: the stage keys uploads")
        listed = [path for path, _ in _files(paths, "")]
        url, access = _api_of(api_url, stage, endpoint)
        raise SystemExit(upload_via_api(listed, url, access, wait, timeout, as_json))
    files = _files(paths, prefix)  # clashing keys stop here, before any stack is needed
    dep = deployment(stage, endpoint)
    s3 = dep.client("s3")
    etags: dict[str, str] = {}
    total = sum(path.stat().st_size for path, _ in files)
    with click.progressbar(length=total, label="uploading", file=sys.stderr, show_pos=True) as bar:
        for path, key in files:
            # the type a browser would give it (image/heic too): S3 serves the original so
            ctype = content_type_of(path.name)
            extra = {"ContentType": ctype} if ctype else None
            s3.upload_file(str(path), dep.uploads_bucket, key, ExtraArgs=extra, Callback=bar.update)
            head = s3.head_object(Bucket=dep.uploads_bucket, Key=key)
            etags[key] = str(head["ETag"]).strip('"')
    if not wait:
        if as_json:
            echo_json(
                [{"key": k, "etag": e, "bucket": dep.uploads_bucket} for k, e in etags.items()]
            )
        else:
            click.echo(
                printable(f"uploaded {len(files)} files to s3://{dep.uploads_bucket}/{prefix}")
            )
        return
    catalog = Catalog(dep.client("dynamodb"), dep.table)
    with (
        _processing(dep),
        click.progressbar(
            length=len(files), label="processing", file=sys.stderr, show_pos=True
        ) as bar,
    ):

        def progress(done: int, total: int) -> None:
            bar.update(done - bar.pos)

        # this upload's outcome (its ETag), not a previous version's
        records = wait_final(catalog, dep.uploads_bucket, etags, timeout, progress)
    raise SystemExit(_report(dep, records, list(etags), timeout, as_json))


def _report(
    dep: Deployment,
    records: Mapping[str, ImageRecord],
    keys: list[str],
    waited: float,
    as_json: bool,
) -> int:
    """The outcomes of an upload --wait, then what to do about the FAILED and the PENDING;
    the exit status (1 if any)."""
    if as_json:
        echo_json(
            [
                to_document(records[k]) if k in records else {"key": k, "status": "PENDING"}
                for k in keys
            ]
        )
    else:
        _echo_results(records, keys)
    failed = [k for k, r in records.items() if r.status is Status.FAILED]
    if failed and not as_json:
        click.echo(what_next_after_failure(dep, len(failed)), err=True)
    pending = [k for k in keys if k not in records]
    if pending and not as_json:
        click.echo(where_pending(dep, pending, waited), err=True)
    return 1 if failed or pending else 0


def _api_of(api_url: str | None, stage: str, endpoint: str | None) -> tuple[str, Access]:
    """The HTTP API to upload through, and the credentials to sign with: an explicit URL with
    the caller's own (nothing else needed), else the stage's from its stack."""
    if api_url:
        return api_url, Access()
    dep = deployment(stage, endpoint)
    if not dep.api_url:
        raise click.ClickException(f"{dep.name} has no HTTP API to upload through")
    return dep.api_url, dep.access


def stage_flag(stage: str) -> str:
    """What a command hint adds for ``stage`` (nothing for the default, local)."""
    return "" if stage == "local" else f" --stage {stage}"


def where_pending(dep: Deployment, keys: list[str], waited: float) -> str:
    """Uploads with no outcome after the wait: how many are in the DLQ, and what the queue
    holds for the rest, with what to run next."""
    from ..queues import SqsQueues
    from ..redrive import Queues, peek
    from .dlq import user_key

    stage = stage_flag(dep.stage)
    head = f"{len(keys)} still PENDING after {waited:.0f} s"
    try:
        sqs = dep.client("sqs")
        parked = {
            user_key(k)
            for m in peek(SqsQueues(sqs), Queues(dep.queue_url, dep.dlq_url), 100)
            for k in m.keys
        }
        attributes = sqs.get_queue_attributes(
            QueueUrl=dep.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
    except Exception:  # noqa: BLE001 - a hint: without the queues, say it plainly
        return f"{head}: `imgpipe status{stage} KEY` tells when each ends"
    in_dlq = sum(k in parked for k in keys)
    waiting = attributes.get("ApproximateNumberOfMessages", "?")
    in_flight = attributes.get("ApproximateNumberOfMessagesNotVisible", "?")
    said = f"{head}: {in_dlq} in the DLQ (`imgpipe dlq ls{stage}`)" if in_dlq else head + ":"
    rest = len(keys) - in_dlq
    if rest:
        said += (
            f"{',' if in_dlq else ''} {rest} queued or being retried (the images queue holds"
            f" {waiting} waiting, {in_flight} in flight); `imgpipe status{stage} KEY` tells when"
            " each ends"
        )
    return said


def what_next_after_failure(dep: Deployment, count: int) -> str:
    """A FAILED upload's message reaches the DLQ once its last receive's visibility timeout
    runs out: say when, and what to do then."""
    try:
        attributes = dep.client("sqs").get_queue_attributes(
            QueueUrl=dep.queue_url, AttributeNames=["VisibilityTimeout"]
        )["Attributes"]
        when = f"within about {int(attributes['VisibilityTimeout'])} s"
    except Exception:  # noqa: BLE001 - a hint: without the queue's setting, say it plainly
        when = "once the queue's visibility timeout runs out"
    stage = stage_flag(dep.stage)
    return (
        f"{count} FAILED after every retry: the message lands in the DLQ {when}. Then "
        f"`imgpipe dlq ls{stage}` shows why; fix the cause, `imgpipe redrive{stage} --dry-run`, "
        f"then `imgpipe redrive{stage}`."
    )


def _echo_results(records: Mapping[str, ImageRecord], keys: list[str]) -> None:
    """The table, then what was found in each photo, as `imgpipe status` shows it."""
    rows: list[tuple[str, ...]] = [HEADER]
    for key in keys:
        record = records.get(key)
        rows.append(
            _summary(record) if record else (key, "PENDING (timed out)", "-", "-", "-", "-")
        )
    click.echo(table(rows))
    for key in keys:
        found = _findings_lines(records[key]) if key in records else []
        if found:
            click.echo(printable(f"{key}:"))
            for line in found:
                click.echo(printable(f"  {line}"))


@click.command()
@click.argument("key")
@target_options
def status(key: str, stage: str, endpoint: str | None, as_json: bool) -> None:
    """The record of one upload: status, metadata, thumbnails (with presigned URLs), labels."""
    dep = deployment(stage, endpoint)
    api = StatusApi.of(dep)
    record = api.record(key)
    if record is None and _uploaded(dep, key):
        # no outcome yet: what `imgpipe upload --wait` shows as PENDING
        if as_json:
            echo_json({"key": key, "status": "PENDING"})
            return
        click.echo(printable(f"{key}  PENDING"))
        click.echo(
            "  uploaded, no outcome yet: queued, being processed or retried; if it stays so, "
            f"`imgpipe dlq ls{stage_flag(stage)}` says whether "
            "it is in the DLQ"
        )
        return
    if record is None:
        raise click.ClickException(f"no image with key {key!r}: see `imgpipe ls`")
    if as_json:
        echo_json(api.public(record))
        return
    click.echo(table([HEADER, _summary(record)]))
    for line in _findings_lines(record):
        click.echo(printable(f"  {line}"))
    for thumb in record.thumbnails:
        click.echo(printable(f"  {thumb.name}: {api.url(thumb.key)}"))


def _uploaded(dep: Deployment, key: str) -> bool:
    """Whether the uploads bucket holds ``key`` (a HEAD; False if it cannot be asked)."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        dep.client("s3").head_object(Bucket=dep.uploads_bucket, Key=key)
    except (ClientError, BotoCoreError):
        return False
    return True


def _findings_lines(record: ImageRecord) -> list[str]:
    """Labels (with confidence), each text line, the face count: what the labeler found."""
    found = record.findings
    if found is None:
        return []
    lines = []
    if found.labels:
        lines.append("labels: " + ", ".join(f"{x.name} {x.confidence:.0f}%" for x in found.labels))
    lines += [f'text: "{line.text}" ({line.confidence:.0f}%)' for line in found.text]
    if found.faces:
        lines.append(f"faces: {len(found.faces)}")
    return lines


_FORMATS = ("jpeg", "png", "webp", "avif")


@click.command("open")
@click.argument("key")
@click.option("--size", default="large", show_default=True, help="thumbnail name")
@click.option("--format", "fmt", type=click.Choice(_FORMATS), help="[default: JPEG or PNG if any]")
@click.option("--print", "print_only", is_flag=True, help="print the URL, do not open it")
@target_options
def open_thumbnail(
    key: str,
    size: str,
    fmt: str | None,
    print_only: bool,
    stage: str,
    endpoint: str | None,
    as_json: bool,
) -> None:
    """Open a thumbnail in the browser (a presigned URL, valid 15 minutes); where there is no
    display (SSH, CI) the URL is printed instead."""
    api = StatusApi.of(deployment(stage, endpoint))
    url = api.url(_thumbnail(api.record(key), key, size, fmt).key)
    if as_json:
        echo_json({"key": key, "size": size, "url": url})
    elif print_only or not _has_display() or click.launch(url) != 0:
        click.echo(printable(url))
    else:
        click.echo(printable(f"opened {key} ({size}) in the browser"), err=True)


# Which of a size's formats a file viewer is likeliest to show: the fallback formats first.
_VIEWABLE = {"image/jpeg": 0, "image/png": 1, "image/webp": 2, "image/avif": 3}


def _thumbnail(
    record: ImageRecord | None, key: str, size: str, fmt: str | None = None
) -> ThumbnailRef:
    """The ``size`` thumbnail of ``key``'s record (in ``fmt``, else the most widely viewable
    format it has), or an error that says what there is."""
    if record is None:
        raise click.ClickException(f"no image with key {key!r}: see `imgpipe ls`")
    sized = [t for t in record.thumbnails if t.name == size]
    if not sized:
        have = ", ".join(dict.fromkeys(t.name for t in record.thumbnails))
        have = have or f"none: the upload is {record.status}"
        raise click.ClickException(f"no {size!r} thumbnail for {key!r} ({have})")
    if fmt is not None:
        wanted = "image/jpeg" if fmt in ("jpeg", "jpg") else f"image/{fmt}"
        found = [t for t in sized if t.content_type == wanted]
        if not found:
            have = ", ".join(t.content_type.removeprefix("image/") for t in sized)
            raise click.ClickException(f"no {fmt} {size!r} thumbnail for {key!r} ({have})")
        return found[0]
    return min(sized, key=lambda t: _VIEWABLE.get(t.content_type, 9))


def _has_display() -> bool:
    if sys.platform in {"darwin", "win32"}:
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


LABEL_SEARCH_PAGES = 20  # pages read per `ls --label` call before it hands back a cursor
LIMIT_DEFAULT = 25


PENDING = "PENDING"


@click.command("ls")
@click.option(
    "--status",
    "status_filter",
    type=click.Choice([*sorted(FINAL), PENDING], case_sensitive=False),
    help="only this outcome; PENDING: uploads with no outcome yet (as `imgpipe status` says)",
)
@click.option("--prefix", default="")
@click.option(
    "--label",
    help="only images with this label or a label under it (any case): dog, animal, text",
)
@click.option("--limit", type=click.IntRange(1, 100), default=LIMIT_DEFAULT, show_default=True)
@click.option("--cursor", help="continue from a previous page")
@target_options
def list_images(
    status_filter: str | None,
    prefix: str,
    label: str | None,
    limit: int,
    cursor: str | None,
    stage: str,
    endpoint: str | None,
    as_json: bool,
) -> None:
    """List uploads and their status, a page at a time."""
    query = {"limit": str(limit), "prefix": prefix}
    if status_filter:
        query["status"] = status_filter.upper()
    if cursor:
        query["cursor"] = cursor
    dep = deployment(stage, endpoint)
    api = StatusApi.of(dep)
    if query.get("status") == PENDING:
        if label:
            raise click.UsageError("--label needs an outcome: PENDING uploads have no labels")
        _list_pending(dep, prefix, limit, cursor, as_json, stage)
        return
    try:
        records, next_cursor = _labelled(api, query, label, limit) if label else _one(api, query)
    except ValueError as exc:  # BadRequest: a cursor from elsewhere
        raise click.ClickException(str(exc)) from None
    if as_json:
        echo_json({"items": [api.public(r) for r in records], "cursor": next_cursor})
        return
    if not records:
        click.echo(f"no images labelled {label!r}" if label else "no images")
    else:
        click.echo(table([HEADER, *(_summary(r) for r in records)]))
    if next_cursor:
        again = _same_listing(status_filter, prefix, label, limit, stage)
        click.echo(printable(f"more: imgpipe ls{again} --cursor {next_cursor}"))


PENDING_SEARCH_KEYS = 20_000  # keys looked at per call: then the page ends early, with a cursor


def pending_keys(
    dep: Deployment,
    prefix: str,
    limit: int,
    start_after: str = "",
    *,
    budget: int = PENDING_SEARCH_KEYS,
    page_size: int = 1000,
) -> tuple[list[str], str | None]:
    """Uploads under ``prefix`` with no record yet, in key order: up to ``limit``, and the last
    key looked at when there may be more. The bucket's listing, a page at a time, each page's
    records read in one batch; after ``budget`` keys (a bucket of finished photos holds no
    pending one to stop at) the call ends with what it found and a cursor."""
    catalog = Catalog(dep.client("dynamodb"), dep.table)
    found: list[str] = []
    seen = 0
    pages = (
        dep.client("s3")
        .get_paginator("list_objects_v2")
        .paginate(
            Bucket=dep.uploads_bucket,
            Prefix=prefix,
            StartAfter=start_after,
            PaginationConfig={"PageSize": page_size},
        )
    )
    for page in pages:
        keys = [o["Key"] for o in page.get("Contents", [])]
        known = catalog.get_many(dep.uploads_bucket, keys) if keys else {}
        for key in keys:
            seen += 1
            if key not in known:
                found.append(key)
            if len(found) == limit or seen == budget:
                return found, key
    return found, None


def _list_pending(
    dep: Deployment, prefix: str, limit: int, cursor: str | None, as_json: bool, stage: str
) -> None:
    try:
        start = decode_cursor(cursor, dep.uploads_bucket).key if cursor else ""
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    keys, last = pending_keys(dep, prefix, limit, start)
    next_cursor = encode_cursor(PageKey(dep.uploads_bucket, last)) if last else None
    if as_json:
        items = [{"key": key, "status": PENDING} for key in keys]
        echo_json({"items": items, "cursor": next_cursor})
        return
    if not keys:
        click.echo(
            f"none without an outcome among the next {PENDING_SEARCH_KEYS} uploads"
            if next_cursor
            else "no uploads without an outcome"
        )
    else:
        rows = [(key, PENDING, "-", "-", "-", "-") for key in keys]
        click.echo(table([HEADER, *rows]))
        click.echo(
            "  uploaded, no outcome yet: queued, being processed or retried; "
            f"`imgpipe dlq ls{stage_flag(stage)}` says which are in the DLQ"
        )
    if next_cursor:
        again = _same_listing(PENDING, prefix, None, limit, stage)
        click.echo(printable(f"more: imgpipe ls{again} --cursor {next_cursor}"))


def _same_listing(
    status_filter: str | None, prefix: str, label: str | None, limit: int, stage: str
) -> str:
    """The options of this listing, for the next page's command: without them the cursor
    would continue an unfiltered listing."""
    parts = []
    if stage != "local":
        parts += ["--stage", stage]
    if status_filter:
        parts += ["--status", status_filter.lower()]
    if prefix:
        parts += ["--prefix", prefix]
    if label:
        parts += ["--label", label]
    if limit != LIMIT_DEFAULT:
        parts += ["--limit", str(limit)]
    return "".join(f" {shlex.quote(p)}" for p in parts)


def _one(api: StatusApi, query: dict[str, str]) -> tuple[list[ImageRecord], str | None]:
    page = api.page(query)
    return list(page.records), page.cursor


class Pager(Protocol):
    def page(self, query: Mapping[str, str]) -> Page: ...


def _labelled(
    api: Pager, query: dict[str, str], label: str, limit: int
) -> tuple[list[ImageRecord], str | None]:
    """Whole pages until ``limit`` images match or LABEL_SEARCH_PAGES were read (the catalog
    has no index by label: a rare label may need several calls, each continuing from the
    cursor it prints)."""
    found: list[ImageRecord] = []
    cursor = query.get("cursor")
    for _ in range(LABEL_SEARCH_PAGES):
        page = api.page({**query, "limit": "100", **({"cursor": cursor} if cursor else {})})
        for record in page.records:
            if len(found) == limit:  # the page is full: the next one starts after its last
                return found, encode_cursor(PageKey(record.bucket, found[-1].key))
            if _has_label(record, label):
                found.append(record)
        cursor = page.cursor
        if not cursor:
            break
    return found, cursor


def _has_label(record: ImageRecord, wanted: str) -> bool:
    return record.findings is not None and any(x.matches(wanted) for x in record.findings.labels)


@click.command()
@click.argument("key")
@click.option("--size", default="medium", show_default=True, help="thumbnail name")
@click.option("--format", "fmt", type=click.Choice(_FORMATS), help="[default: JPEG or PNG if any]")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path))
@target_options
def get(
    key: str,
    size: str,
    fmt: str | None,
    output: Path | None,
    stage: str,
    endpoint: str | None,
    as_json: bool,
) -> None:
    """Download one thumbnail of an upload."""
    dep = deployment(stage, endpoint)
    record = Catalog(dep.client("dynamodb"), dep.table).get(dep.uploads_bucket, key)
    thumb = _thumbnail(record, key, size, fmt)
    target = output or Path(f"{Path(key).stem}-{size}.{thumb.key.rsplit('.', 1)[-1]}")
    dep.client("s3").download_file(dep.derived_bucket, thumb.key, str(target))
    written = target.stat().st_size
    if as_json:
        echo_json(
            {
                "key": key,
                "size": size,
                "path": str(target),
                "width": thumb.width,
                "height": thumb.height,
                "bytes": written,
            }
        )
    else:
        click.echo(printable(f"{target} ({thumb.width}x{thumb.height}, {written} bytes)"))
