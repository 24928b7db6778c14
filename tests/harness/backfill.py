"""Test harness for backfills on the local stack: a bucket that held objects before the pipeline
was attached (uploaded with its notifications off), small real photos to fill it with, and
`imgpipe backfill` as an operator runs it. Used by the functional test and bench/backfill.py.
Not part of the package."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from PIL import Image

from imgpipe.deployment import Deployment

from .cli import imgpipe


@contextmanager
def notifications_off(stack: Deployment) -> Iterator[None]:
    """The uploads bucket announces nothing inside the block: what is put there then is what
    an existing bucket holds when a team adopts the pipeline."""
    s3 = stack.client("s3")
    saved = s3.get_bucket_notification_configuration(Bucket=stack.uploads_bucket)
    saved.pop("ResponseMetadata", None)
    s3.put_bucket_notification_configuration(
        Bucket=stack.uploads_bucket, NotificationConfiguration={}
    )
    try:
        yield
    finally:
        s3.put_bucket_notification_configuration(
            Bucket=stack.uploads_bucket, NotificationConfiguration=saved
        )


def small_photos(sources: Sequence[Path], out: Path, side: int = 96) -> list[Path]:
    """Real photos, shrunk so thousands process in minutes (what is measured is the backfill,
    not the engine)."""
    made = []
    for source in sources:
        with Image.open(source) as im:
            im.thumbnail((side, side))
            buf = io.BytesIO()
            im.convert("RGB").save(buf, "JPEG", quality=80)
        path = out / f"{source.stem}.jpg"
        path.write_bytes(buf.getvalue())
        made.append(path)
    return made


def run_backfill(*args: str) -> dict[str, Any]:
    """`imgpipe backfill ... --json`; its JSON answer (fails with the CLI's own message)."""
    answer: dict[str, Any] = json.loads(imgpipe("backfill", "--json", *args).stdout)
    return answer
