"""MiniStack for its owner only: run as ``<.venv-ministack python> ministack_guard.py`` instead
of the ``ministack`` launcher (``endpoint.start_ministack``).

MiniStack checks the signatures of IAM users' and STS sessions' requests, but takes any request
that names its root key (``test``, the configured key, any 12-digit account) as the
administrator's without checking the signature; and it answers admin routes
(``/_ministack/config``, ``/reset``, ``/lambda-code``, ``/sqs/messages``...) to anyone. On a
shared machine any user who finds the port could then create a function and invoke it: it would
run as the stack's owner. This front, in MiniStack's own process (so nothing reaches MiniStack
around it), refuses with 403:

- a request naming a root key unless its SigV4 signature, header-signed or presigned (and each
  chunk of an ``aws-chunked`` streaming upload), verifies with the per-run secret MiniStack is
  started with (``AWS_SECRET_ACCESS_KEY``, kept in the owner's 0700 state folder); SigV2 for a
  root key is refused outright;
- a request with no signature at all (MiniStack would let an anonymous caller create a bucket),
  but an S3 POST form, whose signature is in its fields, a CORS preflight and a render URL of
  the local API (its HMAC is in its query, checked by the render function);
- every admin route but the health and readiness checks.

Requests signed with other keys (the functions' role sessions) MiniStack verifies itself, and
POST forms too, for every key. The primitives are MiniStack's
own (``ministack.core.sigv4``), so the two checks cannot disagree on what a signature is.

Self-contained (the standard library and MiniStack): it runs on .venv-ministack's interpreter,
where imgpipe is not installed; never shipped (local/ stays out of the zip and the image).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

# What anyone may ask of MiniStack's own routes: whether it is up.
OPEN_ADMIN = frozenset(
    {"/_ministack/health", "/_localstack/health", "/health", "/_ministack/ready"}
)
ADMIN_PREFIXES = ("/_ministack/", "/_localstack/")  # not /_aws/: HTTP APIs, function URLs
HTTP_APIS = "/_aws/execute-api/"
_RENDER_ROUTE = re.compile(r"^/_aws/execute-api/[0-9a-z]+/render/.")
# Services whose SDKs read an XML error document (S3's REST-XML, the query protocol's); the
# rest read JSON.
XML_SERVICES = frozenset(
    {"s3", "sts", "iam", "cloudformation", "sns", "ses", "email", "ec2", "rds", "monitoring"}
    | {"elasticache", "autoscaling", "elasticloadbalancing", "redshift", "cloudsearch"}
)


def _headers(scope: Scope) -> dict[str, str]:
    """Lower-cased names; a header sent on several lines joined by a bare comma, as SigV4
    signs it (and as MiniStack's own check builds them)."""
    from ministack.core.sigv4 import decode_header_value

    out: dict[str, str] = {}
    for raw_name, raw_value in scope.get("headers", []):
        name, value = raw_name.decode("latin-1").lower(), decode_header_value(raw_value)
        out[name] = f"{out[name]},{value}" if name in out else value
    return out


def _claimed_key(headers: dict[str, str], query: dict[str, list[str]]) -> tuple[str, str]:
    """(the access key a request names, how it is signed: header, query, sigv2 or "")."""
    auth = headers.get("authorization", "")
    if auth.startswith("AWS4-"):
        credential = auth.partition("Credential=")[2].split(",", 1)[0].strip()
        return credential.split("/", 1)[0], "header"
    if auth.startswith("AWS "):
        return auth[4:].split(":", 1)[0].strip(), "sigv2"
    lowered = {k.lower(): v for k, v in query.items()}
    if lowered.get("x-amz-credential"):
        return lowered["x-amz-credential"][0].split("/", 1)[0], "query"
    if lowered.get("awsaccesskeyid"):
        return lowered["awsaccesskeyid"][0], "sigv2"
    return "", ""


def _signed_in_its_body(scope: Scope, headers: dict[str, str]) -> bool:
    """What comes unsigned at the HTTP level and is still checked: an S3 POST form (its policy
    is signed in its fields, which MiniStack's S3 verifies for every key), a CORS preflight
    (answered from the bucket's CORS rules, with no data), and a render URL of the local API
    (its HMAC is in its query, which the render function verifies: an <img> sends no
    header)."""
    method = scope.get("method")
    if method == "OPTIONS":
        return True
    if method == "GET" and _RENDER_ROUTE.match(scope.get("path", "")):
        return "sig" in parse_qs(scope.get("query_string", b"").decode("latin-1"))
    return method == "POST" and headers.get("content-type", "").startswith("multipart/form-data")


def verdict(scope: Scope, headers: dict[str, str]) -> tuple[str, bool]:
    """(why the request is refused, "" if not; whether its root-key signature still has to be
    checked against its body). Decided from the head alone, so a refused or foreign request's
    body is never read into memory."""
    from ministack.core.iam_evaluator import is_root_access_key

    path = scope.get("path", "")
    if path.startswith(ADMIN_PREFIXES) or path == "/health":
        open_route = path in OPEN_ADMIN and scope.get("method") == "GET"
        return ("" if open_route else "admin route"), False
    key, how = _claimed_key(headers, _query(scope))
    if not how:
        return ("" if _signed_in_its_body(scope, headers) else "unsigned request"), False
    if not is_root_access_key(key):
        return "", False  # a key MiniStack checks itself (the roles' sessions)
    if how == "sigv2":
        return "SigV2 for the root key (sign with SigV4: signature_version='s3v4')", False
    return "", True


def _query(scope: Scope) -> dict[str, list[str]]:
    raw_query = scope.get("query_string", b"").decode("utf-8", "replace")
    return parse_qs(raw_query, keep_blank_values=True)


def root_signature_failure(scope: Scope, headers: dict[str, str], body: bytes, secret: str) -> str:
    """Why a root-key request's SigV4 signature does not verify with this run's secret."""
    from ministack.core.sigv4 import (
        header_signature_failure,
        parse_header_signature,
        parse_query_signature,
        request_time_failure,
    )

    query = _query(scope)
    presigned = _claimed_key(headers, query)[1] == "query"
    signature = parse_query_signature(query) if presigned else parse_header_signature(headers)
    if isinstance(signature, tuple):
        return f"malformed signature ({signature[0]})"
    if not presigned and (skewed := request_time_failure(signature)):
        return str(skewed[0])
    path = scope.get("path", "")
    raw_path = (scope.get("raw_path") or path.encode()).decode("latin-1")
    failure = header_signature_failure(
        signature, secret, scope["method"], raw_path, query, headers, body, presigned=presigned
    )
    return str(failure[0]) if failure else ""


async def _refuse(send: Send, path: str, headers: dict[str, str], why: str) -> None:
    """403 in the shape the caller's SDK parses: JSON for the JSON protocols, else the XML
    error document the query and REST-XML protocols (and S3) share."""
    message = f"refused by the local stack's guard: {why}"
    scope = headers.get("authorization", "").partition("Credential=")[2].split(",", 1)[0]
    service = (scope.split("/") + [""] * 4)[3] or "s3"  # presigned and unsigned: S3's
    if path.startswith(HTTP_APIS):  # what API Gateway answers an unauthorised call
        kind = b"application/json"
        body = json.dumps({"message": message}).encode()
    elif service not in XML_SERVICES or "json" in headers.get("content-type", ""):
        kind = b"application/x-amz-json-1.0"
        body = json.dumps({"__type": "AccessDeniedException", "message": message}).encode()
    else:
        kind = b"application/xml"
        text = message.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        body = (
            "<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code>"
            f"<Message>{text}</Message></Error><RequestId>guard</RequestId></ErrorResponse>"
        ).encode()
    start = {
        "type": "http.response.start",
        "status": 403,
        "headers": [(b"content-type", kind), (b"content-length", str(len(body)).encode())],
    }
    await send(start)
    await send({"type": "http.response.body", "body": body})


def guard(app: App, secret: str) -> App:
    async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "http":
            await app(scope, receive, send)
            return
        headers = _headers(scope)
        why, check = verdict(scope, headers)
        if why or not check:
            if why:
                await _refuse(send, scope.get("path", ""), headers, why)
            else:
                await app(scope, receive, send)
            return
        # the body is part of what a root key's signature covers: read it first, then replay it
        chunks, more = [], True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                await app(scope, receive, send)  # a disconnect: MiniStack's own handling
                return
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        if why := root_signature_failure(scope, headers, body, secret):
            await _refuse(send, scope.get("path", ""), headers, why)
            return
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await app(scope, replay, send)

    return guarded


def main() -> None:
    secret = os.environ.get("AWS_SECRET_ACCESS_KEY", "")
    if len(secret) < 32:
        raise SystemExit("ministack_guard: AWS_SECRET_ACCESS_KEY must be the run's own secret")
    import ministack.app

    ministack.app.app = guard(ministack.app.app, secret)  # main() serves the module's `app`
    ministack.app.main()


if __name__ == "__main__":
    main()
