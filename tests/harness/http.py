"""Plain HTTP calls to the local stack, including the HTTP API at ``<id>.execute-api.localhost``
(browsers and curl resolve ``*.localhost`` to loopback; Python's resolver does not, so the request
goes to 127.0.0.1 with that name as Host, which is what the endpoint routes on)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlsplit, urlunsplit


def request(url: str, headers: dict[str, str] | None = None) -> urllib.request.Request:
    parts = urlsplit(url)
    host = parts.hostname or ""
    if host.endswith(".localhost"):
        netloc = f"127.0.0.1:{parts.port}" if parts.port else "127.0.0.1"
        req = urllib.request.Request(urlunsplit(parts._replace(netloc=netloc)))
        req.add_header("Host", parts.netloc)
    else:
        req = urllib.request.Request(url)
    for name, value in (headers or {}).items():
        req.add_header(name.capitalize(), value)
    return req


def get_json(url: str, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    """(status, parsed JSON body) of a GET, errors included."""
    try:
        with urllib.request.urlopen(request(url, headers), timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())
