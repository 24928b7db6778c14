"""The HTTP API's published contract (``openapi.json``), built from the types and constants
that build its answers, so the two cannot drift apart.

The record's fields come from ``ImageRecord``'s own annotations (the public ones,
``record.PUBLIC_FIELDS``), ``ImageInfo``'s and the labeler's dataclasses; the version from
``record.SCHEMA``; statuses and reasons from their enums; the uploads' types and limits from
``uploads``; the parameters' limits from ``api``. ``python -m imgpipe.contract`` writes the
document; ``tests/unit/test_contract.py`` fails when the committed file differs, and validates
answers the code builds (every field, both ways) against it.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import sys
import types
from typing import Any, Union, get_args, get_origin, get_type_hints

from .api import DEFAULT_LIMIT, MAX_CURSOR, MAX_KEY_BYTES, MAX_LIMIT
from .imaging import ImageInfo
from .imaging.types import Limits
from .labels import LabelResult
from .outcomes import FINAL, REASON_TEXT, Reason
from .record import FORMAT_OF, PUBLIC_FIELDS, SCHEMA, ImageRecord
from .renditions import FITS, FORMATS, LADDER, QUALITIES
from .uploads import IMAGE_TYPES, MAX_BODY, MAX_FILENAME

Schema = dict[str, Any]  # a JSON Schema (or OpenAPI) object, written out as JSON
REF = "#/components/schemas/"

# Keys and prefixes: S3's 1,024 bytes of UTF-8 are at most 1,024 characters; longer ones name
# nothing (404, or an empty page). No control characters (C0 and DEL): refused with 400.
KEY_PATTERN = "^[^\\u0000-\\u001f\\u007f]*$"
DEFAULT_MAX_BYTES = Limits().max_bytes  # the stage parameter maxBytes' default
ALWAYS = ("key", "status", "size", "attempts")  # of PUBLIC_FIELDS: never empty, always sent
ERROR_CODES = {
    "400": "a malformed parameter or body (the message says which)",
    "401": "no credentials (the loopback server: no per-run token)",
    "403": "credentials refused: not signed by the stage's identity, or not its scope",
    "429": "throttled by the API's rate limit",
}


def _json_type(tp: Any, schemas: dict[str, Schema]) -> Schema:
    """JSON Schema of a Python annotation, as ``codec.unstructure`` writes its values."""
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        options = [a for a in get_args(tp) if a is not type(None)]
        if len(options) == 1:
            return _json_type(options[0], schemas)
        return {"anyOf": [_json_type(a, schemas) for a in options]}
    if origin is tuple:
        return {"type": "array", "items": _json_type(get_args(tp)[0], schemas)}
    if origin is dict:
        return {"type": "object", "additionalProperties": _json_type(get_args(tp)[1], schemas)}
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if tp.__name__ not in schemas:
            schemas[tp.__name__] = {}  # placeholder: a type may refer to itself
            schemas[tp.__name__] = _object(tp, schemas)
        return {"$ref": REF + tp.__name__}
    return _scalar(tp)


def _scalar(tp: Any) -> Schema:
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return {"type": "string", "enum": [m.value for m in tp]}
    simple = {str: "string", bool: "boolean", int: "integer", float: "number"}
    if tp in simple:
        return {"type": simple[tp]}
    raise TypeError(f"no JSON Schema for {tp!r}")


def _optional(tp: Any) -> bool:
    return get_origin(tp) in (Union, types.UnionType) and type(None) in get_args(tp)


def _object(cls: type, schemas: dict[str, Schema], only: tuple[str, ...] = ()) -> Schema:
    """A dataclass as an object: every field (or ``only`` those), required unless it may be
    None (``unstructure`` leaves None out), nothing else."""
    hints = get_type_hints(cls)
    names = only or tuple(f.name for f in dataclasses.fields(cls))
    return {
        "type": "object",
        "properties": {name: _json_type(hints[name], schemas) for name in names},
        "required": [name for name in names if not _optional(hints[name])],
        "additionalProperties": False,
    }


def _array(item: Schema) -> Schema:
    return {"type": "array", "items": item}


def _image(schemas: dict[str, Schema]) -> Schema:
    """The public record (``record.to_public``) with the API's thumbnail URLs."""
    hints = get_type_hints(ImageRecord)
    properties: Schema = {
        "schema": {
            "type": "integer",
            "enum": [SCHEMA],
            "description": "this shape's version: bumped when a field changes meaning or goes",
        }
    }
    for name in PUBLIC_FIELDS:
        properties[name] = _json_type(hints[name], schemas)
    properties["status"] = {"type": "string", "enum": sorted(FINAL)}
    properties["message"] = {
        "type": "string",
        "enum": [REASON_TEXT[r] for r in Reason],
        "description": "what `reason` means, in words",
    }
    # the image's own fields, flat: only once it is read (DONE)
    image = _object(ImageInfo, schemas)
    properties.update(image["properties"])
    url = {"type": "string", "description": "presigned GET (15 minutes), or the CDN's URL"}
    thumbnail: Schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "width": {"type": "integer"},
            "height": {"type": "integer"},
            "bytes": {"type": "integer"},
            "content_type": {"type": "string", "enum": sorted(FORMAT_OF)},
            "format": {"type": "string", "enum": sorted(FORMAT_OF.values())},
            "url": url,
        },
        "additionalProperties": False,
    }
    thumbnail["required"] = list(thumbnail["properties"])
    schemas["Thumbnail"] = thumbnail
    source: Schema = {
        "type": "object",
        "properties": {
            "type": {"type": "string", "enum": sorted(FORMAT_OF)},
            "bytes": {"type": "integer"},
            "thumbnail": {"type": "integer", "description": "its index in `thumbnails`"},
            "url": url,
        },
        "additionalProperties": False,
    }
    source["required"] = list(source["properties"])
    picture: Schema = {
        "type": "object",
        "description": "one size for a <picture>: its sources, most compact format first",
        "properties": {
            "name": {"type": "string"},
            "width": {"type": "integer"},
            "height": {"type": "integer"},
            "sources": _array(source),
        },
        "additionalProperties": False,
    }
    picture["required"] = list(picture["properties"])
    schemas["Picture"] = picture
    properties["thumbnails"] = _array({"$ref": REF + "Thumbnail"})
    properties["pictures"] = _array({"$ref": REF + "Picture"})
    # what the labeler found (DONE, when a labeler ran)
    findings = get_type_hints(LabelResult)
    for name in ("labels", "text", "faces", "moderation"):
        properties[name] = _json_type(findings[name], schemas)
    properties["labeler"] = _object(LabelResult, schemas, only=("backend",))
    return {
        "type": "object",
        "description": "the status and metadata of one upload (README, 'The record')",
        "properties": properties,
        "required": ["schema", *ALWAYS, "thumbnails", "pictures"],
        "additionalProperties": False,
    }


