"""POST /uploads: what a request may ask, and what the presigned POST it gets allows."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import pytest

from imgpipe.handlers import uploads
from imgpipe.uploads import TYPE_OF_EXTENSION, content_type_of
from tests.conftest import ROOT, load_event
from tests.unit.conftest import FakeStack, LambdaContext


def _post(
    monkeypatch: pytest.MonkeyPatch,
    body: object,
    *,
    claims: dict[str, Any] | None = None,
    mode: str = "iam",
    anonymous: str = "",
) -> tuple[int, dict[str, Any]]:
    from imgpipe import config

    monkeypatch.setenv("API_AUTH", mode)
    monkeypatch.setenv("ANONYMOUS_UPLOADS", anonymous)
    monkeypatch.setenv("MAX_BYTES", "1000000")
    monkeypatch.setenv("JWT_SCOPE", "imgpipe/upload")
    monkeypatch.setenv("JWT_OWNER_CLAIM", "sub")
    config.clear_caches()
    event = load_event("apigw-http-get-image-iam.json")
    event["routeKey"] = event["requestContext"]["routeKey"] = "POST /uploads"
    event["requestContext"]["http"]["method"] = "POST"
    event["pathParameters"] = None
    event["body"] = body if isinstance(body, str) else json.dumps(body)
    if claims is not None:
        event["requestContext"]["authorizer"] = {"jwt": {"claims": claims, "scopes": None}}
    response: Any = uploads.handler(event, LambdaContext())  # type: ignore[arg-type]
    return response["statusCode"], json.loads(response["body"])


@pytest.mark.parametrize(("anonymous", "code"), [("", 403), ("false", 403), ("true", 201)])
def test_apiauth_none_hands_out_forms_only_when_the_stage_says_anyone_may(
    stack: FakeStack, monkeypatch: pytest.MonkeyPatch, anonymous: str, code: int
) -> None:
    """The route is not deployed under apiAuth none (template/test_options.py); the function
    refuses anyway, unless anonymousUploadsFromAnyone is true."""
    body = {"content_type": "image/jpeg"}
    assert _post(monkeypatch, body, mode="none", anonymous=anonymous)[0] == code


def _policy(answer: dict[str, Any]) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(base64.b64decode(answer["upload"]["fields"]["policy"]))
    return doc


def test_the_form_pins_the_key_the_type_and_the_size(
    stack: FakeStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, answer = _post(
        monkeypatch, {"content_type": "image/png", "filename": "../ä b.png", "size": 10}
    )
    assert code == 201
    key = answer["key"]
    assert key.startswith("uploads/") and key.endswith(".png") and ".." not in key
    conditions = _policy(answer)["conditions"]
    assert {"key": key} in conditions
    assert {"Content-Type": "image/png"} in conditions
    assert ["content-length-range", 1, 1000000] in conditions
    assert answer["upload"]["fields"]["x-amz-meta-filename"] == "..%2F%C3%A4 b.png"
    assert answer["expires_in"] == 300 and answer["status"] == f"/images/{key}"
    # two requests never get the same key
    assert _post(monkeypatch, {"content_type": "image/png"})[1]["key"] != key


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"content_type": "text/html"}, "content_type must be one of"),
        ({"content_type": "image/jpeg", "size": 1000001}, "over the limit"),
        ({"content_type": "image/jpeg", "key": "users/bob/x.jpg"}, "unknown fields"),
        ({"content_type": "image/jpeg", "size": "9"}, "size must be"),
        ("not json", "not JSON"),
        ([1, 2], "expected"),
        ({"content_type": "image/jpeg", "filename": "x" * 5000}, "over 4096 bytes"),
    ],
)
def test_what_a_request_may_not_ask(
    stack: FakeStack, monkeypatch: pytest.MonkeyPatch, body: object, says: str
) -> None:
    code, answer = _post(monkeypatch, body)
    assert code == 400 and says in answer["message"]


def test_a_jwt_owner_uploads_under_their_own_prefix_with_the_upload_scope(
    stack: FakeStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    ana = {"sub": "ana", "scope": "imgpipe/upload"}
    code, answer = _post(monkeypatch, {"content_type": "image/jpeg"}, claims=ana, mode="jwt")
    assert code == 201 and answer["key"].startswith("users/ana/")
    reader = {"sub": "ana", "scope": "imgpipe/read"}
    assert _post(monkeypatch, {"content_type": "image/jpeg"}, claims=reader, mode="jwt")[0] == 403
    assert _post(monkeypatch, {"content_type": "image/jpeg"})[0] == 201  # iam: no owner


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("IMG_0001.HEIC", "image/heic"),
        ("burst.heif", "image/heif"),
        ("sony.HIF", "image/heif"),
        ("photo.jpeg", "image/jpeg"),
        ("scan.tiff", "image/tiff"),
        ("notes.txt", ""),
        ("no-extension", ""),
    ],
)
def test_a_files_type_by_its_extension(name: str, expected: str) -> None:
    """Browsers often give HEIC no type, and mimetypes knows it only where the system does:
    the CLI and the gallery ask the form's own table."""
    assert content_type_of(name) == expected


def test_the_gallery_knows_the_same_extensions() -> None:
    page = (ROOT / "src" / "imgpipe" / "web" / "gallery.html").read_text()
    block = re.search(r"const TYPE_OF_EXTENSION = \{(.*?)\};", page, re.S)
    assert block is not None
    in_page = dict(re.findall(r'(\w+): "([\w/]+)"', block.group(1)))
    assert in_page == TYPE_OF_EXTENSION
    accepted = re.search(r'id="files"[^>]*accept="([^"]+)"', page)
    assert accepted is not None and ".heic" in accepted.group(1).split(",")
