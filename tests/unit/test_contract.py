"""The published contract (src/imgpipe/openapi.json) against the code that builds the answers.

- the file is what ``python -m imgpipe.contract`` writes (a spec edited by hand fails);
- every answer the code builds (records of each outcome, pages, errors, upload forms) validates
  against it, with no field it does not declare (a field added to the record without the spec
  fails), and every field it declares is sent by some answer (a field described but never sent
  fails);
- every schema-valid prefix and key is served, never refused with a 400.

The running servers are checked by schemathesis (functional/test_api_contract.py).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]
from openapi_spec_validator import validate

from imgpipe import contract
from imgpipe.api import MAX_KEY_BYTES, StatusApi
from imgpipe.events import parse_body
from imgpipe.imaging import ImageInfo
from imgpipe.labels import Box, Face, Label, LabelResult, ModerationLabel, TextLine
from imgpipe.outcomes import Reason, Status
from imgpipe.record import ImageRecord, ThumbnailRef
from imgpipe.uploads import answer
from tests.conftest import Events
from tests.harness.memory_ports import MemoryCatalog, MemoryPresigner

ROOT = Path(__file__).resolve().parents[2]
SPEC = contract.document()


def _validator(name: str) -> Draft202012Validator:
    return Draft202012Validator({**SPEC, "$ref": f"#/components/schemas/{name}"})


def _errors(name: str, doc: object) -> list[str]:
    return [f"{list(e.absolute_path)}: {e.message}" for e in _validator(name).iter_errors(doc)]


def test_the_committed_document_is_the_generated_one() -> None:
    committed = (ROOT / "src" / "imgpipe" / "openapi.json").read_text()
    assert committed == contract.render(), (
        "run: python -m imgpipe.contract > src/imgpipe/openapi.json"
    )
    validate(json.loads(committed))  # OpenAPI 3.1, as openapi-spec-validator reads it


def _records(events: Events) -> list[ImageRecord]:
    [event] = parse_body(events.s3_body("trip/a b.jpg", etag="e1", sequencer="0A", size=2048))
    base = ImageRecord.of(event, Status.DONE, 2)
    formats = (("image/jpeg", "jpg"), ("image/webp", "webp"), ("image/avif", "avif"))
    thumbs = (
        *(
            ThumbnailRef(name, f"thumbnails/trip/a b.jpg/t/{name}.{ext}", w, h, 4000, ctype)
            for name, w, h in (("small", 128, 85), ("large", 1024, 683))
            for ctype, ext in formats
        ),
        ThumbnailRef("icon", "thumbnails/trip/a b.jpg/t/icon.png", 32, 32, 900, "image/png"),
    )
    done = replace(
        base,
        image=ImageInfo(
            *("JPEG", 1800, 1200, "RGB", 8, False, False, 1, False, 6),
            exif={"make": "Canon", "iso": 100, "exposure": 0.01, "gps": {"lat": 1.5}},
            phash="0123456789abcdef",
            colour="#102030",
        ),
        thumbnails=thumbs,
        findings=LabelResult(
            backend="local",
            ms=12.5,
            labels=(Label("Dog", 97.5, (Box(0.1, 0.2, 0.3, 0.4),), ("Animal", "Pet")),),
            text=(TextLine("OPEN", 99.0, Box(0, 0, 1, 1)), TextLine("24/7", 90.0)),
            faces=(Face(Box(0.5, 0.1, 0.1, 0.1), 90.0),),
            moderation=(ModerationLabel("Explicit Nudity", 80.0),),
            source="thumbnail",
            errors={"faces": "ImageTooLargeException"},
        ),
        results=("results/trip/a b.jpg/t.json",),
        ms=45.0,
        thumbnail_ms=30.5,
        settings="fp",
        detail="internal",
    )
    outcomes = [
        replace(base, key=f"trip/{reason.value}.jpg", status=Status.REJECTED, reason=reason)
        for reason in Reason
    ]
    failed = replace(base, key="trip/failed.jpg", status=Status.FAILED, detail="SlowDown")
    deleted = replace(base, key="trip/gone.jpg", status=Status.DELETED, etag="", event_time="")
    return [done, *outcomes, failed, deleted]


@pytest.fixture
def api(events: Events) -> StatusApi:
    catalog = MemoryCatalog()
    for record in _records(events):
        catalog.items[(record.bucket, record.key)] = record
    return StatusApi(catalog, MemoryPresigner(), "uploads", "derived")


def _answers(api: StatusApi) -> list[dict[str, Any]]:
    docs = []
    for _, key in sorted(api.catalog.items):  # type: ignore[attr-defined]
        response = api.handle("GET", f"/images/{key}", {})
        assert response.status == 200
        docs.append(response.body)
    return docs


def test_every_answer_validates_and_every_declared_field_is_sent(api: StatusApi) -> None:
    docs = _answers(api)
    for doc in docs:
        assert _errors("Image", doc) == [], doc["key"]
    sent = {name for doc in docs for name in doc}
    declared = set(SPEC["components"]["schemas"]["Image"]["properties"])
    assert sent == declared, f"declared, never sent: {declared - sent}; sent: {sent - declared}"
    page = api.handle("GET", "/images", {"prefix": "trip/", "limit": "3"})
    assert page.status == 200 and page.body["cursor"] and _errors("Page", page.body) == []
    last = api.handle("GET", "/images", {"cursor": str(page.body["cursor"]), "limit": "100"})
    assert last.body["cursor"] is None and _errors("Page", last.body) == []


def test_a_field_the_spec_lacks_or_a_wrong_type_fails(api: StatusApi) -> None:
    """What the checks above would catch: a field added in the code, a type changed."""
    doc = _answers(api)[0]
    assert _errors("Image", {**doc, "bucket": "imgpipe-uploads"})  # internal: not published
    assert _errors("Image", {**doc, "schema": 1})
    assert _errors("Image", {**doc, "width": "1800"})
    thumb = {**doc["thumbnails"][0], "key": "thumbnails/x"}
    assert _errors("Image", {**doc, "thumbnails": [thumb]})


def test_errors_and_upload_forms_validate() -> None:
    api = StatusApi(MemoryCatalog(), MemoryPresigner(), "uploads", "derived")
    for method, path, query, status in (
        ("GET", "/images/missing.jpg", {}, 404),
        ("GET", "/images", {"limit": "0"}, 400),
        ("GET", "/images", {"status": ""}, 400),
        ("GET", "/images", {"status": "done"}, 400),
        ("GET", "/images", {"nope": "1"}, 400),
        ("GET", "/images/a\x07b", {}, 400),
        ("DELETE", "/images/a", {}, 405),
    ):
        response = api.handle(method, path, query)
        assert response.status == status, (method, path, query)
        assert _errors("Error", response.body) == []
    headers = api.handle("DELETE", "/images/a", {}).as_lambda()["headers"]
    assert isinstance(headers, dict) and headers["allow"] == "GET"
    presigner = MemoryPresigner()
    ok = answer(presigner, "uploads", "", '{"content_type": "image/heic", "size": 4.0}', 10, 60)
    assert ok.status == 201 and _errors("UploadForm", ok.body) == []
    refused = answer(presigner, "uploads", "", '{"content_type": "image/heic", "size": 11}', 10, 60)
    assert refused.status == 400 and _errors("Error", refused.body) == []
    long_name = json.dumps({"content_type": "image/png", "filename": "x" * 256})
    assert answer(presigner, "uploads", "", long_name, 10, 60).status == 400


CONTROLS = [*map(chr, range(32)), "\x7f"]
KEY_TEXT = st.text(
    st.characters(exclude_categories=["Cs"], exclude_characters=CONTROLS),
    max_size=MAX_KEY_BYTES,
)


@settings(max_examples=200, deadline=None)
@given(prefix=KEY_TEXT, key=KEY_TEXT.filter(bool))
def test_every_schema_valid_prefix_and_key_is_served(prefix: str, key: str) -> None:
    """The keys' and prefixes' schema (any characters but controls, up to 1,024 of them) is
    exactly what the API takes: longer than S3's 1,024 bytes is an empty page or a 404."""
    assert _validator("Error").is_valid({"message": "x"})
    parameters = SPEC["paths"]["/images"]["get"]["parameters"]
    [prefix_schema] = [p["schema"] for p in parameters if p["name"] == "prefix"]
    assert Draft202012Validator(prefix_schema).is_valid(prefix)
    api = StatusApi(MemoryCatalog(), MemoryPresigner(), "uploads", "derived")
    assert api.handle("GET", "/images", {"prefix": prefix}).status == 200
    assert api.handle("GET", f"/images/{key}", {}).status == 404


def test_render_answers_validate() -> None:
    from imgpipe.renditions import Render
    from tests.unit.test_renditions import _api, _signed

    api, _, _ = _api()
    signed = _signed("trip/a b.jpg", Render(640))
    made = api.handle("GET", "trip/a b.jpg", signed, "image/webp")
    assert made.status == 302 and _errors("Redirect", made.body) == []
    for query, status in (({"w": "1"}, 400), ({**signed, "sig": "A" * 43}, 403)):
        refused = api.handle("GET", "trip/a b.jpg", query, "")
        assert refused.status == status and _errors("Error", refused.body) == []
    operation = SPEC["paths"]["/render/{key}"]["get"]
    assert set(operation["responses"]) == {"302", "400", "403", "404", "429"}
