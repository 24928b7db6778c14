"""`imgpipe upload --via-api`: upload as an app's user does, with nothing but the right to call
the stage's HTTP API (``execute-api:Invoke``): POST /uploads for a form, the file to S3 with
it, and (``--wait``) GET /images/<key> until the photo's status is final."""

from __future__ import annotations

import json
import mimetypes
import sys
import time
from pathlib import Path

import click

from ..codec import JsonObject
from ..deployment import Access
from ..outcomes import FINAL
from ..uploads import content_type_of
from ..web.server import Form, SignedProxy
from . import echo_json, printable, table

POLL_MAX_S = 8.0


def _form(proxy: SignedProxy, path: Path) -> tuple[str, Form]:
    # the stage's own table first: mimetypes knows HEIC only where the system's tables do
    ctype = content_type_of(path.name) or mimetypes.guess_type(path.name)[0]
    request = {
        "content_type": ctype or "application/octet-stream",
        "filename": path.name,
        "size": path.stat().st_size,
    }
    status, body = proxy.post("/uploads", json.dumps(request).encode())
    answer = json.loads(body or b"{}")
    if status != 201:
        message = answer.get("message", body[:200].decode(errors="replace"))
        raise click.ClickException(printable(f"{path}: POST /uploads answered {status}: {message}"))
    upload = answer["upload"]
    fields = {str(k): str(v) for k, v in upload["fields"].items()}
    form = Form(upload["url"], fields, int(answer["max_bytes"]), time.monotonic() + 300)
    return str(answer["key"]), form


def upload_via_api(
    paths: list[Path], api_url: str, access: Access, wait: bool, timeout: float, as_json: bool
) -> int:
    """Exit status: 1 if any upload was refused, FAILED, or not final within ``timeout``."""
    proxy = SignedProxy(access, api_url)
    keys: dict[str, Path] = {}
    with click.progressbar(paths, label="uploading", file=sys.stderr, show_pos=True) as bar:
        for path in bar:
            key, form = _form(proxy, path)
            status, answer = form.send(path.read_bytes(), form.fields["Content-Type"])
            if status >= 300:
                raise click.ClickException(printable(f"{path}: {json.loads(answer)['message']}"))
            keys[key] = path
    if not wait:
        if as_json:
            echo_json([{"key": k, "file": str(p)} for k, p in keys.items()])
        else:
            for key, path in keys.items():
                click.echo(printable(f"{path} -> {key}"))
        return 0
    final = _wait(proxy, list(keys), timeout)
    if as_json:
        echo_json([final.get(k, {"key": k, "status": "PENDING"}) for k in keys])
    else:
        rows = [("file", "key", "status")]
        for key, path in keys.items():
            doc = final.get(key, {})
            rows.append((str(path), key, str(doc.get("status", "PENDING"))))
        click.echo(table(rows))
    bad = [d for d in final.values() if d.get("status") == "FAILED"]
    return 1 if bad or len(final) < len(keys) else 0


def _wait(proxy: SignedProxy, keys: list[str], timeout: float) -> dict[str, JsonObject]:
    final: dict[str, JsonObject] = {}
    deadline, pause = time.monotonic() + timeout, 0.5
    with click.progressbar(length=len(keys), label="processing", file=sys.stderr) as bar:
        while len(final) < len(keys) and time.monotonic() < deadline:
            for key in [k for k in keys if k not in final]:
                status, body = proxy(f"/images/{key}", {})
                doc = json.loads(body or b"{}") if status == 200 else {}
                if doc.get("status") in FINAL:
                    final[key] = doc
                    bar.update(1)
            if len(final) < len(keys):
                time.sleep(pause)
                pause = min(pause * 1.6, POLL_MAX_S)
    return final