def _uploads(schemas: dict[str, Schema], max_bytes: int) -> None:
    schemas["UploadRequest"] = {
        "type": "object",
        "properties": {
            "content_type": {"type": "string", "enum": list(IMAGE_TYPES)},
            "filename": {
                "type": "string",
                "maxLength": MAX_FILENAME,
                "description": "kept in the object's metadata (percent-encoded, 200 characters)",
            },
            "size": {
                "type": "integer",
                "minimum": 0,
                "maximum": max_bytes,
                "description": "bytes the client will send: at most the stage's maxBytes "
                "(the default's here; a stage that sets a lower one answers 400 above it)",
            },
        },
        "required": ["content_type"],
        "additionalProperties": False,
        "description": f"at most {MAX_BODY} bytes of JSON",
    }
    schemas["UploadForm"] = {
        "type": "object",
        "properties": {
            "key": {"type": "string", "description": "the key the file will have"},
            "upload": {
                "type": "object",
                "description": "a presigned POST: send `fields`, then the file as `file`",
                "properties": {
                    "url": {"type": "string"},
                    "fields": {"type": "object", "additionalProperties": {"type": "string"}},
                },
                "required": ["url", "fields"],
                "additionalProperties": False,
            },
            "expires_in": {"type": "integer", "description": "seconds the form stays valid"},
            "max_bytes": {"type": "integer"},
            "status": {"type": "string", "description": "where to poll: /images/<key>"},
            "send": {
                "type": "string",
                "description": "the loopback server only: where the page PUTs the file",
            },
        },
        "required": ["key", "upload", "expires_in", "max_bytes", "status"],
        "additionalProperties": False,
    }


def _answer(description: str, schema: str) -> Schema:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": REF + schema}}},
    }


def _errors(*codes: str) -> Schema:
    extra = {"404": "no image with that key (or none the caller may see)"}
    return {code: _answer({**ERROR_CODES, **extra}[code], "Error") for code in codes}


def _int_enum(values: tuple[int, ...]) -> Schema:
    return {"type": "integer", "enum": list(values)}


def _key_schema(min_length: int) -> Schema:
    return {
        "type": "string",
        "minLength": min_length,
        "maxLength": MAX_KEY_BYTES,
        "pattern": KEY_PATTERN,
    }


