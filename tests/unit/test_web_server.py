"""The loopback server in front of the status API: what it forwards where, and what it hands
out to whom."""

from __future__ import annotations

import socket
import urllib.request
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from imgpipe.deployment import Access, Deployment
from imgpipe.web import signing
from imgpipe.web.server import ApiServer, signed_proxy

API = "https://abc123.execute-api.eu-west-1.amazonaws.com"


@pytest.fixture
def forwarded(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    sent: list[str] = []

    def fake_signed_get(url: str, access: Access) -> tuple[int, bytes, str]:
        sent.append(url)
        return 200, b"{}", "application/json"

    monkeypatch.setattr(signing, "signed_get", fake_signed_get)
    return sent


def _stack() -> Deployment:
    return Deployment("dev", "u", "d", "t", "arn", "q", "dlq", Access(region="eu-west-1"), API)


@pytest.mark.parametrize(
    "target", [".attacker.example/x", "@attacker.example/x", ":8443/x", "attacker.example"]
)
def test_the_proxy_never_signs_a_call_to_another_host(forwarded: list[str], target: str) -> None:
    answer = signed_proxy(_stack(), API)
    assert answer(target, {})[0] == 400
    assert forwarded == []


def test_the_proxy_keeps_the_api_host_and_encodes_the_path(forwarded: list[str]) -> None:
    answer = signed_proxy(_stack(), API + "/")
    answer("/images/a b@c.example/100%.jpg", {"prefix": "x&y=z"})
    [url] = forwarded
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc) == ("https", "abc123.execute-api.eu-west-1.amazonaws.com")
    assert parts.path == "/images/a%20b%40c.example/100%25.jpg"
    assert parts.query == "prefix=x%26y%3Dz"


@pytest.fixture
def server(forwarded: list[str]) -> Iterator[ApiServer]:
    with ApiServer(signed_proxy(_stack(), API)) as started:
        yield started


def _raw(server: ApiServer, target: str, token: str = "") -> tuple[int, bytes]:
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    request = f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n{auth}\r\n"
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(request.encode())
        head = sock.recv(4096)
    return int(head.split()[1]), head


def test_a_request_target_that_is_not_a_path_is_refused(
    server: ApiServer, forwarded: list[str]
) -> None:
    assert _raw(server, ".attacker.example/x", server.token)[0] == 400
    assert _raw(server, "/images", server.token)[0] == 200
    assert [urlsplit(u).netloc for u in forwarded] == [urlsplit(API).netloc]


def test_the_token_is_never_a_cookie_and_never_leaves_the_fragment(server: ApiServer) -> None:
    """A cookie for 127.0.0.1 would reach every other loopback port's server; the token is in
    the URL's fragment (never sent to a server) and, in the page, in this origin's storage."""
    link = urlsplit(server.gallery_link(prefix="trips/"))
    assert (link.query, link.fragment) == ("prefix=trips%2F", f"token={server.token}")
    with urllib.request.urlopen(f"{server.url}/") as page:
        assert page.headers.get("set-cookie") is None
        html = page.read().decode()
    assert "sessionStorage" in html and "document.cookie" not in html
    status, head = _raw(server, "/images")
    assert status == 401 and b"set-cookie" not in head.lower()
    # never in the URL (kept in logs, history and Referer headers): refused, saying where
    assert _raw(server, f"/images?token={server.token}")[0] == 400
    assert _raw(server, f"/images?token={server.token}", server.token)[0] == 400
