"""The status API and the gallery page on loopback, for the local stack.

The same ``StatusApi`` the Lambda uses answers here, so `curl`, the CLI and the gallery send the
same requests locally as against API Gateway.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.resources import files
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from ..api import StatusApi
from ..deployment import Deployment

_STATIC = {
    "/": ("gallery.html", "text/html; charset=utf-8"),
    "/gallery.html": ("gallery.html", "text/html; charset=utf-8"),
    "/openapi.json": ("openapi.json", "application/json"),
}


class ApiServer:
    def __init__(self, stack: Deployment, port: int = 0) -> None:
        api = StatusApi.of(stack)

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet: the gallery polls every few seconds

            def _send(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("content-type", content_type)
                self.send_header("content-length", str(len(body)))
                self.send_header("cache-control", "no-store")
                self.send_header("access-control-allow-origin", "*")
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                if url.path in _STATIC:
                    name, ctype = _STATIC[url.path]
                    package = "imgpipe" if name == "openapi.json" else "imgpipe.web"
                    self._send(200, (files(package) / name).read_bytes(), ctype)
                    return
                response = api.handle("GET", unquote(url.path), dict(parse_qsl(url.query)))
                body = json.dumps(response.body, ensure_ascii=False).encode()
                self._send(response.status, body, "application/json")

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

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
