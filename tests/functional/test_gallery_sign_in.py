"""The hosted gallery's sign-in (jwt stages), in a real browser: the page is served as a static
site would serve it, beside a stand-in status API that answers 401 to any token but the one
the identity provider issued; the provider's authorize URL is answered by the browser's own
routing (nothing leaves the machine)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.conftest import ROOT
from tests.harness.browser import chromium

# needs no AWS endpoint: runs once, in the MiniStack run, not again in the stand-in's
pytestmark = [pytest.mark.functional, pytest.mark.own_endpoint]

AUTHORIZE = "https://idp.example/oauth2/authorize?response_type=token&client_id=gallery"
ISSUED = "token-the-provider-issued-to-this-user"
STOLEN = "token-of-someone-else"


@dataclass
class Site:
    url: str
    bearers: list[str] = field(default_factory=list)  # each Authorization the API received


@pytest.fixture
def site() -> Iterator[Site]:
    page = (ROOT / "src/imgpipe/web/gallery.html").read_text()
    page = page.replace(
        '<meta name="imgpipe-login" content="">',
        f'<meta name="imgpipe-login" content="{AUTHORIZE}">',
    )
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = urlsplit(self.path).path
            if path == "/":
                self._send(200, "text/html; charset=utf-8", page.encode())
            elif path == "/images":
                bearer = self.headers.get("authorization", "")
                seen.append(bearer)
                if bearer == f"Bearer {ISSUED}":
                    self._send(200, "application/json", json.dumps({"items": []}).encode())
                else:
                    self._send(401, "application/json", b'{"message":"Unauthorized"}')
            else:
                self._send(404, "text/plain", b"")

        def _send(self, code: int, kind: str, body: bytes) -> None:
            self.send_response(code)
            self.send_header("content-type", kind)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield Site(f"http://127.0.0.1:{server.server_port}/", seen)
    finally:
        server.shutdown()


def test_the_gallery_takes_a_token_only_with_the_state_it_sent(site: Site) -> None:
    """A link carrying someone else's token (no state, a guessed one, or the state of an
    earlier sign-in) signs no one in; the page's own round trip through the provider does."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = chromium(pw)
        page = browser.new_page()
        asked: list[str] = []

        def provider(route: Any) -> None:
            # the provider signs the user in and sends them back with the state it was given
            asked.append(route.request.url)
            [state] = parse_qs(urlsplit(route.request.url).query)["state"]
            back = f"{site.url}#access_token={ISSUED}&token_type=Bearer&state={state}"
            route.fulfill(status=302, headers={"location": back})

        page.route("https://idp.example/**", provider)
        token = "sessionStorage.getItem('imgpipe-token')"
        # the list came back (the error line is cleared on an answer)
        answered = "document.getElementById('error').textContent === ''"

        def arrive(fragment: str) -> None:
            page.goto("about:blank")  # a load of its own, not a jump within the page
            page.goto(site.url + fragment)

        for forged in (f"#access_token={STOLEN}", f"#access_token={STOLEN}&state=guess"):
            arrive(forged)
            page.locator("#error a", has_text="sign in").wait_for(timeout=20_000)
            assert page.evaluate(token) is None
            assert "did not ask for was refused" in page.inner_text("#error")
            assert "access_token" not in page.url  # out of the address bar (and history)
        # the user's own sign-in: the page sends a fresh state and takes the answer with it
        page.click("#error a")
        page.wait_for_function(f"{token} === '{ISSUED}'", timeout=20_000)
        [authorize] = asked
        assert authorize.startswith(AUTHORIZE + "&state=")
        sent = parse_qs(urlsplit(authorize).query)["state"][0]
        assert len(sent) == 32 and int(sent, 16) >= 0
        page.wait_for_function(answered)
        assert f"Bearer {ISSUED}" in site.bearers and f"Bearer {STOLEN}" not in site.bearers
        # a state is good once: replayed with another token, it changes nothing
        arrive(f"#access_token={STOLEN}&state={sent}")
        page.wait_for_function(answered)
        assert page.evaluate(token) == ISSUED
        browser.close()
    assert f"Bearer {STOLEN}" not in site.bearers
