"""The status API: `GET /images/{key+}` and `GET /images?prefix=&status=&limit=&cursor=`.

One class, the same for the Lambda (API Gateway HTTP API, payload v2) and for the local stack's
loopback server, so both answer the same requests the same way. Thumbnails are returned as
short-lived presigned GET URLs: the buckets stay private.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .catalog import Catalog, PageKey
from .codec import Json, JsonObject, unstructure
from .outcomes import FINAL, Status
from .record import ImageRecord, to_document

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from .deployment import Deployment

URL_TTL = 900  # seconds a presigned thumbnail URL stays valid
MAX_KEY_BYTES = 1024  # S3's own limit
MAX_LIMIT = 100
DEFAULT_LIMIT = 25


class BadRequest(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: JsonObject

    def as_lambda(self) -> dict[str, object]:
        return {
            "statusCode": self.status,
            "headers": {"content-type": "application/json", "cache-control": "no-store"},
            "body": json.dumps(self.body, ensure_ascii=False),
        }


def check_key(key: str) -> str:
    if not key or len(key.encode()) > MAX_KEY_BYTES:
        raise BadRequest(f"the key must be 1 to {MAX_KEY_BYTES} bytes of UTF-8")
    if any(ord(c) < 32 or ord(c) == 127 for c in key):
        raise BadRequest("the key contains control characters")
    return key


def encode_cursor(last: PageKey | None) -> str | None:
    if last is None:
        return None
    raw = json.dumps({"bucket": last.bucket, "key": last.key}).encode()
    return base64.urlsafe_b64encode(raw).decode()


def decode_cursor(cursor: str) -> PageKey:
    try:
        value = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise BadRequest("cursor is not one this API returned") from None
    if not isinstance(value, dict) or set(value) != {"bucket", "key"}:
        raise BadRequest("cursor is not one this API returned")
    return PageKey(str(value["bucket"]), str(value["key"]))


@dataclass(frozen=True, slots=True)
class Page:
    records: list[ImageRecord]
    cursor: str | None


class StatusApi:
    def __init__(self, catalog: Catalog, s3: S3Client, uploads_bucket: str, derived_bucket: str):
        self.catalog = catalog
        self.s3 = s3
        self.uploads_bucket = uploads_bucket
        self.derived_bucket = derived_bucket

    @classmethod
    def of(cls, dep: Deployment) -> StatusApi:
        return cls(
            Catalog(dep.client("dynamodb"), dep.table),
            dep.client("s3"),
            dep.uploads_bucket,
            dep.derived_bucket,
        )

    def handle(self, method: str, path: str, query: Mapping[str, str]) -> Response:
        """``path`` is decoded (``/images/a b.jpg``)."""
        try:
            if method != "GET":
                return Response(405, {"message": f"{method} is not allowed; use GET"})
            if path in ("/images", "/images/"):
                page = self.page(query)
                items: list[Json] = [self.public(r) for r in page.records]
                return Response(200, {"items": items, "cursor": page.cursor})
            if path.startswith("/images/"):
                key = check_key(path.removeprefix("/images/"))
                record = self.record(key)
                if record is None:
                    return Response(404, {"message": f"no image with key {key!r}", "key": key})
                return Response(200, self.public(record))
            return Response(404, {"message": f"no route {path}; try /images or /images/<key>"})
        except BadRequest as exc:
            return Response(400, {"message": str(exc)})

    def public(self, record: ImageRecord) -> JsonObject:
        """The published document, each thumbnail with a presigned URL."""
        doc = to_document(record)
        thumbs: list[Json] = []
        for ref in record.thumbnails:
            thumb = unstructure(ref)
            assert isinstance(thumb, dict)
            thumb["url"] = self.url(ref.key)
            thumbs.append(thumb)
        doc["thumbnails"] = thumbs
        return doc

    def url(self, derived_key: str) -> str:
        return self.s3.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.derived_bucket, "Key": derived_key},
            ExpiresIn=URL_TTL,
        )

    def record(self, key: str) -> ImageRecord | None:
        return self.catalog.get(self.uploads_bucket, key)

    def page(self, query: Mapping[str, str]) -> Page:
        raw_limit = query.get("limit", str(DEFAULT_LIMIT))
        if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_LIMIT:
            raise BadRequest(f"limit must be 1..{MAX_LIMIT}, got {raw_limit!r}")
        raw_status = query.get("status", "").upper()
        if raw_status and raw_status not in FINAL:
            raise BadRequest(f"status must be one of {', '.join(sorted(FINAL))}")
        prefix = query.get("prefix", "")
        if prefix:
            check_key(prefix)
        start = decode_cursor(query["cursor"]) if query.get("cursor") else None
        records, last = self.catalog.page(
            self.uploads_bucket,
            prefix=prefix,
            status=Status(raw_status) if raw_status else None,
            limit=int(raw_limit),
            start=start,
        )
        return Page(records, encode_cursor(last))
