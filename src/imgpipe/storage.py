"""S3 reads of originals and writes/deletes of derivatives."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import IO, TYPE_CHECKING, cast

from botocore.exceptions import ClientError

from .config import PRIVATE_CACHE
from .errors import CleanupIncomplete, raise_typed
from .imaging import Limits, Thumbnail, check_size
from .ports import Listed, LiveObject

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import (
        GetObjectOutputTypeDef,
        ListObjectsV2RequestPaginateTypeDef,
        ObjectIdentifierTypeDef,
    )


THUMBNAIL_CACHE = PRIVATE_CACHE


class ObjectStore:
    def __init__(self, client: S3Client, thumbnail_cache: str = THUMBNAIL_CACHE) -> None:
        self._s3 = client
        self._thumbnail_cache = thumbnail_cache

    def _get(self, bucket: str, key: str, etag: str) -> GetObjectOutputTypeDef:
        try:
            if etag:
                return self._s3.get_object(Bucket=bucket, Key=key, IfMatch=etag)
            return self._s3.get_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            raise_typed("s3", exc)  # gone: SourceMissing; replaced: SourceChanged

    def live(self, bucket: str, key: str, version_id: str = "") -> LiveObject | None:
        """What S3 holds at ``key`` now (that version, if given), or None when it is gone."""
        try:
            if version_id:
                resp = self._s3.head_object(Bucket=bucket, Key=key, VersionId=version_id)
            else:
                resp = self._s3.head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in ("404", "NoSuchKey", "NotFound", "NoSuchVersion", "405"):
                return None  # 405: a delete marker asked for by version
            raise_typed("s3", exc)
        return LiveObject(str(resp.get("ETag", "")).strip('"'), str(resp.get("VersionId") or ""))

    def fetch(self, bucket: str, key: str, etag: str, limits: Limits) -> tuple[bytes, str]:
        """The bytes and ETag of the version the event announced (``IfMatch``), refused by size
        before the body is read."""
        resp = self._get(bucket, key, etag)
        body = resp["Body"]
        try:
            check_size(int(resp.get("ContentLength", 0)), limits)
            return body.read(), str(resp.get("ETag", "")).strip('"')
        finally:
            body.close()

    def listing(
        self, bucket: str, prefix: str, after: str = "", page_size: int = 1000
    ) -> Iterator[Listed]:
        """The bucket's objects under ``prefix`` after the key ``after``, in key order."""
        pages = self._s3.get_paginator("list_objects_v2")
        request: ListObjectsV2RequestPaginateTypeDef = {
            "Bucket": bucket,
            "Prefix": prefix,
            "PaginationConfig": {"PageSize": page_size},
        }
        if after:
            request["StartAfter"] = after
        for page in pages.paginate(**request):
            for obj in page.get("Contents", []):
                etag = obj.get("ETag", "").strip('"')
                yield Listed(obj["Key"], etag, obj.get("Size", 0), obj["LastModified"])

    def read(self, bucket: str, key: str, limit: int) -> bytes:
        body = self._get(bucket, key, "")["Body"]
        try:
            return body.read(limit)
        finally:
            body.close()

    def stream(self, bucket: str, key: str) -> IO[bytes]:
        return cast("IO[bytes]", self._get(bucket, key, "")["Body"])

    def put_thumbnail(self, bucket: str, key: str, thumb: Thumbnail) -> None:
        """Keys are per source version (see derived.py): the bytes under one never change."""
        self._put(bucket, key, thumb.data, thumb.content_type, self._thumbnail_cache)

    def put_document(self, bucket: str, key: str, body: bytes, content_type: str) -> None:
        self._put(bucket, key, body, content_type, "no-cache")

    def _put(self, bucket: str, key: str, body: bytes, content_type: str, cache: str) -> None:
        try:
            self._s3.put_object(
                Bucket=bucket, Key=key, Body=body, ContentType=content_type, CacheControl=cache
            )
        except ClientError as exc:
            raise_typed("s3", exc)  # KeyTooLongError: the source key leaves no room

    def delete(self, bucket: str, keys: Iterable[str]) -> int:
        """Delete exactly these keys (never a prefix: "a" is a prefix of "a/b.jpg"'s keys).
        DeleteObjects answers 200 even when some keys failed: those raise CleanupIncomplete,
        so that the caller retries instead of believing they are gone."""
        wanted = sorted(set(keys))
        for start in range(0, len(wanted), 1000):
            objects: list[ObjectIdentifierTypeDef] = [
                {"Key": k} for k in wanted[start : start + 1000]
            ]
            resp = self._s3.delete_objects(
                Bucket=bucket, Delete={"Objects": objects, "Quiet": True}
            )
            errors = resp.get("Errors", [])
            if errors:
                first = errors[0]
                raise CleanupIncomplete(
                    f"{len(errors)} of {len(objects)} deletions failed, first "
                    f"{first.get('Key', '?')!r}: {first.get('Code', '?')}"
                )
        return len(wanted)


class Presigned:
    """``ports.Presigner`` with S3's own signatures (no request is sent: signing is local)."""

    def __init__(self, client: S3Client) -> None:
        self._s3 = client

    def get_url(self, bucket: str, key: str, expires: int) -> str:
        return self._s3.generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=expires
        )

    def post_form(
        self,
        bucket: str,
        key: str,
        fields: dict[str, str],
        conditions: list[object],
        expires: int,
    ) -> tuple[str, dict[str, str]]:
        post = self._s3.generate_presigned_post(
            bucket, key, Fields=fields, Conditions=conditions, ExpiresIn=expires
        )
        return post["url"], {k: str(v) for k, v in post["fields"].items()}
