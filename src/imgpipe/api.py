"""The status API: `GET /images/{key+}` and `GET /images?prefix=&status=&limit=&cursor=`.

One class, the same for the Lambda (API Gateway HTTP API, payload v2) and for the local stack's
loopback server, so both answer the same requests the same way. Thumbnails are returned as
short-lived presigned GET URLs: the buckets stay private.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import quote

from .catalog import Catalog, PageKey
from .codec import Json, JsonObject
from .outcomes import FINAL, Status
from .record import ImageRecord, to_public

if TYPE_CHECKING:
    from .deployment import Deployment
    from .ports import CatalogReader, Presigner

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
    # more headers: a 405's Allow, a redirect's Location, Vary
    headers: Mapping[str, str] = field(default_factory=dict)

    def as_lambda(self) -> JsonObject:
        headers: JsonObject = {"content-type": "application/json", "cache-control": "no-store"}
        headers.update(self.headers)
        return {
            "statusCode": self.status,
            "headers": headers,
            "body": json.dumps(self.body, ensure_ascii=False),
        }


_LIMIT = re.compile(r"[0-9]{1,3}")  # ASCII digits only: str.isdigit() accepts "²"
MAX_CURSOR = 2048  # characters; one key of 1,024 bytes fits with room to spare
MAX_READS = 3  # DynamoDB Query calls per list request; then the page ends early, with a cursor


def key_parameter(param: str, raw_path: str) -> str:
    """The image key of ``GET /images/{key+}`` from the HTTP API event's ``pathParameters.key``
    and ``rawPath``.

    AWS decodes path parameters before the integration sees them ("API Gateway decodes
    URL-encoded request parameters prior to passing them to your backend integration", HTTP
    API developer guide, *Routes*); its ``rawPath`` decodes every escape but ``%25``. MiniStack
    (1.5) passes that ``rawPath`` form as the parameter too, so a key with ``%`` would arrive
    still holding ``%25``. Where the parameter *is* ``rawPath``'s tail, that last step is done
    here. On AWS the two differ exactly when ``%25`` occurs (the parameter has ``%``, the path
    ``%25``), so there the parameter is taken as it is."""
    if "%25" in param and raw_path.endswith("/" + param):
        return param.replace("%25", "%")
    return param


def check_key(key: str, what: str = "key") -> str:
    """``key`` if it is well formed (what the published contract says: 1 to 1,024 characters,
    no control characters), else BadRequest. One that is well formed but longer than S3's
    1,024 bytes of UTF-8 names no object: ``fits_s3`` tells."""
    if not key:
        raise BadRequest(f"the {what} must not be empty")
    if len(key) > MAX_KEY_BYTES:
        raise BadRequest(f"the {what} must be at most {MAX_KEY_BYTES} characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in key):
        raise BadRequest(f"the {what} contains control characters")
    try:
        key.encode()
    except UnicodeEncodeError:  # a lone surrogate: no UTF-8 for it, so no S3 key either
        raise BadRequest(f"the {what} is not valid UTF-8") from None
    return key


def fits_s3(key: str) -> bool:
    """Whether ``key`` can be an S3 key (and a DynamoDB sort key): at most 1,024 bytes."""
    return len(key.encode()) <= MAX_KEY_BYTES


def encode_cursor(last: PageKey | None) -> str | None:
    """Where the next page starts: a key of this API's own bucket (the bucket is never taken
    from a cursor, so a forged one can only start the listing elsewhere in it)."""
    if last is None:
        return None
    return base64.urlsafe_b64encode(json.dumps({"k": last.key}).encode()).decode()


def decode_cursor(cursor: str, bucket: str) -> PageKey:
    refused = BadRequest("cursor is not one this API returned")
    if len(cursor) > MAX_CURSOR:
        raise refused
    try:
        value = json.loads(base64.urlsafe_b64decode(cursor.encode("ascii")))
    except (binascii.Error, ValueError, UnicodeError, RecursionError):
        raise refused from None
    if not isinstance(value, dict) or set(value) != {"k"} or not isinstance(value["k"], str):
        raise refused
    try:
        if not fits_s3(check_key(value["k"], "cursor")):
            raise refused
        return PageKey(bucket, value["k"])
    except BadRequest:
        raise refused from None


def parse_limit(raw: str) -> int:
    if not _LIMIT.fullmatch(raw) or not 1 <= int(raw) <= MAX_LIMIT:
        raise BadRequest(f"limit must be a number from 1 to {MAX_LIMIT}")
    return int(raw)


def parse_status(raw: str | None) -> Status | None:
    """None when not asked; exactly one of the statuses (as the contract lists them) else."""
    if raw is None:
        return None
    if raw not in FINAL:
        raise BadRequest(f"status must be one of {', '.join(sorted(FINAL))}")
    return Status(raw)


@dataclass(frozen=True, slots=True)
class Page:
    records: list[ImageRecord]
    cursor: str | None


class StatusApi:
    def __init__(
        self,
        catalog: CatalogReader,
        presigner: Presigner,
        uploads_bucket: str,
        derived_bucket: str,
        *,
        cdn_base: str = "",
    ):
        self.catalog = catalog
        self.presigner = presigner
        self.uploads_bucket = uploads_bucket
        self.derived_bucket = derived_bucket
        self.cdn_base = cdn_base  # delivery cdn: https://<distribution>, serving thumbnails/

    @classmethod
    def of(cls, dep: Deployment) -> StatusApi:
        from .storage import Presigned

        return cls(
            Catalog(dep.client("dynamodb"), dep.table),
            Presigned(dep.client("s3")),
            dep.uploads_bucket,
            dep.derived_bucket,
        )

    def handle(
        self, method: str, path: str, query: Mapping[str, str], *, within: str = ""
    ) -> Response:
        """``path`` is decoded (``/images/a b.jpg``). Never raises for any input: malformed
        requests are 400s with a one-line reason. ``within``: the caller sees only keys under
        this prefix (an owner's ``users/<id>/``); anything else is as if it did not exist."""
        try:
            if method != "GET":
                message = f"{method[:10]!r} is not allowed; use GET"
                return Response(405, {"message": message}, {"allow": "GET"})
            unknown = sorted(set(query) - _QUERY_FIELDS)
            if unknown:
                names = ", ".join(repr(n[:40]) for n in unknown[:3])
                raise BadRequest(f"unknown query parameters {names}; expected {_EXPECTED}")
            if path in ("/images", "/images/"):
                page = self.page(query, within)
                items: list[Json] = [self.public(r) for r in page.records]
                return Response(200, {"items": items, "cursor": page.cursor})
            if path.startswith("/images/"):
                key = check_key(path.removeprefix("/images/"))
                mine = key.startswith(within) and fits_s3(key)
                record = self.record(key) if mine else None
                if record is None:
                    return Response(404, {"message": "no image with that key"})
                return Response(200, self.public(record))
            return Response(404, {"message": "no such route; try /images or /images/<key>"})
        except BadRequest as exc:
            return Response(400, {"message": str(exc)})

    def public(self, record: ImageRecord) -> JsonObject:
        """The public document (see record.to_public), each thumbnail with a presigned URL."""
        doc = to_public(record)
        thumbs, pictures = doc["thumbnails"], doc["pictures"]
        assert isinstance(thumbs, list) and isinstance(pictures, list)
        urls = [self.url(ref.key) for ref in record.thumbnails]
        for thumb, url in zip(thumbs, urls, strict=True):
            assert isinstance(thumb, dict)
            thumb["url"] = url
        for picture in pictures:
            assert isinstance(picture, dict) and isinstance(picture["sources"], list)
            for source in picture["sources"]:
                assert isinstance(source, dict) and isinstance(source["thumbnail"], int)
                source["url"] = urls[source["thumbnail"]]
        return doc

    def url(self, derived_key: str) -> str:
        if self.cdn_base:  # the distribution's origin path is thumbnails/: no signature
            return f"{self.cdn_base}/{quote(derived_key.removeprefix('thumbnails/'))}"
        return self.presigner.get_url(self.derived_bucket, derived_key, URL_TTL)

    def record(self, key: str) -> ImageRecord | None:
        return self.catalog.get(self.uploads_bucket, key)

    def page(self, query: Mapping[str, str], within: str = "") -> Page:
        limit = parse_limit(query.get("limit", str(DEFAULT_LIMIT)))
        status = parse_status(query.get("status"))
        prefix = query.get("prefix", "")
        if prefix and not fits_s3(check_key(prefix, "prefix")):
            return Page([], None)  # longer than any key can be: it starts none
        if not prefix.startswith(within):
            if not within.startswith(prefix):
                return Page([], None)  # wholly outside what the caller may see
            prefix = within  # a wider prefix narrows to the caller's own keys
        cursor = query.get("cursor", "")
        start = decode_cursor(cursor, self.uploads_bucket) if cursor else None
        if start is not None and not start.key.startswith(prefix):
            # DynamoDB refuses an ExclusiveStartKey outside the key condition (a 500 here);
            # a cursor of this API is always inside the prefix it was returned for.
            raise BadRequest("cursor is not one this API returned for this prefix")
        records, last = self.catalog.page(
            self.uploads_bucket,
            prefix=prefix,
            status=status,
            limit=limit,
            start=start,
            max_reads=MAX_READS,
        )
        return Page(records, encode_cursor(last))


_QUERY_FIELDS = frozenset({"prefix", "status", "limit", "cursor"})
_EXPECTED = ", ".join(sorted(_QUERY_FIELDS))
