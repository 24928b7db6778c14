"""The local stack answers its owner only (src/imgpipe/local/ministack_guard.py): the root key
with any secret but this run's, a signature of zeros, no signature, or another run's secret is
refused by the stack and by its HTTP API, over headers, presigned URLs, presigned POST forms and
S3's chunked uploads; and MiniStack's admin routes answer no one. (Where IAM is not enforced,
the LocalStack stand-in, there is no guard either: like LocalStack, it takes any secret.)"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import quote

import boto3
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from imgpipe.deployment import Access, Deployment
from imgpipe.local import endpoint
from imgpipe.web.signing import signed_request

pytestmark = [pytest.mark.functional, pytest.mark.needs_iam]

REGION = "us-east-1"


def _secret(stack: Deployment) -> str:
    """This run's secret, as the owner's tools hold it."""
    assert stack.access.secret is not None
    return stack.access.secret


def _key(stack: Deployment) -> str:
    assert stack.access.key_id is not None
    return stack.access.key_id


def _client(stack: Deployment, service: str, secret: str) -> Any:
    make: Any = boto3.client  # a service chosen at run time: no stub overload fits
    return make(
        service,
        endpoint_url=stack.access.endpoint_url,
        region_name=REGION,
        aws_access_key_id=stack.access.key_id,
        aws_secret_access_key=secret,
        config=Config(signature_version="s3v4", retries={"max_attempts": 1}),
    )


def _status(req: urllib.request.Request) -> int:
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


@pytest.fixture(scope="module")
def another_runs_secret(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The secret of another guarded MiniStack, started (and stopped) beside ours."""
    import os

    saved = os.environ.get(endpoint.STATE_DIR_ENV)
    os.environ[endpoint.STATE_DIR_ENV] = str(tmp_path_factory.mktemp("another-run"))
    try:
        other = endpoint.start_ministack(60)
    finally:
        if saved is None:
            os.environ.pop(endpoint.STATE_DIR_ENV, None)
        else:
            os.environ[endpoint.STATE_DIR_ENV] = saved
    try:
        yield other.secret
    finally:
        endpoint.stop(other)


def _refused(call: Callable[[], object]) -> None:
    with pytest.raises(ClientError) as info:
        call()
    error = info.value.response["Error"]
    assert error["Code"] in {"AccessDenied", "AccessDeniedException"}, error
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_the_root_key_needs_this_runs_secret(
    local_stack: Deployment, another_runs_secret: str
) -> None:
    secret = _secret(local_stack)
    assert len(secret) >= 32 and another_runs_secret != secret
    calls: dict[str, Callable[[Any], object]] = {
        "s3": lambda c: c.list_buckets(),
        "sqs": lambda c: c.list_queues(),
        "lambda": lambda c: c.list_functions(),
        "sts": lambda c: c.get_caller_identity(),
        "dynamodb": lambda c: c.list_tables(),
        "cloudformation": lambda c: c.list_stacks(),
    }
    for service, call in calls.items():
        call(_client(local_stack, service, secret))  # the owner's
        for wrong in ("test", "wrong-secret", another_runs_secret):
            _refused(partial(call, _client(local_stack, service, wrong)))


def _signed(stack: Deployment, method: str, url: str, service: str, body: bytes = b"") -> Any:
    request = AWSRequest(method=method, url=url, data=body or None)
    creds = Credentials(_key(stack), _secret(stack))
    SigV4Auth(creds, service, REGION).add_auth(request)
    return request


def _zeroed(request: Any) -> dict[str, str]:
    """``request``'s headers with its signature replaced by zeros."""
    headers = {str(k): str(v) for k, v in request.headers.items()}
    zeros = "Signature=" + "0" * 64
    headers["Authorization"] = re.sub(r"Signature=[0-9a-f]+", zeros, headers["Authorization"])
    return headers