def document(max_bytes: int = DEFAULT_MAX_BYTES) -> Schema:
    """The OpenAPI 3.1 document the loopback server serves and the repository holds (for a
    stage with the default maxBytes; ``max_bytes``: another stage's)."""
    schemas: dict[str, Schema] = {
        "Error": {
            "type": "object",
            "properties": {"message": {"type": "string"}},
            "required": ["message"],
            "additionalProperties": False,
        }
    }
    schemas["Image"] = _image(schemas)
    schemas["Page"] = {
        "type": "object",
        "properties": {
            "items": _array({"$ref": REF + "Image"}),
            "cursor": {
                "type": ["string", "null"],
                "description": "pass it back as `cursor` for the next page; null: the last",
            },
        },
        "required": ["items", "cursor"],
        "additionalProperties": False,
    }
    _uploads(schemas, max_bytes)
    list_images = {
        "summary": "A page of image records in key order",
        "operationId": "listImages",
        "parameters": [
            {
                "name": "prefix",
                "in": "query",
                "schema": _key_schema(0),
                "description": "only keys that start with this",
            },
            {"name": "status", "in": "query", "schema": {"type": "string", "enum": sorted(FINAL)}},
            {
                "name": "limit",
                "in": "query",
                "schema": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": MAX_LIMIT,
                    "default": DEFAULT_LIMIT,
                },
            },
            {
                "name": "cursor",
                "in": "query",
                "schema": {"type": "string", "maxLength": MAX_CURSOR},
                "description": "the `cursor` of the previous page (opaque: any other is a 400)",
            },
        ],
        "responses": {"200": _answer("a page", "Page"), **_errors("400", "401", "403", "429")},
    }
    get_image = {
        "summary": "The record of one image (the key may contain slashes, sent as %2F or /)",
        "operationId": "getImage",
        "parameters": [
            {
                "name": "key",
                "in": "path",
                "required": True,
                "schema": _key_schema(1),
                "description": "the object key in the uploads bucket, URL-encoded",
            }
        ],
        "responses": {
            "200": _answer("the record", "Image"),
            **_errors("400", "401", "403", "404", "429"),
        },
    }
    create_upload = {
        "summary": "A presigned form to upload one image (then poll `status`)",
        "operationId": "createUpload",
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": REF + "UploadRequest"}}},
        },
        "responses": {
            "201": _answer("the form", "UploadForm"),
            **_errors("400", "401", "403", "429"),
        },
    }
    render = {
        "summary": "One rendition of a DONE image, made once and kept: a redirect to it",
        "operationId": "renderImage",
        "description": (
            "URLs are signed for the stage (`imgpipe render-url`), so no credential is sent "
            "beyond the signature: an `<img srcset>` can load them. Sizes and qualities snap to "
            "a ladder; anything else is a 400. Served by the stage's API, not the loopback "
            "server (404 there)."
        ),
        "security": [],
        "parameters": [
            {"name": "key", "in": "path", "required": True, "schema": _key_schema(1)},
            {"name": "w", "in": "query", "required": True, "schema": _int_enum(LADDER)},
            {"name": "h", "in": "query", "schema": _int_enum((0, *LADDER))},
            {"name": "fit", "in": "query", "schema": {"type": "string", "enum": list(FITS)}},
            {"name": "fmt", "in": "query", "schema": {"type": "string", "enum": list(FORMATS)}},
            {"name": "q", "in": "query", "schema": _int_enum(QUALITIES)},
            {
                "name": "sig",
                "in": "query",
                "required": True,
                "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{43}$"},
                "description": "HMAC-SHA256 of the key and the other parameters (base64url)",
            },
        ],
        "responses": {
            "302": {
                "description": "the rendition: a presigned GET (15 minutes); `Vary: Accept` "
                "when fmt=auto",
                "headers": {"Location": {"schema": {"type": "string"}}},
                "content": {"application/json": {"schema": {"$ref": REF + "Redirect"}}},
            },
            **_errors("400", "403", "404", "429"),
        },
    }
    schemas["Redirect"] = {
        "type": "object",
        "properties": {"location": {"type": "string"}},
        "required": ["location"],
        "additionalProperties": False,
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "imgpipe status API",
            "version": f"{SCHEMA}.0.0",
            "description": (
                "Status, metadata, findings and thumbnail URLs of uploaded images, and upload "
                "forms. Served by the `status` and `uploads` Lambdas behind API Gateway (HTTP "
                "API, IAM or JWT authorisation) and, identically, by `imgpipe local run` and "
                "`imgpipe gallery` on loopback (a per-run bearer token). Other methods on "
                "these paths answer 405 with `Allow`. Generated by `python -m imgpipe.contract`."
            ),
        },
        "servers": [{"url": "/", "description": "the stage's API URL (`imgpipe local env`)"}],
        "security": [{"sigv4": []}, {"bearer": []}, {"jwt": []}],
        "paths": {
            "/images": {"get": list_images},
            "/images/{key}": {"get": get_image},
            "/uploads": {"post": create_upload},
            "/render/{key}": {"get": render},
        },
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "sigv4": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": "AWS Signature Version 4 for execute-api (apiAuth: iam)",
                },
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "the loopback server's per-run token",
                },
                "jwt": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "the stage's issuer's access token (apiAuth: jwt)",
                },
            },
        },
    }


def render() -> str:
    return json.dumps(document(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
