"""S3 reads of originals and writes/deletes of derivatives."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from .errors import Superseded
from .imaging import ImageRejected, Limits, Thumbnail, check_size

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import ObjectIdentifierTypeDef

_MISSING = {"NoSuchKey", "404", "NotFound"}
_CHANGED = {"PreconditionFailed", "412"}


def thumbnail_key(source_key: str, etag: str, thumb: Thumbnail) -> str:
    """Deterministic per version of the source: re-processing overwrites, and two versions
    processed at once never write to the same key (the loser removes its own)."""
    return f"thumbnails/{source_key}/{etag or 'noetag'}/{thumb.name}.{thumb.extension}"


class ObjectStore:
    def __init__(self, client: S3Client) -> None:
        self._s3 = client

    def fetch(self, bucket: str, key: str, etag: str, limits: Limits) -> tuple[bytes, str]:
        """The bytes and ETag of the version the event announced. Refuses by size before
        reading the body; a vanished object is permanent, a replaced one is superseded."""
        kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key}
        if etag:
            kwargs["IfMatch"] = etag
        try:
            resp = self._s3.get_object(**kwargs)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code in _MISSING:
                raise ImageRejected("missing", "the object no longer exists") from None
            if code in _CHANGED:
                raise Superseded("the object was replaced; its newer event will follow") from None
            raise
        body = resp["Body"]
        try:
            check_size(int(resp.get("ContentLength", 0)), limits)
            return body.read(), str(resp.get("ETag", "")).strip('"')
        finally:
            body.close()

    def put_thumbnail(self, bucket: str, source_key: str, etag: str, thumb: Thumbnail) -> str:
        key = thumbnail_key(source_key, etag, thumb)
        self._s3.put_object(
            Bucket=bucket,
            Key=key,
            Body=thumb.data,
            ContentType=thumb.content_type,
            CacheControl="public, max-age=31536000, immutable",
        )
        return key

    def put_document(self, bucket: str, key: str, body: bytes, content_type: str) -> None:
        self._s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)

    def delete(self, bucket: str, keys: Iterable[str]) -> int:
        """Delete exactly these keys (never a prefix: "a" is a prefix of "a/b.jpg"'s keys)."""
        wanted = sorted(set(keys))
        for start in range(0, len(wanted), 1000):
            objects: list[ObjectIdentifierTypeDef] = [
                {"Key": k} for k in wanted[start : start + 1000]
            ]
            self._s3.delete_objects(Bucket=bucket, Delete={"Objects": objects, "Quiet": True})
        return len(wanted)
