"""Calls to a deployed status API the way an AWS SDK makes them: signed with SigV4 for
``execute-api`` with the caller's credentials (the routes' authorizer is AWS_IAM by default)."""

from __future__ import annotations

import urllib.error
import urllib.request
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest

from ..deployment import Access

TIMEOUT = 30


def canonical_query(url: str) -> str:
    """``url`` with its query encoded as SigV4 canonicalises it (every byte but A-Z a-z 0-9
    -_.~ percent-encoded, "/" too): botocore signs the query as it is written, the server
    decodes and re-encodes it, so a "/" or ":" left bare would not verify."""
    parts = urlsplit(url)
    if not parts.query:
        return url
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    return urlunsplit(parts._replace(query=urlencode(pairs, quote_via=quote, safe="-_.~")))


def signed_get(url: str, access: Access) -> tuple[int, bytes, str]:
    """(status, body, content type) of a signed GET of ``url``, HTTP errors included.

    ``*.localhost`` hosts (the local endpoint's API Gateway) are reached on 127.0.0.1 with the
    signed name as Host: Python's resolver does not map them to loopback as browsers do."""
    return signed_request("GET", url, access)


def signed_request(
    method: str, url: str, access: Access, body: bytes = b"", content_type: str = ""
) -> tuple[int, bytes, str]:
    """(status, body, content type) of a SigV4-signed ``method`` of ``url`` (see signed_get)."""
    session = boto3.Session(
        aws_access_key_id=access.key_id,
        aws_secret_access_key=access.secret,
        region_name=access.region,
    )
    credentials = session.get_credentials()
    if credentials is None:
        raise RuntimeError("no AWS credentials to sign the request with (aws configure?)")
    region = session.region_name or "us-east-1"
    headers = {"content-type": content_type} if content_type else {}
    url = canonical_query(url)
    signed = AWSRequest(method=method, url=url, data=body or None, headers=headers)
    SigV4Auth(credentials.get_frozen_credentials(), "execute-api", region).add_auth(signed)
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http"):
        raise ValueError(f"not an HTTP(S) URL: {url[:80]!r}")
    target = url
    if (parts.hostname or "").endswith(".localhost"):
        netloc = f"127.0.0.1:{parts.port}" if parts.port else "127.0.0.1"
        target = urlunsplit(parts._replace(netloc=netloc))
    req = urllib.request.Request(  # noqa: S310 - checked above
        target, data=body or None, method=method, headers=dict(signed.headers.items())
    )
    req.add_header("Host", parts.netloc)
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT) as resp:  # noqa: S310 - checked above
            return resp.status, resp.read(), resp.headers.get("content-type", "")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), exc.headers.get("content-type", "")
