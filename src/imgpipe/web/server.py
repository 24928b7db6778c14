"""The status API and the gallery page on loopback: for the local stack, and (`imgpipe
gallery`) in front of a deployed stage's API, signing each call with the user's credentials.

Not an open door on a developer's machine: every API request needs the per-run token (printed
in the URL's fragment, as notebook servers print theirs; the page keeps it in sessionStorage,
which is this origin's alone, and sends it as ``Authorization: Bearer`` — no cookie, which
would reach every port of 127.0.0.1), every request a Host header naming loopback (a
DNS-rebinding page's requests carry its own name), and nothing is answered with CORS headers,
so other origins' pages cannot read the answers. The page and the OpenAPI document hold no data
and are served without the token.
"""

from __future__ import annotations

import hmac
import json
import secrets
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.resources import files
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

from ..deployment import Deployment

_STATIC = {
    "/": ("gallery.html", "text/html; charset=utf-8"),
    "/gallery.html": ("gallery.html", "text/html; charset=utf-8"),
    "/openapi.json": ("openapi.json", "application/json"),
}
MAX_QUERY_FIELDS = 20

# (decoded path, query) -> (status, JSON body bytes)
Answer = Callable[[str, dict[str, str]], tuple[int, bytes]]


def signed_proxy(stack: Deployment, api_url: str) -> Answer:
    """Each call forwarded to the stage's HTTP API (API Gateway and the status function, on
    AWS or the local endpoint), signed with the stage's credentials."""
    from .signing import signed_get

    base = urlsplit(api_url)
    if base.scheme not in ("https", "http") or not base.hostname:
        raise ValueError(f"not an HTTP(S) API URL: {api_url[:80]!r}")

    def answer(path: str, query: dict[str, str]) -> tuple[int, bytes]:
        # Built from parts, never by concatenation: whatever the path holds, the call goes to
        # the stage's API host (a target like ".attacker.example/x" must not extend its name).
        if not path.startswith("/"):
            return 400, _json("the path must start with /")
        target = base.path.rstrip("/") + quote(path, safe="/")
        url = urlunsplit((base.scheme, base.netloc, target, urlencode(query), ""))
        status, body, _ = signed_get(url, stack.access)
        return status, body

    return answer


class NoHttpApi(RuntimeError):
    pass


def stage_api(stack: Deployment) -> Answer:
    """The stage's own HTTP API, signed (see ``signed_proxy``)."""
    if not stack.api_url:
        raise NoHttpApi(f"{stack.name} has no HTTP API (no HttpApi in the stack) to serve from")
    return signed_proxy(stack, stack.api_url)


def _json(message: str) -> bytes:
    return json.dumps({"message": message}).encode()


# The gallery is one static page: its own scripts and styles, thumbnails from presigned URLs.
CSP = (
    "default-src 'self'; img-src 'self' http: https: data:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self' 'unsafe-inline'; frame-ancestors 'none'"
)


class _Http(ThreadingHTTPServer):
    app: ApiServer


class _Handler(BaseHTTPRequestHandler):
    server: _Http

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: the gallery polls every few seconds

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(body)))
        self.send_header("cache-control", "no-store")
        self.send_header("x-content-type-options", "nosniff")
        self.send_header("referrer-policy", "no-referrer")
        if content_type.startswith("text/html"):
            self.send_header("content-security-policy", CSP)
        self.end_headers()
        self.wfile.write(body)

    def _error(self, status: int, message: str) -> None:
        self._send(status, _json(message), "application/json")

    def do_GET(self) -> None:
        try:
            self._get()
        except Exception:  # noqa: BLE001 - answer, never drop the connection
            self._error(500, "internal error")

    def _get(self) -> None:
        app = self.server.app
        if not app.host_allowed(self.headers.get("host", "")):
            self._error(403, "foreign Host header refused")
            return
        url = urlsplit(self.path)
        try:
            query = dict(parse_qsl(url.query, max_num_fields=MAX_QUERY_FIELDS))
            path = unquote(url.path, errors="strict")
        except (ValueError, UnicodeDecodeError):
            self._error(400, "malformed query or path")
            return
        if path in _STATIC:
            name, ctype = _STATIC[path]
            package = "imgpipe" if name == "openapi.json" else "imgpipe.web"
            self._send(200, (files(package) / name).read_bytes(), ctype)
            return
        if not app.authorized(self.headers, query.pop("token", "")):
            self._error(401, "a token is needed: open the URL the command printed")
            return
        if not path.startswith("/"):
            self._error(400, "the request target must be a path")
            return
        status, body = app.answer(path, query)
        self._send(status, body, "application/json")

    def _refuse(self) -> None:
        self._error(405, "only GET is served")

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _refuse


class ApiServer:
    def __init__(self, answer: Answer, port: int = 0, *, token: str | None = None) -> None:
        """``answer``: what a GET of the API gets (``signed_proxy`` to a stage's API)."""
        self.token = token or secrets.token_urlsafe(24)
        self.answer = answer
        self._server = _Http(("127.0.0.1", port), _Handler)
        self._server.app = self
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def gallery_url(self) -> str:
        """What to open: the page, with the token that unlocks it in the fragment."""
        return self.gallery_link()

    def gallery_link(self, **query: str) -> str:
        """The page with ``query`` (e.g. ``prefix``) and the token in the fragment."""
        search = f"?{urlencode(query)}" if query else ""
        return f"{self.url}/{search}#token={self.token}"

    def host_allowed(self, host: str) -> bool:
        return host in {f"{name}:{self.port}" for name in ("127.0.0.1", "localhost", "[::1]")}

    def authorized(self, headers: Any, given: str) -> bool:
        candidates = [given]
        auth = str(headers.get("authorization", ""))
        if auth.lower().startswith("bearer "):
            candidates.append(auth[7:].strip())
        return any(c and hmac.compare_digest(c.encode(), self.token.encode()) for c in candidates)

    def start(self) -> ApiServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> ApiServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
