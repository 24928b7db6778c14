"""`POST /uploads`: a presigned S3 POST for one new upload, so that an app's users upload
without AWS keys and without any say over where, how much or what kind.

The key is chosen here (a random id under the caller's prefix: ``users/<owner>/`` with a jwt
owner claim, else ``uploads/``), never by the client, so no request can overwrite another's
object; the client's file name is kept only as metadata. The form's policy pins that key, the
``Content-Type`` (an image type the pipeline reads), a byte range capped by the pipeline's own
size limit, and a short expiry; S3 refuses any upload outside it."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote

from .api import BadRequest, Response
from .codec import JsonObject

if TYPE_CHECKING:
    from .ports import Presigner

MAX_NAME = 200  # characters of the client's file name kept in the metadata
MAX_FILENAME = 255  # characters of a file name the API takes (a request stays within MAX_BODY)
MAX_BODY = 4096  # bytes of the request itself
# What the pipeline can read (imaging.formats), by the type a browser gives the file.
IMAGE_TYPES = {
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/webp": "webp",
    "image/gif": "gif",
    "image/tiff": "tif",
    "image/bmp": "bmp",
    "image/avif": "avif",
    "image/heic": "heic",
    "image/heif": "heif",
}
DEFAULT_PREFIX = "uploads/"
# A file's type by its extension, for clients that have a name and no type (browsers often
# give HEIC none; Python's mimetypes knows HEIC only where the system's tables do).
TYPE_OF_EXTENSION = {ext: ctype for ctype, ext in IMAGE_TYPES.items()} | {
    "jpeg": "image/jpeg",
    "jpe": "image/jpeg",
    "tiff": "image/tiff",
    "hif": "image/heif",
}


def content_type_of(filename: str) -> str:
    """The image type ``filename``'s extension names, or "" for anything else."""
    ext = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    return TYPE_OF_EXTENSION.get(ext, "")


@dataclass(frozen=True, slots=True)
class UploadRequest:
    content_type: str
    filename: str = ""
    size: int = 0  # what the client says it will send; 0: not said

    @classmethod
    def parse(cls, body: str, max_bytes: int) -> UploadRequest:
        if len(body.encode()) > MAX_BODY:
            raise BadRequest(f"the request is over {MAX_BODY} bytes")
        try:
            doc = json.loads(body or "{}")
        except ValueError:
            raise BadRequest("the request is not JSON") from None
        if not isinstance(doc, dict):
            raise BadRequest(
                'expected {"content_type": "image/jpeg", "filename": ..., "size": ...}'
            )
        unknown = sorted(set(doc) - {"content_type", "filename", "size"})
        if unknown:
            raise BadRequest(f"unknown fields {', '.join(repr(u[:40]) for u in unknown[:3])}")
        ctype = doc.get("content_type")
        if not isinstance(ctype, str) or ctype.lower() not in IMAGE_TYPES:
            raise BadRequest(f"content_type must be one of {', '.join(IMAGE_TYPES)}")
        name, size = doc.get("filename", ""), doc.get("size", 0)
        if not isinstance(name, str) or len(name) > MAX_FILENAME:
            raise BadRequest(f"filename must be a string of at most {MAX_FILENAME} characters")
        if type(size) is float and size.is_integer():
            size = int(size)  # JSON's 44.0 is the integer 44 (JSON Schema's reading too)
        if type(size) is not int or size < 0:
            raise BadRequest("size must be a number of bytes")
        if size > max_bytes:
            raise BadRequest(f"size {size} is over the limit of {max_bytes} bytes")
        return cls(ctype.lower(), name, size)


def new_key(within: str, content_type: str) -> str:
    return f"{within or DEFAULT_PREFIX}{uuid.uuid4().hex}.{IMAGE_TYPES[content_type]}"


def form(
    presigner: Presigner,
    bucket: str,
    key: str,
    request: UploadRequest,
    max_bytes: int,
    expires: int,
) -> JsonObject:
    """The presigned POST for ``key``: its URL and the fields to send before the file."""
    # Metadata travels as a form field: kept ASCII (percent-encoded), cut to a length.
    name = quote(request.filename[:MAX_NAME], safe=" ._-()")
    fields = {"Content-Type": request.content_type, "x-amz-meta-filename": name}
    conditions: list[object] = [
        {"key": key},
        {"Content-Type": request.content_type},
        {"x-amz-meta-filename": name},
        ["content-length-range", 1, max_bytes],
    ]
    url, signed = presigner.post_form(bucket, key, fields, conditions, expires)
    return {"url": url, "fields": dict(signed)}


def answer(
    presigner: Presigner, bucket: str, within: str, body: str, max_bytes: int, expires: int
) -> Response:
    """The route's answer: 201 with the form and where to poll, or 400 saying why not."""
    try:
        request = UploadRequest.parse(body, max_bytes)
    except BadRequest as exc:
        return Response(400, {"message": str(exc)})
    key = new_key(within, request.content_type)
    return Response(
        201,
        {
            "key": key,
            "upload": form(presigner, bucket, key, request, max_bytes, expires),
            "expires_in": expires,
            "max_bytes": max_bytes,
            "status": f"/images/{quote(key)}",
        },
    )
