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
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.resources import files
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

from ..deployment import Access, Deployment

_STATIC = {
    "/": ("gallery.html", "text/html; charset=utf-8"),
    "/gallery.html": ("gallery.html", "text/html; charset=utf-8"),
    "/openapi.json": ("openapi.json", "application/json"),
}
MAX_QUERY_FIELDS = 20

# (decoded path, query) -> (status, JSON body bytes)
Answer = Callable[[str, dict[str, str]], tuple[int, bytes]]


class SignedProxy:
    """Each call forwarded to the stage's HTTP API (API Gateway and its functions, on AWS or
    the local endpoint), signed with the stage's credentials."""

    def __init__(self, access: Access, api_url: str) -> None:
        self.access = access
        self.base = urlsplit(api_url)
        if self.base.scheme not in ("https", "http") or not self.base.hostname:
            raise ValueError(f"not an HTTP(S) API URL: {api_url[:80]!r}")

    def _url(self, path: str, query: dict[str, str]) -> str | None:
        # Built from parts, never by concatenation: whatever the path holds, the call goes to
        # the stage's API host (a target like ".attacker.example/x" must not extend its name).
        if not path.startswith("/"):
            return None
        target = self.base.path.rstrip("/") + quote(path, safe="/")
        return urlunsplit((self.base.scheme, self.base.netloc, target, urlencode(query), ""))

    def __call__(self, path: str, query: dict[str, str]) -> tuple[int, bytes]:
        from .signing import signed_get

        url = self._url(path, query)
        if url is None:
            return 400, _json("the path must start with /")
        status, body, _ = signed_get(url, self.access)
        return status, body

    def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        from .signing import signed_request

        url = self._url(path, {})
        if url is None:
            return 400, _json("the path must start with /")
        status, answer, _ = signed_request("POST", url, self.access, body, "application/json")
        return status, answer


def signed_proxy(stack: Deployment, api_url: str) -> SignedProxy:
    return SignedProxy(stack.access, api_url)


class NoHttpApi(RuntimeError):
    pass


