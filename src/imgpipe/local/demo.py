"""``make demo``: a local stack, real photos uploaded, results shown as a table."""

from __future__ import annotations

import io
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from ..catalog import Catalog
from .deploy import deploy, project_dir
from .endpoint import up
from .runner import Runner
from .stack import Stack, discover

FINAL = {"DONE", "REJECTED", "FAILED", "DELETED"}
PHOTOS_ENV = "IMGPIPE_DEMO_PHOTOS"


@dataclass(frozen=True, slots=True)
class Upload:
    name: str
    data: bytes


def corpus_dir() -> Path:
    explicit = os.environ.get(PHOTOS_ENV)
    if explicit:
        return Path(explicit)
    return project_dir().parent / "shared" / "corpus" / "exif-orientation"


def generated_photos(count: int = 3) -> list[Upload]:
    """A few synthetic photos, for machines without the shared corpus."""
    uploads = []
    for i in range(count):
        im = Image.new("RGB", (1600 + 200 * i, 1200), (40 * i, 90, 160))
        draw = ImageDraw.Draw(im)
        draw.rectangle((100, 100, 700, 900), fill=(250, 200, 40))
        draw.text((150, 150), f"imgpipe demo {i}", fill=(0, 0, 0))
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=90)
        uploads.append(Upload(f"generated-{i}.jpg", buf.getvalue()))
    return uploads


def load_photos(folder: Path) -> list[Upload]:
    if not folder.is_dir():
        return []
    return [
        Upload(p.name, p.read_bytes())
        for p in sorted(folder.iterdir())
        if p.suffix.lower() in {".jpg", ".jpeg", ".png", ".webp", ".gif", ".tif", ".tiff"}
    ]


def wait_final(
    catalog: Catalog,
    bucket: str,
    keys: Sequence[str],
    timeout: float,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, dict[str, Any]]:
    """Poll the catalog until every key has a final status or ``timeout`` passes."""
    records: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for key in keys:
            if key not in records:
                record = catalog.get(bucket, key)
                if record is not None and record.get("status") in FINAL:
                    records[key] = record
        if progress is not None:
            progress(len(records), len(keys))
        if len(records) == len(keys):
            break
        time.sleep(0.25)
    return records


def format_table(keys: Sequence[str], records: dict[str, dict[str, Any]]) -> str:
    header = ("key", "status", "original", "thumbnails", "labels / text", "ms")
    rows: list[tuple[str, ...]] = [header]
    for key in keys:
        rec = records.get(key)
        if rec is None:
            rows.append((key, "PENDING", "-", "-", "-", "-"))
            continue
        original = (
            f"{rec['width']}x{rec['height']} {rec['size'] / 1024:.0f} KiB"
            if "width" in rec
            else "-"
        )
        thumbs = " ".join(f"{t['width']}x{t['height']}" for t in rec.get("thumbnails", []))
        status = rec["status"] + (f" ({rec['reason']})" if rec.get("reason") else "")
        rows.append((key, status, original, thumbs or "-", _findings(rec), f"{rec.get('ms', '-')}"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _findings(record: dict[str, Any]) -> str:
    labels = [f"{x['name']} {x['confidence']:.0f}" for x in record.get("labels", [])[:3]]
    text = [f'"{t["text"]}"' for t in record.get("text", [])[:2]]
    faces = len(record.get("faces", []))
    found = labels + text + ([f"{faces} face{'s' * (faces > 1)}"] if faces else [])
    return ", ".join(found)[:60] or "-"


def download_thumbnails(stack: Stack, records: dict[str, dict[str, Any]], out: Path) -> int:
    s3 = stack.client("s3")
    count = 0
    for rec in records.values():
        for thumb in rec.get("thumbnails", []):
            target = out / thumb["key"].removeprefix("thumbnails/")
            target.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(stack.derived_bucket, thumb["key"], str(target))
            count += 1
    return count


def run_demo(out: Path, timeout: float = 180.0, say: Callable[[str], None] = print) -> int:
    started = time.monotonic()
    ep = up()
    say(f"endpoint: {ep.url} ({ep.kind})")
    say("deploying serverless.yml (stage local) with the Serverless CLI ...")
    deploy(ep, quiet=True)
    stack = discover(ep)
    photos = load_photos(corpus_dir()) or generated_photos()
    prefix = f"demo/{time.strftime('%Y%m%d-%H%M%S')}/"
    keys = [prefix + p.name for p in photos]
    catalog = Catalog(stack.client("dynamodb"), stack.table)
    with Runner(stack) as runner:
        say(f"local runner: {runner.concurrency} workers polling {stack.queue_url}")
        s3 = stack.client("s3")
        for photo, key in zip(photos, keys, strict=True):
            s3.put_object(Bucket=stack.uploads_bucket, Key=key, Body=photo.data)
        say(f"uploaded {len(photos)} photos to s3://{stack.uploads_bucket}/{prefix}")

        shown = [-1]

        def progress(done: int, total: int) -> None:
            if done != shown[0]:  # only changes: the line stays readable when piped
                shown[0] = done
                print(f"\r  final: {done}/{total}", end="", flush=True)

        records = wait_final(catalog, stack.uploads_bucket, keys, timeout, progress)
        print()
    say(format_table(keys, records))
    saved = download_thumbnails(stack, records, out)
    say(
        f"\n{len(records)}/{len(keys)} final in {time.monotonic() - started:.1f}s. "
        f"{saved} thumbnails in s3://{stack.derived_bucket}/thumbnails/{prefix} "
        f"and copied to {out}/{prefix}"
    )
    say("The endpoint keeps running for `imgpipe` commands (imgpipe ls, imgpipe status KEY);")
    say("`.venv/bin/imgpipe local run` serves the gallery; `make local-down` stops it all.")
    return 0 if len(records) == len(keys) else 1
