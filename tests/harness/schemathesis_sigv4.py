"""Schemathesis auth for the stage's HTTP API: each generated request signed with SigV4
(``execute-api``), with the credentials of ``imgpipe local env``, as a user's client signs it.

Loaded by ``st run`` through ``SCHEMATHESIS_HOOKS=tests.harness.schemathesis_sigv4``
(``functional/test_api_contract.py``). An auth provider rather than a request hook, so that the
tester knows the credentials are its own: its ``ignored_auth`` check sends the same request
unsigned and with a forged signature, and the API must refuse both.

The signature covers the request exactly as the transport will send it: the case is prepared
with ``requests`` (the transport schemathesis uses), then signed by botocore.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit

import requests
import schemathesis
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials


@schemathesis.auth()
class SigV4:
    def get(self, case: Any, ctx: Any) -> SigV4Auth:
        credentials = Credentials(
            os.environ["AWS_ACCESS_KEY_ID"],
            os.environ["AWS_SECRET_ACCESS_KEY"],
            os.environ.get("AWS_SESSION_TOKEN"),
        )
        return SigV4Auth(
            credentials, "execute-api", os.environ.get("AWS_DEFAULT_REGION", "us-east-1")
        )

    def set(self, case: Any, data: SigV4Auth, ctx: Any) -> None:
        _sign_render_url(case)
        kwargs = case.as_transport_kwargs(base_url=os.environ["IMGPIPE_API_URL"])
        for transport_only in ("timeout", "verify", "allow_redirects", "cert", "proxies"):
            kwargs.pop(transport_only, None)
        prepared = requests.Session().prepare_request(requests.Request(**kwargs))
        # only the headers SigV4 needs: what the transport adds on its own is not signed
        request = AWSRequest(
            method=prepared.method,
            url=prepared.url,
            data=prepared.body or b"",
            headers={"host": urlsplit(str(prepared.url)).netloc},
        )
        data.add_auth(request)
        case.headers = case.headers or {}
        for name in ("Authorization", "X-Amz-Date", "X-Amz-Security-Token"):
            if name in request.headers:
                case.headers[name] = request.headers[name]


def _sign_render_url(case: Any) -> None:
    """A render URL carries its own signature (the stage's render secret, which the suite
    passes in ``IMGPIPE_RENDER_SECRET``): where the generated parameters are a valid request,
    sign them as `imgpipe render-url` would, so that the tester reaches past the signature
    check (to the record, and to a real render for a key the links lead to)."""
    secret = os.environ.get("IMGPIPE_RENDER_SECRET", "").encode()
    if not secret or not str(case.path).startswith("/render/") or not case.query:
        return
    from imgpipe.renditions import BadRender, parse, sign

    key = str((case.path_parameters or {}).get("key", ""))
    query = {str(k): str(v) for k, v in case.query.items()}
    try:
        render, _ = parse(query)
    except BadRender:
        return  # a negative case: its parameters are the point
    if key and "sig" in query:
        case.query["sig"] = sign(secret, key, render)
