from __future__ import annotations

import json
from typing import Any

from imgpipe.catalog import Catalog
from imgpipe.handlers import status
from tests.unit.conftest import FakeStack
from tests.unit.test_process_handler import Context


def _get(key: str | None) -> dict[str, Any]:
    event = {"rawPath": f"/images/{key}", "pathParameters": {"key": key} if key else None}
    return status.handler(event, Context())  # type: ignore[arg-type]


def test_known_key_gives_the_record_as_clean_json(stack: FakeStack) -> None:
    Catalog(stack.ddb, "images").put(
        {"bucket": "uploads", "key": "a b/ü.jpg", "status": "DONE", "width": 1800, "ms": 12.5}
    )
    response = _get("a b/ü.jpg")
    assert response["statusCode"] == 200
    assert response["headers"]["content-type"] == "application/json"
    body = json.loads(response["body"])
    # numbers come back as JSON numbers, not DynamoDB Decimals or type wrappers
    assert body == {
        "bucket": "uploads",
        "key": "a b/ü.jpg",
        "status": "DONE",
        "width": 1800,
        "ms": 12.5,
    }


def test_unknown_key_is_404_with_a_message(stack: FakeStack) -> None:
    response = _get("nope.jpg")
    assert response["statusCode"] == 404
    assert json.loads(response["body"])["message"] == "no image with key 'nope.jpg'"


def test_missing_or_oversized_key_is_400(stack: FakeStack) -> None:
    assert _get(None)["statusCode"] == 400
    assert _get("x" * 1025)["statusCode"] == 400