def test_a_signature_of_zeros_or_none_is_refused(local_stack: Deployment) -> None:
    url = f"{local_stack.access.endpoint_url}/2015-03-31/functions/"
    good = _signed(local_stack, "GET", url, "lambda")
    assert _status(urllib.request.Request(url, headers=dict(good.headers.items()))) == 200
    zeros = dict(good.headers.items())
    zeros["Authorization"] = re.sub(
        r"Signature=[0-9a-f]+", "Signature=" + "0" * 64, zeros["Authorization"]
    )
    assert _status(urllib.request.Request(url, headers=zeros)) == 403
    assert _status(urllib.request.Request(url)) == 403  # none at all
    # presigned: a good URL works, the same with its signature zeroed does not
    s3 = _client(local_stack, "s3", _secret(local_stack))
    key = f"guard/{uuid.uuid4().hex}.txt"
    s3.put_object(Bucket=local_stack.uploads_bucket, Key=key, Body=b"x")
    try:
        presigned = s3.generate_presigned_url(
            "get_object", Params={"Bucket": local_stack.uploads_bucket, "Key": key}
        )
        assert _status(urllib.request.Request(presigned)) == 200
        zeroed = re.sub(r"X-Amz-Signature=[0-9a-f]+", "X-Amz-Signature=00", presigned)
        assert _status(urllib.request.Request(zeroed)) == 403
        forged = _client(local_stack, "s3", "wrong").generate_presigned_url(
            "get_object", Params={"Bucket": local_stack.uploads_bucket, "Key": key}
        )
        assert _status(urllib.request.Request(forged)) == 403
        unsigned = f"{local_stack.access.endpoint_url}/{local_stack.uploads_bucket}/{key}"
        assert _status(urllib.request.Request(unsigned)) == 403
    finally:
        s3.delete_object(Bucket=local_stack.uploads_bucket, Key=key)


def _chunked_put(stack: Deployment, key: str, data: bytes, tamper: bool) -> int:
    """An S3 PUT as SDKs stream it: aws-chunked, each chunk signed, chained from the seed."""
    chunks = [data[i : i + 65536] for i in range(0, len(data), 65536)] + [b""]
    url = f"{stack.access.endpoint_url}/{stack.uploads_bucket}/{quote(key)}"
    encoded_length = sum(len(f"{len(c):x};chunk-signature=") + 64 + 4 + len(c) for c in chunks)
    headers = {
        "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
        "x-amz-decoded-content-length": str(len(data)),
        "content-encoding": "aws-chunked",
        "content-length": str(encoded_length),
    }
    request = AWSRequest(method="PUT", url=url, headers=headers)
    SigV4Auth(Credentials(_key(stack), _secret(stack)), "s3", REGION).add_auth(request)
    seed = request.headers["Authorization"].rsplit("Signature=", 1)[1]
    amz_date = request.headers["X-Amz-Date"]
    day = amz_date[:8]
    key_bytes = b"AWS4" + _secret(stack).encode()
    for part in (day, REGION, "s3", "aws4_request"):
        key_bytes = hmac.new(key_bytes, part.encode(), hashlib.sha256).digest()
    scope = f"{day}/{REGION}/s3/aws4_request"
    body, previous = b"", seed
    for i, chunk in enumerate(chunks):
        to_sign = "\n".join(
            [
                "AWS4-HMAC-SHA256-PAYLOAD",
                amz_date,
                scope,
                previous,
                hashlib.sha256(b"").hexdigest(),
                hashlib.sha256(chunk).hexdigest(),
            ]
        )
        previous = hmac.new(key_bytes, to_sign.encode(), hashlib.sha256).hexdigest()
        shown = "0" * 64 if tamper and i == 1 else previous
        body += f"{len(chunk):x};chunk-signature={shown}\r\n".encode() + chunk + b"\r\n"
    sent = urllib.request.Request(url, data=body, method="PUT", headers=dict(request.headers))
    return _status(sent)


def test_a_chunked_upload_is_checked_chunk_by_chunk(local_stack: Deployment) -> None:
    data = bytes(range(256)) * 1024  # 256 KiB: five chunks
    key = f"guard/{uuid.uuid4().hex}.bin"
    s3 = _client(local_stack, "s3", _secret(local_stack))
    try:
        assert _chunked_put(local_stack, key, data, tamper=False) == 200
        assert s3.get_object(Bucket=local_stack.uploads_bucket, Key=key)["Body"].read() == data
        assert _chunked_put(local_stack, key + ".2", data, tamper=True) == 403
    finally:
        s3.delete_objects(
            Bucket=local_stack.uploads_bucket,
            Delete={"Objects": [{"Key": key}, {"Key": key + ".2"}]},
        )


