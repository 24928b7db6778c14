"""Real images, made or taken from the shared corpus, and AWS events of their real shape: what
the tests and bench/ both need, in one importable place (tests/conftest.py turns them into
fixtures)."""

from __future__ import annotations

import copy
import io
import json
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT.parent / "shared" / "corpus" / "exif-orientation"
EVENTS = ROOT / "tests" / "events"


@cache
def _recorded(name: str) -> str:
    return (EVENTS / name).read_text()


def load_event(name: str) -> Any:
    """A fresh copy of a recorded payload in tests/events/ (see its README for sources)."""
    return json.loads(_recorded(name))


class Events:
    """Events of AWS's real shape (copies of tests/events/), changed only where a test says."""

    def s3_body(
        self,
        *keys: str,
        event: str = "ObjectCreated:Put",
        etag: str = "",
        sequencer: str = "",
        size: int = 1,
        bucket: str = "uploads",
        event_time: str = "2026-11-25T12:00:00.000Z",
    ) -> str:
        """An S3 notification body with one record per key. Keys are form-encoded as S3 sends
        them; an empty ETag or sequencer is left out, as moto leaves them out."""
        removed = event.startswith("ObjectRemoved:")
        template = load_event(
            "s3-object-removed-delete.json" if removed else "s3-object-created-put.json"
        )["Records"][0]
        records = []
        for key in keys:
            record = copy.deepcopy(template)
            record["eventName"], record["eventTime"] = event, event_time
            record["s3"]["bucket"].update(name=bucket, arn=f"arn:aws:s3:::{bucket}")
            obj: dict[str, object] = {"key": quote_plus(key, safe="/")}
            if not removed:
                obj["size"] = size
            if etag:
                obj["eTag"] = etag
            if sequencer:
                obj["sequencer"] = sequencer
            record["s3"]["object"] = obj
            records.append(record)
        return json.dumps({"Records": records})

    def sqs_record(self, message_id: str, body: str, receive_count: int = 1) -> Any:
        record = load_event("sqs-event.json")["Records"][0]
        record.update(messageId=message_id, receiptHandle=f"rh-{message_id}", body=body)
        record["attributes"]["ApproximateReceiveCount"] = str(receive_count)
        return record

    def upload_record(
        self,
        message_id: str,
        key: str,
        receive_count: int = 1,
        *,
        etag: str = "",
        sequencer: str = "",
        event: str = "ObjectCreated:Put",
    ) -> Any:
        """An SQS record carrying one S3 event for ``key`` in bucket "uploads"."""
        body = self.s3_body(key, event=event, etag=etag, sequencer=sequencer)
        return self.sqs_record(message_id, body, receive_count)

    def sqs_event(self, *records: Any) -> Any:
        return {"Records": list(records)}


def jpeg_bytes(
    size: tuple[int, int] = (640, 480), color: tuple[int, int, int] = (200, 80, 40)
) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def skimage_photo(name: str) -> Image.Image:
    """A photo shipped inside the scikit-image wheel (astronaut: one face; chelsea: a cat)."""
    from importlib.resources import files

    with Image.open(str(files("skimage") / "data" / name)) as im:
        return im.convert("RGB")


def sign_photo(text: str = "OPEN 24 HOURS", size: tuple[int, int] = (1200, 500)) -> Image.Image:
    """A rendered sign: dark letters on a light board, with a little texture around it."""
    from PIL import ImageDraw, ImageFont

    im = Image.linear_gradient("L").resize(size).convert("RGB")
    draw = ImageDraw.Draw(im)
    draw.rectangle((60, 120, size[0] - 60, size[1] - 120), fill=(245, 240, 225))
    font = ImageFont.load_default(size=96)
    draw.text((110, size[1] // 2 - 55), text, fill=(20, 20, 30), font=font)
    return im


def jpeg_of(im: Image.Image, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def varied_photos(corpus: Path) -> dict[str, bytes]:
    """Photos with faces, text, animals, objects and scenes, as 1024 px JPEGs (the size the
    labeler sees): what a concurrency test needs to hit every detector."""
    images = {name: skimage_photo(name) for name in SKIMAGE_VARIED}
    images["sign"] = sign_photo()
    for name in ("Portrait_1.jpg", "Landscape_1.jpg", "Portrait_5.jpg"):
        with Image.open(corpus / name) as opened:
            images[name] = opened.convert("RGB")
    out = {}
    for name, im in images.items():
        im.thumbnail((1024, 1024))
        out[name] = jpeg_of(im)
    return out


SKIMAGE_VARIED = (
    "astronaut.png",
    "chelsea.png",
    "coffee.png",
    "rocket.jpg",
    "camera.png",
    "page.png",
    "text.png",
    "motorcycle_left.png",
)


class LambdaContext:
    """The attributes Powertools and the handlers read from Lambda's context object."""

    function_name = "imgpipe-test-process"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:imgpipe-test-process"
    aws_request_id = "req-1"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000
