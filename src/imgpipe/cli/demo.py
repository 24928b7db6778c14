"""``make demo``: a local stack, real photos uploaded, results shown as a table."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..catalog import Catalog
from ..deployment import Deployment
from ..local.deploy import deploy
from ..local.endpoint import up
from ..local.project import project_dir
from ..local.stack import discover, set_trigger
from ..record import ImageRecord
from ..uploads import content_type_of
from . import table
from .watch import wait_final

PHOTOS_ENV = "IMGPIPE_DEMO_PHOTOS"


@dataclass(frozen=True, slots=True)
class Upload:
    name: str
    data: bytes


def corpus_dir() -> Path:
    """The shared corpus beside the checkout (18 camera photos, one per EXIF orientation), or
    $IMGPIPE_DEMO_PHOTOS: a bonus for the demo, the photos of make chaos and bench-backfill."""
    explicit = os.environ.get(PHOTOS_ENV)
    if explicit:
        return Path(explicit)
    return project_dir().parent / "shared" / "corpus" / "exif-orientation"


def own_photos_dir() -> Path:
    """The demo's own photos, in the repository (demo/photos/SOURCES.md): a face, text, a
    landscape, a rotated photo, HEIC, a PNG with alpha, an animated GIF, a broken file."""
    return project_dir() / "demo" / "photos"


def demo_photos() -> list[Upload]:
    """The repository's photos, then the shared corpus's where there is one."""
    return load_photos(own_photos_dir()) + load_photos(corpus_dir())


def load_photos(folder: Path) -> list[Upload]:
    if not folder.is_dir():
        return []
    return [
        Upload(p.name, p.read_bytes()) for p in sorted(folder.iterdir()) if content_type_of(p.name)
    ]


def format_table(keys: Sequence[str], records: dict[str, ImageRecord]) -> str:
    header = ("key", "status", "original", "thumbnails", "labels / text", "ms")
    rows: list[tuple[str, ...]] = [header]
    for key in keys:
        rec = records.get(key)
        if rec is None:
            rows.append((key, "PENDING", "-", "-", "-", "-"))
            continue
        original = (
            f"{rec.image.width}x{rec.image.height} {rec.size / 1024:.0f} KiB" if rec.image else "-"
        )
        thumbs = " ".join(f"{t.width}x{t.height}" for t in rec.thumbnails)
        status = rec.status + (f" ({rec.reason})" if rec.reason else "")
        ms = "-" if rec.ms is None else str(rec.ms)
        rows.append((key, status, original, thumbs or "-", findings_summary(rec), ms))
    return table(rows)  # keys, labels and OCR text are user input: escaped, aligned by width


def findings_summary(record: ImageRecord) -> str:
    """Top labels, the first text lines and the face count, in at most 60 characters."""
    found = record.findings
    if found is None:
        return "-"
    labels = [f"{x.name} {x.confidence:.0f}" for x in found.labels[:3]]
    text = [f'"{t.text}"' for t in found.text[:2]]
    faces = len(found.faces)
    parts = labels + text + ([f"{faces} face{'s' * (faces > 1)}"] if faces else [])
    return ", ".join(parts)[:60] or "-"


_UNSAFE_SEGMENTS = {"": None, ".": "%2E", "..": "%2E%2E"}


def local_path(out: Path, derived_key: str) -> Path:
    """Where a thumbnail is copied under ``out``: its key's segments as folders, but never
    outside ``out`` — keys are user input, and ``a/../../x`` or ``/etc/x`` are legal keys.
    Empty segments are dropped, ``.`` and ``..`` kept as their escapes."""
    segments = [
        _UNSAFE_SEGMENTS.get(part, part)
        for part in derived_key.removeprefix("thumbnails/").split("/")
    ]
    target = out.joinpath(*[s for s in segments if s])
    if not target.resolve().is_relative_to(out.resolve()):  # a symbolic link inside out
        raise ValueError(f"{derived_key!r} would be copied outside {out}")
    return target


def download_thumbnails(stack: Deployment, records: dict[str, ImageRecord], out: Path) -> int:
    s3 = stack.client("s3")
    count = 0
    for rec in records.values():
        for thumb in rec.thumbnails:
            target = local_path(out, thumb.key)
            target.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(stack.derived_bucket, thumb.key, str(target))
            count += 1
    return count


def run_demo(out: Path, timeout: float = 180.0, say: Callable[[str], None] = print) -> int:
    started = time.monotonic()
    ep = up()
    say(f"endpoint: {ep.url} ({ep.kind})")
    say("deploying serverless.yml (stage local) with the Serverless CLI ...")
    for line in deploy(ep, quiet=True):
        say(line)
    stack = discover(ep)
    set_trigger(stack, True)
    say(f"{stack.kind} runs the packaged process function from its SQS event source mapping")
    photos = demo_photos()
    prefix = f"demo/{time.strftime('%Y%m%d-%H%M%S')}/"
    keys = [prefix + p.name for p in photos]
    catalog = Catalog(stack.client("dynamodb"), stack.table)
    s3 = stack.client("s3")
    etags = {
        key: s3.put_object(Bucket=stack.uploads_bucket, Key=key, Body=photo.data)["ETag"]
        for photo, key in zip(photos, keys, strict=True)
    }
    etags = {key: etag.strip('"') for key, etag in etags.items()}
    say(f"uploaded {len(photos)} photos to s3://{stack.uploads_bucket}/{prefix}")

    shown = [-1]

    def progress(done: int, total: int) -> None:
        if done != shown[0]:  # only changes: the line stays readable when piped
            shown[0] = done
            print(f"\r  final: {done}/{total}", end="", flush=True)

    records = wait_final(catalog, stack.uploads_bucket, etags, timeout, progress)
    print()
    say(format_table(keys, records))
    saved = download_thumbnails(stack, records, out)
    say(
        f"\n{len(records)}/{len(keys)} final in {time.monotonic() - started:.1f}s. "
        f"{saved} thumbnails in s3://{stack.derived_bucket}/thumbnails/{prefix} "
        f"and copied to {out}/{prefix}"
    )
    say("The endpoint keeps running for `imgpipe` commands (imgpipe ls, imgpipe status KEY);")
    say("`imgpipe local run` serves the gallery (the CLI is .venv/bin/imgpipe in the checkout);")
    say("`make local-down` stops it all.")
    return 0 if len(records) == len(keys) else 1