def test_a_presigned_post_form_needs_this_runs_secret(local_stack: Deployment) -> None:
    key = f"guard/{uuid.uuid4().hex}.jpg"

    def post(secret: str) -> int:
        form = _client(local_stack, "s3", secret).generate_presigned_post(
            local_stack.uploads_bucket, key
        )
        boundary = uuid.uuid4().hex
        parts = [
            f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
            for k, v in form["fields"].items()
        ]
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="p.jpg"\r\n'
            f"Content-Type: image/jpeg\r\n\r\n".encode()
            + b"\xff\xd8\xff"
            + f"\r\n--{boundary}--\r\n".encode()
        )
        req = urllib.request.Request(
            form["url"],
            data=b"".join(parts),
            method="POST",
            headers={"content-type": f"multipart/form-data; boundary={boundary}"},
        )
        return _status(req)

    s3 = _client(local_stack, "s3", _secret(local_stack))
    try:
        assert post("wrong-secret") == 403
        assert post(_secret(local_stack)) in (200, 201, 204)
    finally:
        s3.delete_object(Bucket=local_stack.uploads_bucket, Key=key)


def test_the_local_api_needs_this_runs_secret(
    local_stack: Deployment, another_runs_secret: str
) -> None:
    assert local_stack.api_url
    url = f"{local_stack.api_url}/images/{quote('no such key.jpg')}"
    assert signed_request("GET", url, local_stack.access)[0] == 404  # through: not found
    for wrong in ("test", "wrong-secret", another_runs_secret):
        access = Access(local_stack.access.endpoint_url, REGION, local_stack.access.key_id, wrong)
        assert signed_request("GET", url, access)[0] == 403
    # a signature of zeros, and none, on the API's own host
    host = url.split("//", 1)[1].split("/", 1)[0]
    direct = url.replace(host, f"127.0.0.1:{host.rsplit(':', 1)[1]}")
    good = _signed(local_stack, "GET", url, "execute-api")
    zeros = dict(good.headers.items())
    zeros["Authorization"] = re.sub(
        r"Signature=[0-9a-f]+", "Signature=" + "0" * 64, zeros["Authorization"]
    )
    assert _status(urllib.request.Request(direct, headers={**zeros, "Host": host})) == 403
    assert _status(urllib.request.Request(direct, headers={"Host": host})) == 403


def test_an_unsigned_request_is_refused_whatever_it_asks(local_stack: Deployment) -> None:
    """MiniStack alone lets an anonymous caller create a bucket; behind the guard nothing
    unsigned gets through but the health check (and POST forms, signed in their fields)."""
    base = str(local_stack.access.endpoint_url)
    for method, path, body in (
        ("PUT", "/someone-elses-bucket", b""),
        ("GET", "/", None),
        ("POST", "/", b"Action=ListQueues"),
        ("POST", "/2015-03-31/functions/x/invocations", b"{}"),
    ):
        req = urllib.request.Request(base + path, data=body, method=method)
        assert _status(req) == 403, (method, path)
    buckets = _client(local_stack, "s3", _secret(local_stack)).list_buckets()["Buckets"]
    assert "someone-elses-bucket" not in {b["Name"] for b in buckets}


def test_ministacks_admin_routes_answer_no_one(local_stack: Deployment) -> None:
    base = str(local_stack.access.endpoint_url)
    assert _status(urllib.request.Request(f"{base}/_ministack/health")) == 200
    for method, path in (
        ("POST", "/_ministack/config"),
        ("POST", "/_ministack/reset"),
        ("GET", "/_ministack/sqs/messages"),
        ("GET", "/_ministack/lambda-code/x"),
    ):
        body = json.dumps({"AUTH": "false"}).encode() if method == "POST" else None
        assert _status(urllib.request.Request(base + path, data=body, method=method)) == 403, path


def test_the_secret_lives_in_the_owners_folder_only() -> None:
    state = endpoint.state_dir()
    assert state.stat().st_mode & 0o077 == 0
    recorded = Path(state, "local.json")
    assert recorded.stat().st_mode & 0o077 == 0
    assert len(json.loads(recorded.read_text())["secret"]) >= 32
