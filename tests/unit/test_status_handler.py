"""The status API through its Lambda handler (API Gateway HTTP API payload v2)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imgpipe.api import key_parameter
from imgpipe.catalog import Catalog
from imgpipe.config import ConfigError
from imgpipe.handlers import status
from imgpipe.outcomes import Status
from imgpipe.record import ImageRecord, ThumbnailRef
from tests.conftest import load_event
from tests.unit.conftest import FakeStack, LambdaContext


def _call(key: str | None = None, **query: str) -> tuple[int, dict[str, Any]]:
    """The recorded HTTP API request, routed to ``key`` (None: the list route)."""
    event = load_event("apigw-http-get-image-iam.json")
    if key is None:
        event["routeKey"] = event["requestContext"]["routeKey"] = "GET /images"
        event["pathParameters"] = None
    else:
        event["pathParameters"] = {"key": key}
    if query:
        event["queryStringParameters"] = query
    response: Any = status.handler(event, LambdaContext())  # type: ignore[arg-type]
    assert response["headers"]["content-type"] == "application/json"
    return response["statusCode"], json.loads(response["body"])


def _record(key: str, status: Status, thumb: str) -> ImageRecord:
    return ImageRecord(
        "uploads",
        key,
        "s:1",
        status,
        ms=12.5,
        notified=True,
        thumbnails=(ThumbnailRef("small", thumb, 128, 85, 100, "image/jpeg"),),
    )


def _seed(stack: FakeStack, n: int) -> None:
    catalog = Catalog(stack.ddb, "images")
    for i in range(n):
        catalog.put(
            _record(
                f"{'trip' if i % 2 else 'home'}/{i:02d}.jpg",
                Status.DONE if i % 3 else Status.REJECTED,
                f"thumbnails/x/{i}/small.jpg",
            )
        )


def test_known_key_gives_clean_json_with_presigned_urls(stack: FakeStack) -> None:
    Catalog(stack.ddb, "images").put(
        _record("a b/ü.jpg", Status.DONE, "thumbnails/a b/ü.jpg/e/small.jpg")
    )
    code, body = _call("a b/ü.jpg")
    assert code == 200
    # numbers are JSON numbers (no Decimal or type wrappers); bookkeeping and internals stay in
    assert body["thumbnails"][0]["width"] == 128
    assert not {"notified", "bucket", "version", "ms"} & set(body)
    url = urlsplit(body["thumbnails"][0]["url"])
    assert url.path.endswith("/small.jpg") and "X-Amz-Signature" in parse_qs(url.query)
    assert parse_qs(url.query)["X-Amz-Expires"] == ["900"]


def test_unknown_key_is_404_with_a_message(stack: FakeStack) -> None:
    assert _call("nope.jpg") == (404, {"message": "no image with that key"})


@pytest.mark.parametrize(
    ("mode", "event", "expected"),
    [
        ("iam", "apigw-http-get-image.json", 403),  # no identity: a route without authorizer
        ("iam", "apigw-http-get-image-iam.json", 404),
        ("jwt", "apigw-http-get-image-iam.json", 403),  # IAM identity on a JWT stage
        ("none", "apigw-http-get-image.json", 404),
        ("IAM ", "apigw-http-get-image-iam.json", 404),  # read as config reads every choice
        ("IAM ", "apigw-http-get-image.json", 403),
    ],
)
def test_requests_without_the_stages_identity_are_refused(
    stack: FakeStack, monkeypatch: pytest.MonkeyPatch, mode: str, event: str, expected: int
) -> None:
    monkeypatch.setenv("API_AUTH", mode)
    request = load_event(event)
    request["pathParameters"] = {"key": "nope.jpg"}
    response: Any = status.handler(request, LambdaContext())  # type: ignore[arg-type]
    assert response["statusCode"] == expected


def test_an_unknown_mode_fails_closed(stack: FakeStack, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("API_AUTH", "open")
    request = load_event("apigw-http-get-image-iam.json")
    request["pathParameters"] = {"key": "nope.jpg"}
    with pytest.raises(ConfigError, match="API_AUTH must be one of"):
        status.handler(request, LambdaContext())  # type: ignore[arg-type]


def test_a_jwt_identity_is_accepted_on_a_jwt_stage(
    stack: FakeStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("API_AUTH", "jwt")
    request = load_event("apigw-http-get-image.json")
    request["requestContext"]["authorizer"] = {"jwt": {"claims": {"sub": "ana"}, "scopes": None}}
    response: Any = status.handler(request, LambdaContext())  # type: ignore[arg-type]
    assert response["statusCode"] == 404


@pytest.mark.parametrize("key", ["x" * 1025, "bad\x00key", "tab\tkey"])
def test_malformed_key_is_400(stack: FakeStack, key: str) -> None:
    code, body = _call(key)
    assert code == 400 and body["message"]


def test_pages_follow_the_cursor_to_the_end(stack: FakeStack) -> None:
    _seed(stack, 7)
    seen: list[str] = []
    cursor: str | None = None
    for _ in range(5):
        code, body = _call(None, limit="3", **({"cursor": cursor} if cursor else {}))
        assert code == 200 and len(body["items"]) <= 3
        seen += [item["key"] for item in body["items"]]
        cursor = body["cursor"]
        if cursor is None:
            break
    assert seen == sorted(seen) and len(seen) == 7 and len(set(seen)) == 7


def test_filters_by_prefix_and_status(stack: FakeStack) -> None:
    _seed(stack, 9)
    _, trips = _call(None, prefix="trip/")
    assert [i["key"] for i in trips["items"]] == [
        "trip/01.jpg",
        "trip/03.jpg",
        "trip/05.jpg",
        "trip/07.jpg",
    ]
    _, rejected = _call(None, status="REJECTED", limit="2")
    assert [i["key"] for i in rejected["items"]] == ["home/00.jpg", "home/06.jpg"]
    assert rejected["cursor"] is not None  # a third one is still to come
    _, rest = _call(None, status="REJECTED", cursor=rejected["cursor"])
    assert [(i["key"], i["status"]) for i in rest["items"]] == [("trip/03.jpg", "REJECTED")]


@pytest.mark.parametrize(
    "query",
    [
        {"limit": "0"},
        {"limit": "101"},
        {"limit": "ten"},
        {"status": "LOST"},
        {"status": "rejected"},  # exactly as the contract lists them
        {"status": ""},
        {"cursor": "bm90IGpzb24="},
        {"cursor": "%%%"},
        {"limit": "²"},  # str.isdigit() says yes
        {"limit": "1" * 5000},
        {"cursor": "eyJrIjogMX0="},  # {"k": 1}
        {"cursor": "eyJidWNrZXQiOiAib3RoZXIiLCAiayI6ICJhIn0="},  # names another bucket
        {"cursor": "W" * 5000},
        {"prefix": "\ud800"},
        {"sort": "key"},
    ],
)
def test_malformed_list_parameters_are_400(stack: FakeStack, query: dict[str, str]) -> None:
    code, body = _call(None, **query)
    assert code == 400 and body["message"]


# Keys as HTTP APIs hand them over. AWS: the parameter decoded, rawPath with every escape but
# %25 decoded. MiniStack 1.5: both in that rawPath form.
def _aws(key: str) -> tuple[str, str]:
    return key, "/images/" + key.replace("%", "%25")


def _ministack(key: str) -> tuple[str, str]:
    raw = "/images/" + key.replace("%", "%25")
    return raw.removeprefix("/images/"), raw


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet="%25/a ü?#+", min_size=1, max_size=16))
def test_the_key_parameter_is_the_key_on_aws_and_on_ministack(key: str) -> None:
    assert key_parameter(*_aws(key)) == key
    assert key_parameter(*_ministack(key)) == key


@pytest.mark.parametrize("shape", [_aws, _ministack])
def test_a_key_with_percent_signs_is_found_whichever_gateway_passed_it(
    stack: FakeStack, shape: Any
) -> None:
    key = "k/100%25 sure%.jpg"
    Catalog(stack.ddb, "images").put(_record(key, Status.DONE, "thumbnails/t/small.jpg"))
    param, raw = shape(key)
    event = load_event("apigw-http-get-image-iam.json")
    event["pathParameters"], event["rawPath"] = {"key": param}, raw
    response: Any = status.handler(event, LambdaContext())  # type: ignore[arg-type]
    assert response["statusCode"] == 200
    assert json.loads(response["body"])["key"] == key


def test_a_cursor_from_outside_the_prefix_is_a_400_not_a_query(stack: FakeStack) -> None:
    """DynamoDB answers an ExclusiveStartKey outside the key condition with a
    ValidationException (a 500 on AWS; moto does not model it), so it must not be sent."""
    _seed(stack, 6)
    code, page = _call(limit="1", prefix="home/")
    assert code == 200 and page["cursor"]
    code, body = _call(limit="1", prefix="trip/", cursor=page["cursor"])
    assert code == 400 and "prefix" in body["message"]
    assert _call(limit="1", prefix="home/", cursor=page["cursor"])[0] == 200


def _jwt_call(
    monkeypatch: pytest.MonkeyPatch,
    claims: dict[str, Any],
    key: str | None = None,
    *,
    scopes: list[str] | None = None,
    owner_claim: str = "",
    query: dict[str, str] | None = None,
) -> tuple[int, dict[str, Any]]:
    monkeypatch.setenv("API_AUTH", "jwt")
    monkeypatch.setenv("JWT_SCOPE", "imgpipe/read")
    monkeypatch.setenv("JWT_OWNER_CLAIM", owner_claim)
    from imgpipe import config

    config.clear_caches()
    event = load_event("apigw-http-get-image.json")
    event["requestContext"]["authorizer"] = {"jwt": {"claims": claims, "scopes": scopes}}
    if key is None:
        event["routeKey"] = event["requestContext"]["routeKey"] = "GET /images"
        event["pathParameters"] = None
    else:
        event["pathParameters"] = {"key": key}
    event["queryStringParameters"] = query or None
    response: Any = status.handler(event, LambdaContext())  # type: ignore[arg-type]
    return response["statusCode"], json.loads(response["body"])


def test_a_jwt_without_the_stages_scope_is_refused(
    stack: FakeStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _jwt_call(monkeypatch, {"sub": "ana"}, "x.jpg")[0] == 403
    assert (
        _jwt_call(monkeypatch, {"sub": "ana", "scope": "openid imgpipe/write"}, "x.jpg")[0] == 403
    )
    assert _jwt_call(monkeypatch, {"sub": "ana", "scope": "openid imgpipe/read"}, "x.jpg")[0] == 404
    assert _jwt_call(monkeypatch, {"sub": "ana"}, "x.jpg", scopes=["imgpipe/read"])[0] == 404


def test_with_an_owner_claim_a_caller_sees_only_their_own_keys(
    stack: FakeStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalog = Catalog(stack.ddb, "images")
    for key in ("users/ana/a.jpg", "users/ana/trip/b.jpg", "users/bob/c.jpg", "users/anax/d.jpg"):
        catalog.put(_record(key, Status.DONE, "thumbnails/x/t/small.jpg"))
    ana = {"sub": "ana", "scope": "imgpipe/read"}

    def call(key: str | None = None, **query: str) -> tuple[int, dict[str, Any]]:
        return _jwt_call(monkeypatch, ana, key, owner_claim="sub", query=query)

    code, page = call()
    assert code == 200 and [i["key"] for i in page["items"]] == [
        "users/ana/a.jpg",
        "users/ana/trip/b.jpg",
    ]
    assert call("users/ana/a.jpg")[0] == 200
    assert call("users/bob/c.jpg")[0] == 404  # as if it did not exist
    assert call("users/anax/d.jpg")[0] == 404
    assert [i["key"] for i in call(prefix="users/ana/trip/")[1]["items"]] == [
        "users/ana/trip/b.jpg"
    ]
    assert call(prefix="users/bob/")[1]["items"] == []
    assert [i["key"] for i in call(prefix="users/")[1]["items"]] == [
        "users/ana/a.jpg",
        "users/ana/trip/b.jpg",
    ]
    # a claim that is not a plain key segment is refused, never used as a prefix
    for sub in ("", "a/b", "../x", "ana\x00", 42):
        assert _jwt_call(monkeypatch, {**ana, "sub": sub}, owner_claim="sub")[0] == 403


def test_a_cdn_stage_answers_cdn_urls_under_the_thumbnails_origin(
    stack: FakeStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    from imgpipe import bootstrap, config

    monkeypatch.setenv("THUMBNAIL_CDN", "https://d111.cloudfront.net/")
    config.clear_caches()
    bootstrap.reset()
    Catalog(stack.ddb, "images").put(
        _record("trip/a b.jpg", Status.DONE, "thumbnails/trip/a b.jpg/t0k3n/small.jpg")
    )
    code, body = _call("trip/a b.jpg")
    assert code == 200
    assert (
        body["thumbnails"][0]["url"] == "https://d111.cloudfront.net/trip/a%20b.jpg/t0k3n/small.jpg"
    )
    assert body["pictures"][0]["sources"][0]["url"] == body["thumbnails"][0]["url"]


@pytest.mark.parametrize("bad", ["http://d111.cloudfront.net", "https://x/?sig=1", "ftp://x"])
def test_a_cdn_base_must_be_https(bad: str) -> None:
    from imgpipe.config import ConfigError, StatusSettings

    env = {"TABLE_NAME": "t", "UPLOADS_BUCKET": "u", "DERIVED_BUCKET": "d", "THUMBNAIL_CDN": bad}
    with pytest.raises(ConfigError, match="THUMBNAIL_CDN"):
        StatusSettings.from_env(env)