def stage_api(stack: Deployment) -> SignedProxy:
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
        parsed = self._parsed()
        if parsed is None:
            return
        path, query = parsed
        if path in _STATIC:
            name, ctype = _STATIC[path]
            package = "imgpipe" if name == "openapi.json" else "imgpipe.web"
            self._send(200, (files(package) / name).read_bytes(), ctype)
            return
        if not self._authorized(query):
            return
        if not path.startswith("/"):
            self._error(400, "the request target must be a path")
            return
        if path == "/uploads" or path.startswith("/uploads/"):
            self._refuse()  # POST (and the page's PUT) only
            return
        if path.startswith("/render/"):  # a redirect this server would not pass on
            self._error(404, "render URLs are the stage API's: `imgpipe render-url` prints them")
            return
        status, body = app.answer(path, query)
        self._send(status, body, "application/json")

    def _refuse(self) -> None:
        """405 with the methods the path does have (any method the server does not serve,
        TRACE and CONNECT included: BaseHTTPRequestHandler would answer 501)."""
        path = urlsplit(self.path).path
        allow = "POST" if path == "/uploads" else "PUT" if path.startswith("/uploads/") else "GET"
        body = _json(f"{self.command[:10]} is not served here; use {allow}")
        self.send_response(405)
        self.send_header("allow", allow)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.send_header("cache-control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def __getattr__(self, name: str) -> Any:
        # every method with no do_ of its own (DELETE, TRACE, QUERY, anything a client sends)
        if name.startswith("do_"):
            return self._refuse
        raise AttributeError(name)

    def _parsed(self) -> tuple[str, dict[str, str]] | None:
        """The request's decoded path and query if its Host is loopback's (else answered
        here: None)."""
        if not self.server.app.host_allowed(self.headers.get("host", "")):
            self._error(403, "foreign Host header refused")
            return None
        url = urlsplit(self.path)
        try:
            query = dict(
                parse_qsl(url.query, keep_blank_values=True, max_num_fields=MAX_QUERY_FIELDS)
            )
            return unquote(url.path, errors="strict"), query
        except (ValueError, UnicodeDecodeError):
            self._error(400, "malformed query or path")
            return None

    def _admitted(self) -> str | None:
        """The request's path if its Host and token pass (else answered here: None)."""
        parsed = self._parsed()
        if parsed is None:
            return None
        path, query = parsed
        return path if self._authorized(query) else None

    def _authorized(self, query: dict[str, str]) -> bool:
        """Whether the request carries the token, in its Authorization header only (a URL is
        kept in logs, history and Referer headers); else answered here."""
        if "token" in query:
            self._error(400, "the token goes in an Authorization: Bearer header, never the URL")
            return False
        if not self.server.app.authorized(self.headers):
            self._error(401, "a token is needed: open the URL the command printed")
            return False
        return True

    def _body(self, limit: int) -> bytes | None:
        try:
            length = int(self.headers.get("content-length", ""))
        except ValueError:
            self._error(411, "a Content-Length is needed")
            return None
        if not 0 <= length <= limit:
            self._error(413, f"the body must be at most {limit} bytes")
            return None
        return self.rfile.read(length)

    def do_POST(self) -> None:
        try:
            path = self._admitted()
            if path is None:
                return
            if path != "/uploads" or self.server.app.uploads is None:
                self._refuse()
                return
            body = self._body(MAX_UPLOAD_REQUEST)
            if body is not None:
                self._send(*self.server.app.uploads.request(body), "application/json")
        except Exception:  # noqa: BLE001 - answer, never drop the connection
            self._error(500, "internal error")

    def do_PUT(self) -> None:
        try:
            path = self._admitted()
            if path is None:
                return
            uploads = self.server.app.uploads
            if not path.startswith("/uploads/") or uploads is None:
                self._refuse()
                return
            form = uploads.take(path.removeprefix("/uploads/"))
            if form is None:
                self._error(404, "no upload form for that key here (used, or expired)")
                return
            body = self._body(form.max_bytes)
            if body is not None:
                self._send(
                    *form.send(body, self.headers.get("content-type", "")), "application/json"
                )
        except Exception:  # noqa: BLE001 - answer, never drop the connection
            self._error(500, "internal error")


MAX_UPLOAD_REQUEST = 4096  # bytes of a POST /uploads request (a small JSON document)


@dataclass
class Form:
    """A presigned POST the stage's API handed out, kept here for the page's one PUT of the
    file: the page sends the raw bytes to this server (same origin, so with progress and no
    bucket CORS), and this server posts them to S3 with exactly the form's fields."""

    url: str
    fields: dict[str, str]
    max_bytes: int
    expires: float

    def send(self, data: bytes, content_type: str) -> tuple[int, bytes]:
        if content_type.split(";")[0].strip().lower() != self.fields.get("Content-Type"):
            return 400, _json(f"the file must be sent as {self.fields.get('Content-Type')}")
        boundary = secrets.token_hex(16)
        disposition = '--{}\r\nContent-Disposition: form-data; name="{}"\r\n\r\n{}\r\n'
        parts = [disposition.format(boundary, k, v).encode() for k, v in self.fields.items()]
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="upload"\r\n'
            f"Content-Type: {self.fields.get('Content-Type')}\r\n\r\n".encode()
            + data
            + f"\r\n--{boundary}--\r\n".encode()
        )
        request = urllib.request.Request(  # noqa: S310 - the URL the stage's API signed
            self.url,
            data=b"".join(parts),
            method="POST",
            headers={"content-type": f"multipart/form-data; boundary={boundary}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=120) as resp:  # noqa: S310
                return resp.status if resp.status != 204 else 200, _json("uploaded")
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:300].decode(errors="replace")
            return exc.code, _json(f"S3 refused the upload: {detail}")


class Uploads:
    """POST /uploads through the stage's API; the forms it answers, by key, until used."""

    def __init__(self, proxy: SignedProxy) -> None:
        self.proxy = proxy
        self.forms: dict[str, Form] = {}
        self.lock = threading.Lock()

    def request(self, body: bytes) -> tuple[int, bytes]:
        status, answer = self.proxy.post("/uploads", body)
        if status != 201:
            return status, answer
        doc = json.loads(answer)
        key, upload = doc["key"], doc["upload"]
        form = Form(
            upload["url"],
            {str(k): str(v) for k, v in upload["fields"].items()},
            int(doc["max_bytes"]),
            time.monotonic() + int(doc["expires_in"]),
        )
        with self.lock:
            now = time.monotonic()
            self.forms = {k: f for k, f in self.forms.items() if f.expires > now}
            self.forms[key] = form
        doc["send"] = "/uploads/" + quote(key)  # where the page PUTs the file, here
        return 201, json.dumps(doc).encode()

    def take(self, key: str) -> Form | None:
        with self.lock:
            form = self.forms.pop(key, None)
        return form if form is not None and form.expires > time.monotonic() else None


class ApiServer:
    def __init__(self, answer: Answer, port: int = 0, *, token: str | None = None) -> None:
        """``answer``: what a GET of the API gets (``signed_proxy`` to a stage's API; with
        it, uploads go through the stage's POST /uploads too)."""
        self.token = token or secrets.token_urlsafe(24)
        self.answer = answer
        self.uploads = Uploads(answer) if isinstance(answer, SignedProxy) else None
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

    def authorized(self, headers: Any) -> bool:
        auth = str(headers.get("authorization", ""))
        given = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
        return bool(given) and hmac.compare_digest(given.encode(), self.token.encode())

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
