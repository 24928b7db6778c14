"""The status API: `GET /images/{key+}` and `GET /images?prefix=&status=&limit=&cursor=`.

One class, the same for the Lambda (API Gateway HTTP API, payload v2) and for the local stack's
loopback server, so both answer the same requests the same way. Thumbnails are returned as
short-lived presigned GET URLs: the buckets stay private.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from .catalog import FINAL, Catalog

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

URL_TTL = 900  # seconds a presigned thumbnail URL stays valid
MAX_KEY_BYTES = 1024  # S3's own limit
MAX_LIMIT = 100
DEFAULT_LIMIT = 25


class BadRequest(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: dict[str, Any]

    def as_lambda(self) -> dict[str, Any]:
        return {
            "statusCode": self.status,
            "headers": {"content-type": "application/json", "cache-control": "no-store"},
            "body": json.dumps(self.body, ensure_ascii=False, default=str),
        }


def _check_key(key: str) -> str:
    if not key or len(key.encode()) > MAX_KEY_BYTES:
        raise BadRequest(f"the key must be 1 to {MAX_KEY_BYTES} bytes of UTF-8")
    if any(ord(c) < 32 or ord(c) == 127 for c in key):
        raise BadRequest("the key contains control characters")
    return key


def encode_cursor(last: dict[str, Any] | None) -> str | None:
    if not last:
        return None
    return base64.urlsafe_b64encode(json.dumps(last).encode()).decode()


def decode_cursor(cursor: str) -> dict[str, Any]:
    try:
        value = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise BadRequest("cursor is not one this API returned") from None
    if not isinstance(value, dict) or set(value) != {"bucket", "key"}:
        raise BadRequest("cursor is not one this API returned")
    return value


class Target(Protocol):
    """A local Stack or a Deployment: names and a client factory."""

    @property
    def table(self) -> str: ...
    @property
    def uploads_bucket(self) -> str: ...
    @property
    def derived_bucket(self) -> str: ...
    def client(self, service: str) -> Any: ...


class StatusApi:
    def __init__(self, catalog: Catalog, s3: S3Client, uploads_bucket: str, derived_bucket: str):
        self.catalog = catalog
        self.s3 = s3
        self.uploads_bucket = uploads_bucket
        self.derived_bucket = derived_bucket

    @classmethod
    def of(cls, target: Target) -> StatusApi:
        return cls(
            Catalog(target.client("dynamodb"), target.table),
            target.client("s3"),
            target.uploads_bucket,
            target.derived_bucket,
        )

    def handle(self, method: str, path: str, query: dict[str, str]) -> Response:
        """``path`` is decoded (``/images/a b.jpg``)."""
        try:
            if method != "GET":
                return Response(405, {"message": f"{method} is not allowed; use GET"})
            if path in ("/images", "/images/"):
                return self.list(query)
            if path.startswith("/images/"):
                return self.get(_check_key(path.removeprefix("/images/")))
            return Response(404, {"message": f"no route {path}; try /images or /images/<key>"})
        except BadRequest as exc:
            return Response(400, {"message": str(exc)})

    def _with_urls(self, record: dict[str, Any]) -> dict[str, Any]:
        for thumb in record.get("thumbnails", []):
            thumb["url"] = self.s3.generate_presigned_url(
                "get_object",
                Params={"Bucket": self.derived_bucket, "Key": thumb["key"]},
                ExpiresIn=URL_TTL,
            )
        record.pop("notified", None)
        return record

    def get(self, key: str) -> Response:
        record = self.catalog.get(self.uploads_bucket, key)
        if record is None:
            return Response(404, {"message": f"no image with key {key!r}", "key": key})
        return Response(200, self._with_urls(record))

    def list(self, query: dict[str, str]) -> Response:
        raw_limit = query.get("limit", str(DEFAULT_LIMIT))
        if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_LIMIT:
            raise BadRequest(f"limit must be 1..{MAX_LIMIT}, got {raw_limit!r}")
        status = query.get("status", "").upper() or None
        if status is not None and status not in FINAL:
            raise BadRequest(f"status must be one of {', '.join(sorted(FINAL))}")
        prefix = query.get("prefix", "")
        if prefix:
            _check_key(prefix)
        start = decode_cursor(query["cursor"]) if query.get("cursor") else None
        items, last = self.catalog.page(
            self.uploads_bucket, prefix=prefix, status=status, limit=int(raw_limit), start=start
        )
        return Response(
            200, {"items": [self._with_urls(i) for i in items], "cursor": encode_cursor(last)}
        )
