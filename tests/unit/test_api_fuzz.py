"""No input gives a 500: generated hostile requests to the status API class and to the loopback
server (over a socket, so that a dropped connection shows), at least 1,000 each.

Keys, prefixes, cursors and limits are drawn from unicode (surrogates and control characters
included), percent signs, plus signs, very long values, JSON of the wrong types, deeply nested
JSON and base64 of anything; methods and unknown parameters too. Every answer must be one of
the API's deliberate ones, with a JSON body saying why.
"""

from __future__ import annotations

import base64
import json
import socket
from collections.abc import Iterator
from urllib.parse import quote, urlencode, urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imgpipe.api import StatusApi
from imgpipe.deployment import Access, Deployment
from imgpipe.outcomes import Status
from imgpipe.record import ImageRecord, ThumbnailRef
from imgpipe.storage import Presigned
from imgpipe.web.server import ApiServer
from tests.unit.conftest import FakeStack

EXAMPLES = 1000
DELIBERATE = {200, 400, 404, 405}
STATIC = {"/", "/gallery.html", "/openapi.json"}

any_char = st.characters(codec=None, categories=None)  # surrogates and controls included
hostile_text = st.one_of(
    st.text(any_char, max_size=40),
    st.text(st.sampled_from("%+ /.~\\\x00\x7f²٣éü😀\u202e"), max_size=30),
    st.integers(1000, 6000).map(lambda n: "x" * n),
    # superscript and fullwidth digits: str.isdigit() accepts both
    st.sampled_from(["", "²", "-1", "0", "101", "1e2", " 5", "5 ", "NaN", "\uff11\uff10"]),
)


def _cursor_json(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=10,
)
cursors = st.one_of(
    hostile_text,
    json_values.map(_cursor_json),
    st.dictionaries(st.sampled_from(["k", "bucket", "key"]), json_values).map(_cursor_json),
    st.integers(100, 2000).map(
        lambda depth: base64.urlsafe_b64encode(("[" * depth).encode()).decode()
    ),
)
queries = st.fixed_dictionaries(
    {},
    optional={
        "prefix": hostile_text,
        "status": st.one_of(hostile_text, st.sampled_from([s.value.lower() for s in Status])),
        "limit": hostile_text,
        "cursor": cursors,
        "sort": hostile_text,
    },
)
paths = st.one_of(
    st.builds(lambda k: "/images/" + k, hostile_text),
    st.sampled_from(["/images", "/images/", "/", "/image", "/images/../etc/passwd"]),
    hostile_text.map(lambda t: "/" + t),
)
methods = st.sampled_from(["GET"] * 8 + ["POST", "DELETE", "OPTIONS", "get"])


@pytest.fixture
def seeded(stack: FakeStack) -> FakeStack:
    for i, key in enumerate(["a.jpg", "b c/ü.jpg", "+%.jpg", "z" * 1000]):
        stack.catalog.put(
            ImageRecord(
                "uploads",
                key,
                "s:1",
                Status.DONE if i % 2 else Status.REJECTED,
                thumbnails=(ThumbnailRef("small", f"thumbnails/{key}/t/small.jpg", 1, 1, 1, "x"),),
            )
        )
    return stack


def test_the_api_class_answers_every_generated_request_deliberately(seeded: FakeStack) -> None:
    api = StatusApi(seeded.catalog, Presigned(seeded.s3), "uploads", "derived")
    answered: list[int] = []

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(methods, paths, queries)
    def one(method: str, path: str, query: dict[str, str]) -> None:
        response = api.handle(method, path, query)
        assert response.status in DELIBERATE, (method, path, query, response)
        if response.status != 200:
            assert isinstance(response.body["message"], str) and response.body["message"]
        json.dumps(response.body)  # serialisable as the Lambda returns it
        answered.append(response.status)

    one()
    assert len(answered) >= EXAMPLES
    assert {200, 400, 404} <= set(answered)


@pytest.fixture
def server(seeded: FakeStack) -> Iterator[ApiServer]:
    stack = Deployment(
        stage="local",
        uploads_bucket="uploads",
        derived_bucket="derived",
        table="images",
        topic_arn="",
        queue_url="",
        dlq_url="",
        access=Access(region="us-east-1"),
    )
    api = StatusApi.of(stack)  # the class the status function runs, here on moto in-process

    def answer(path: str, query: dict[str, str]) -> tuple[int, bytes]:
        response = api.handle("GET", path, query)
        return response.status, json.dumps(response.body, ensure_ascii=False).encode()

    with ApiServer(answer) as started:
        yield started


def _raw_get(server: ApiServer, target: str, host: str, token: str) -> int:
    """The status code of a GET sent as raw bytes; fails if the connection drops unanswered."""
    request = (
        f"GET {target} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n"
        "Connection: close\r\n\r\n"
    ).encode("latin-1")
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(request)
        head = sock.recv(64)
    assert head.startswith(b"HTTP/1."), f"no answer to {target[:80]!r}: {head!r}"
    return int(head.split()[1])


def test_the_loopback_server_answers_every_generated_request(server: ApiServer) -> None:
    answered: list[int] = []
    host = f"127.0.0.1:{server.port}"

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(paths, queries, st.booleans(), st.booleans())
    def one(path: str, query: dict[str, str], good_token: bool, good_host: bool) -> None:
        encoded = quote(path.encode("utf-8", "surrogatepass"), safe="/")
        params = {k: v.encode("utf-8", "surrogatepass") for k, v in query.items()}
        target = encoded + ("?" + urlencode(params) if params else "")
        status = _raw_get(
            server,
            target,
            host if good_host else "rebind.example:80",
            server.token if good_token else "guess",
        )
        # http.server folds a leading "//" to "/" (an open-redirect guard) before we see it
        served = target if not target.startswith("//") else "/" + target.lstrip("/")
        page = urlsplit(served).path in STATIC  # no data in it: served without the token
        allowed = DELIBERATE if good_host and (good_token or page) else {401, 403}
        assert status in allowed | {400, 401, 403}, (target[:200], status)
        answered.append(status)

    one()
    assert len(answered) >= EXAMPLES
    assert {200, 400, 401, 403} <= set(answered)
