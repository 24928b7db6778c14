"""S3 reads and writes of originals and derivatives."""

from __future__ import annotations

from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from .imaging import ImageRejected, Limits, Thumbnail, check_size

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import ObjectIdentifierTypeDef

_MISSING = {"NoSuchKey", "404", "NotFound"}


def thumbnail_key(source_key: str, thumb: Thumbnail) -> str:
    """Deterministic, so re-processing the same source overwrites instead of adding objects."""
    return f"thumbnails/{source_key}/{thumb.name}.{thumb.extension}"


def thumbnail_prefix(source_key: str) -> str:
    return f"thumbnails/{source_key}/"


class ObjectStore:
    def __init__(self, client: S3Client) -> None:
        self._s3 = client

    def fetch(self, bucket: str, key: str, limits: Limits) -> tuple[bytes, str]:
        """The object's bytes and ETag. Refuses by size before reading the body, so an oversized
        upload costs one GET header, not its download. A vanished object is permanent."""
        try:
            resp = self._s3.get_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _MISSING:
                raise ImageRejected("missing", "the object no longer exists") from None
            raise
        body = resp["Body"]
        try:
            check_size(int(resp.get("ContentLength", 0)), limits)
            return body.read(), str(resp.get("ETag", "")).strip('"')
        finally:
            body.close()

    def put_thumbnail(self, bucket: str, source_key: str, thumb: Thumbnail) -> str:
        key = thumbnail_key(source_key, thumb)
        self._s3.put_object(
            Bucket=bucket,
            Key=key,
            Body=thumb.data,
            ContentType=thumb.content_type,
            CacheControl="public, max-age=31536000, immutable",
        )
        return key

    def delete_derivatives(self, bucket: str, source_key: str) -> int:
        """Delete every thumbnail of ``source_key``; returns how many objects went."""
        deleted = 0
        paginator = self._s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket, Prefix=thumbnail_prefix(source_key)):
            keys: list[ObjectIdentifierTypeDef] = [
                {"Key": o["Key"]} for o in page.get("Contents", [])
            ]
            if keys:
                self._s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
                deleted += len(keys)
        return deleted
