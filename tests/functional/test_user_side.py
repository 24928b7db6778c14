"""The user's side on the local stack: the status API over HTTP, the `imgpipe` command through
its entry point, and the gallery page in a real browser."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import boto3
import pytest
from botocore.exceptions import ClientError

from imgpipe.catalog import Catalog
from imgpipe.deployment import Deployment
from imgpipe.web.server import ApiServer, stage_api
from imgpipe.web.signing import signed_get
from tests.conftest import ROOT, Events, jpeg_bytes, jpeg_of, skimage_photo
from tests.functional.conftest import MAX_BYTES, UPLOAD_EXPIRES, dead_letter, wait_for
from tests.harness.backends import processing
from tests.harness.browser import chromium
from tests.harness.cli import IMGPIPE, imgpipe
from tests.harness.http import get_json, request
from tests.harness.roles import role_allowed

# on both endpoints: what LocalStack users run (make test-functional-localstack)
pytestmark = [pytest.mark.functional, pytest.mark.localstack_path]


@pytest.fixture(scope="module")
def server(local_stack: Deployment) -> Iterator[ApiServer]:
    """`imgpipe gallery`'s loopback server: the page, and each API call forwarded signed to the
    deployed HTTP API (the endpoint's API Gateway and the packaged status Lambda)."""
    with ApiServer(stage_api(local_stack)) as started:
        yield started


@pytest.fixture(scope="module")
def api(server: ApiServer) -> str:
    return server.url


Get = Callable[[str], tuple[int, dict[str, Any]]]


@pytest.fixture(scope="module")
def status_api(local_stack: Deployment, server: ApiServer) -> tuple[str, Get]:
    """The HTTP API as deployed, called as an authorised user: signed (SigV4) where the
    endpoint serves it, else the loopback server with its token."""
    if local_stack.api_url:

        def signed(url: str) -> tuple[int, dict[str, Any]]:
            status, body, _ = signed_get(url, local_stack.access)
            return status, json.loads(body)

        return local_stack.api_url, signed
    return server.url, lambda url: get_json(url, {"authorization": f"Bearer {server.token}"})


def test_anonymous_and_foreign_callers_are_refused(
    local_stack: Deployment, server: ApiServer
) -> None:
    # the loopback server: no token, a wrong one, a DNS-rebinding page's Host
    assert get_json(f"{server.url}/images")[0] == 401
    assert get_json(f"{server.url}/images/a.jpg", {"authorization": "Bearer nope"})[0] == 401
    assert get_json(f"{server.url}/images?token={server.token}")[0] == 400  # never in a URL
    rebound = {"host": f"attacker.example:{server.port}", "authorization": f"Bearer {server.token}"}
    assert get_json(f"{server.url}/images", rebound)[0] == 403
    code, _ = get_json(f"{server.url}/images", {"authorization": f"Bearer {server.token}"})
    assert code == 200
    # the deployed API: its routes take IAM-authorised callers only
    if local_stack.api_url:
        assert get_json(f"{local_stack.api_url}/images")[0] in (401, 403)
        assert get_json(f"{local_stack.api_url}/images/a.jpg")[0] in (401, 403)


def test_status_api_over_http(
    local_stack: Deployment, catalog: Catalog, s3: Any, status_api: tuple[str, Get], prefix: str
) -> None:
    api, _get = status_api
    keys = [f"{prefix}{n} photo+{n}.jpg" for n in range(5)]
    with processing(local_stack):
        for key in keys:
            s3.put_object(Bucket=local_stack.uploads_bucket, Key=key, Body=jpeg_bytes((800, 600)))
        wait_for(catalog, local_stack, keys)
    # one record, its thumbnails fetchable through the presigned URLs
    code, record = _get(f"{api}/images/{quote(keys[0])}")
    assert code == 200 and record["key"] == keys[0] and record["status"] == "DONE"
    for thumb in record["thumbnails"]:
        with urllib.request.urlopen(request(thumb["url"])) as resp:
            assert resp.headers["content-type"] == thumb["content_type"]
            assert len(resp.read()) == thumb["bytes"]
    # grouped for a page's <picture>: each size once, most compact format first, with URLs
    pictures = {p["name"]: p for p in record["pictures"]}
    assert [s["type"] for s in pictures["medium"]["sources"]] == [
        "image/avif",
        "image/webp",
        "image/jpeg",
    ]
    assert all(s["url"].startswith("http") for p in pictures.values() for s in p["sources"])
    assert _get(f"{api}/images/{quote(prefix)}missing.jpg")[0] == 404
    assert _get(f"{api}/images?limit=1000")[0] == 400
    # pages of two, in key order, to the end
    seen: list[str] = []
    url = f"{api}/images?limit=2&status=DONE&prefix={quote(prefix)}"
    while True:
        code, page = _get(url)
        assert code == 200 and len(page["items"]) <= 2
        seen += [i["key"] for i in page["items"]]
        if not page["cursor"]:
            break
        url = f"{api}/images?limit=2&status=DONE&prefix={quote(prefix)}&cursor={page['cursor']}"
    assert seen == sorted(keys)


# `%`, `#`, `?`, `+`, `&`, spaces and non-ASCII: each requested percent-encoded, each must come
# back as the key it is (docs/local-stack.md, Fidelity: how HTTP APIs decode {key+}).
ODD_NAMES = [
    "100%.jpg",
    "pct%25lit.jpg",
    "hash#1.jpg",
    "why?.jpg",
    "a+b.jpg",
    "a&b=c.jpg",
    "with space.jpg",
    "ünï/фото 日本.jpg",
]


def test_odd_keys_through_the_http_api(
    local_stack: Deployment,
    catalog: Catalog,
    s3: Any,
    status_api: tuple[str, Get],
    server: ApiServer,
    prefix: str,
) -> None:
    api, _get = status_api
    keys = [prefix + name for name in ODD_NAMES]
    with processing(local_stack):
        for key in keys:
            s3.put_object(Bucket=local_stack.uploads_bucket, Key=key, Body=jpeg_bytes((300, 200)))
        wait_for(catalog, local_stack, keys)
    token = {"authorization": f"Bearer {server.token}"}
    for key in keys:
        path = f"/images/{quote(key, safe='/')}"
        code, record = _get(api + path)
        assert (code, record["key"], record["status"]) == (200, key, "DONE")
        code, record = get_json(server.url + path, token)  # the gallery's signing proxy
        assert (code, record["key"], record["status"]) == (200, key, "DONE")


def test_the_loopback_server_serves_the_published_contract(server: ApiServer) -> None:
    from openapi_spec_validator import validate

    code, spec = get_json(f"{server.url}/openapi.json")
    assert code == 200
    validate(spec)
    assert spec == json.loads((ROOT / "src" / "imgpipe" / "openapi.json").read_text())
    assert set(spec["paths"]) == {"/images", "/images/{key}", "/uploads", "/render/{key}"}


def test_cli_upload_wait_status_ls_get(
    local_stack: Deployment, corpus: Path, tmp_path: Path, prefix: str
) -> None:
    folder = tmp_path / "trip"
    folder.mkdir()
    shutil.copy(corpus / "Landscape_5.jpg", folder / "sea view.jpg")
    (folder / "notes.jpg").write_text("not a photo")
    (folder / "cat.jpg").write_bytes(jpeg_of(skimage_photo("chelsea.png")))
    # upload a folder and wait: the table, and a non-zero exit only for FAILED
    out = imgpipe("upload", str(folder), "--prefix", prefix, "--wait", "--json")
    results = {r["key"]: r for r in json.loads(out.stdout)}
    assert results[f"{prefix}sea view.jpg"]["status"] == "DONE"
    assert (results[f"{prefix}notes.jpg"]["status"], results[f"{prefix}notes.jpg"]["reason"]) == (
        "REJECTED",
        "not_an_image",
    )
    assert "uploading" in out.stderr and "processing" in out.stderr  # the progress bars
    # the human form says what was found in each photo, as the seed CLI did
    shown = imgpipe("upload", str(folder / "cat.jpg"), "--prefix", f"{prefix}again/", "--wait")
    assert f"{prefix}again/cat.jpg:" in shown.stdout
    assert "labels: " in shown.stdout and "Cat " in shown.stdout
    # `open` prints the presigned URL where there is no display, and it serves the thumbnail
    url = imgpipe("open", f"{prefix}sea view.jpg", "--size", "medium").stdout.strip()
    with urllib.request.urlopen(url) as response:
        assert response.read()[:3] == b"\xff\xd8\xff"
    human = imgpipe("status", f"{prefix}sea view.jpg")
    assert "DONE" in human.stdout and "1800x1200" in human.stdout and "large: http" in human.stdout
    listed = json.loads(imgpipe("ls", "--prefix", prefix, "--status", "rejected", "--json").stdout)
    assert [i["key"] for i in listed["items"]] == [f"{prefix}notes.jpg"]
    # labels by name or by parent, any case: the offline labeler's broad names
    animals = json.loads(imgpipe("ls", "--prefix", prefix, "--label", "ANIMAL", "--json").stdout)
    assert [i["key"] for i in animals["items"]] == [f"{prefix}again/cat.jpg", f"{prefix}cat.jpg"]
    cat = next(x for x in animals["items"][0]["labels"] if x["name"] == "Cat")
    assert {"Animal", "Pet"} <= set(cat["parents"])
    assert "Cat" in imgpipe("ls", "--prefix", prefix, "--label", "pet").stdout  # top labels
    assert "no images labelled 'dog'" in imgpipe("ls", "--prefix", prefix, "--label", "dog").stdout
    target = tmp_path / "medium.jpg"
    got = json.loads(
        imgpipe(
            "get", f"{prefix}sea view.jpg", "--size", "medium", "-o", str(target), "--json"
        ).stdout
    )
    assert (got["width"], got["height"]) == (512, 341) and target.stat().st_size == got["bytes"]


def test_cli_errors_are_one_line_that_says_what_to_do(local_stack: Deployment, prefix: str) -> None:
    missing = imgpipe("status", f"{prefix}nothing-here.jpg", check=False)
    assert missing.returncode == 1 and missing.stderr.strip().count("\n") == 0
    assert "no image with key" in missing.stderr
    aws = imgpipe("ls", "--stage", "prod", check=False)
    assert aws.returncode == 1 and "Traceback" not in aws.stderr
    # whichever is missing here (region, credentials, the stack), the line says what to do
    assert any(
        hint in aws.stderr for hint in ("AWS_REGION", "AWS_PROFILE", "make deploy STAGE=prod")
    )


def test_status_says_pending_for_an_upload_without_an_outcome_yet(
    local_stack: Deployment, catalog: Catalog, s3: Any, prefix: str
) -> None:
    """What `imgpipe upload --wait` calls PENDING, `imgpipe status` calls PENDING too (the
    trigger is paused between the tests' processing blocks: the event waits in the queue)."""
    key = f"{prefix}waiting.jpg"
    s3.put_object(Bucket=local_stack.uploads_bucket, Key=key, Body=jpeg_bytes())
    shown = imgpipe("status", key)
    assert "PENDING" in shown.stdout and "imgpipe dlq ls" in shown.stdout
    assert json.loads(imgpipe("status", key, "--json").stdout) == {"key": key, "status": "PENDING"}
    missing = imgpipe("status", f"{prefix}never-uploaded.jpg", check=False)
    assert missing.returncode == 1 and "no image with key" in missing.stderr
    with processing(local_stack):
        assert wait_for(catalog, local_stack, [key])[key].status == "DONE"
    assert "DONE" in imgpipe("status", key).stdout


def test_cli_dlq_ls_and_redrive_dry_run(
    local_stack: Deployment, catalog: Catalog, events: Events, sender: Any, prefix: str
) -> None:
    key = f"{prefix}stuck.jpg"
    body = events.s3_body(key, etag="x", bucket=local_stack.uploads_bucket)
    dead_letter(local_stack, sender, body)
    listed = json.loads(imgpipe("dlq", "ls", "--json").stdout)
    assert key in [k.split("/", 1)[1] for m in listed for k in m["keys"]]
    assert key in imgpipe("dlq", "ls").stdout
    dry = json.loads(imgpipe("redrive", "--dry-run", "--json").stdout)
    assert dry["dry_run"] is True and dry["moved"] == 0
    # nothing moved: it is still there for the real redrive
    assert key in imgpipe("dlq", "ls").stdout
    moved = json.loads(imgpipe("redrive", "--json").stdout)
    assert moved["moved"] >= 1 and moved["remaining"] == 0
    # (the redriven event names an object that does not exist: it will end REJECTED missing)
    with processing(local_stack):
        record = wait_for(catalog, local_stack, [key], timeout=30)[key]
    assert (record.status, record.reason) == ("REJECTED", "missing")


def test_gallery_in_a_real_browser(
    local_stack: Deployment, catalog: Catalog, s3: Any, server: ApiServer, corpus: Path, prefix: str
) -> None:
    from playwright.sync_api import sync_playwright

    uploads = {
        f"{prefix}Portrait_6.jpg": (corpus / "Portrait_6.jpg").read_bytes(),
        f"{prefix}Landscape_2.jpg": (corpus / "Landscape_2.jpg").read_bytes(),
        f"{prefix}broken.jpg": b"\xff\xd8\xff" + b"\x00" * 100,
    }
    out_dir = ROOT / "test-output"
    out_dir.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = chromium(pw)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(server.gallery_link(prefix=prefix))
        # the token left the address bar for this origin's sessionStorage; no cookie holds it
        assert "token" not in page.url and page.evaluate("document.cookie") == ""
        assert page.evaluate("sessionStorage.getItem('imgpipe-token')") == server.token
        page.select_option("#status", "")  # all
        with processing(local_stack):
            for key, body in uploads.items():
                s3.put_object(Bucket=local_stack.uploads_bucket, Key=key, Body=body)
            wait_for(catalog, local_stack, list(uploads), timeout=120)
        cards = {key: page.locator(f'article[data-key="{key}"]') for key in uploads}
        for card in cards.values():
            card.wait_for(timeout=20_000)  # the page refreshes by itself
        statuses = {k: c.get_attribute("data-status") for k, c in cards.items()}
        assert statuses == {
            f"{prefix}Portrait_6.jpg": "DONE",
            f"{prefix}Landscape_2.jpg": "DONE",
            f"{prefix}broken.jpg": "REJECTED",
        }
        assert "corrupt" in cards[f"{prefix}broken.jpg"].inner_text()
        labels = cards[f"{prefix}Landscape_2.jpg"].locator(".chip.label").all_inner_texts()
        assert labels, "a label is shown"
        img = cards[f"{prefix}Portrait_6.jpg"].locator("img")
        page.wait_for_function(
            "img => img.complete && img.naturalWidth > 0", arg=img.element_handle()
        )
        assert img.evaluate("i => i.naturalHeight > i.naturalWidth")  # upright portrait
        # the <picture> gave Chromium a modern format, not the JPEG fallback
        chosen = urlsplit(img.evaluate("i => i.currentSrc")).path
        assert chosen.endswith((".avif", ".webp")), chosen
        # the page's own upload: two photos chosen in its file picker, progress, then their
        # status, and their thumbnails in the grid
        with processing(local_stack):
            page.set_input_files(
                "#files", [str(corpus / "Landscape_3.jpg"), str(corpus / "Portrait_2.jpg")]
            )
            page.locator('.upload-row[data-state="DONE"]').nth(1).wait_for(timeout=90_000)
        rows = page.locator(".upload-row").all()
        assert len(rows) == 2
        for row in rows:
            uploaded = row.get_attribute("data-key")
            assert uploaded and uploaded.startswith("uploads/")
            assert row.locator("progress").get_attribute("value") == "100"
            thumb = page.locator(f'article[data-key="{uploaded}"] img')
            thumb.wait_for(timeout=20_000)
            page.wait_for_function(
                "img => img.complete && img.naturalWidth > 0", arg=thumb.element_handle()
            )
        page.screenshot(path=str(out_dir / "gallery.png"), full_page=True)
        browser.close()
    assert (out_dir / "gallery.png").stat().st_size > 10_000


def test_local_env_prints_a_working_api_url(local_stack: Deployment) -> None:
    """`eval "$(imgpipe local env)"` gives a SigV4 client the deployed API's address: plain
    HTTP on the endpoint's own address and port (no name a resolver must know), not
    serverless-localstack's https://...localstack.cloud one; and the buckets' names."""
    exports = dict(
        line.removeprefix("export ").split("=", 1)
        for line in imgpipe("local", "env").stdout.splitlines()
    )
    api = exports["IMGPIPE_API_URL"]
    assert api == local_stack.api_url and api.startswith(local_stack.access.endpoint_url or "-")
    assert "/_aws/execute-api/" in api
    assert exports["IMGPIPE_UPLOADS_BUCKET"] == local_stack.uploads_bucket
    assert exports["IMGPIPE_DERIVED_BUCKET"] == local_stack.derived_bucket
    code, body, _ = signed_get(f"{api}/images/{quote('no such key.jpg')}", local_stack.access)
    assert code == 404 and json.loads(body) == {"message": "no image with that key"}


def _env_of(access: Any) -> dict[str, str]:
    return {
        **os.environ,
        "AWS_ACCESS_KEY_ID": access.key_id,
        "AWS_SECRET_ACCESS_KEY": access.secret,
        "AWS_DEFAULT_REGION": "us-east-1",
    }


def test_third_party_sigv4_clients_call_the_local_api(
    local_stack: Deployment, iam_enforced: bool
) -> None:
    """What users reach for: curl's own SigV4 (`--aws-sigv4`), awscurl, and Python's
    requests with requests-aws4auth, at the URL `imgpipe local env` prints; unsigned, the
    IAM-authorised route refuses each."""
    import requests
    from requests_aws4auth import AWS4Auth

    api, access = local_stack.api_url, local_stack.access
    url = f"{api}/images?limit=1"
    curl = shutil.which("curl")
    assert curl is not None, "curl is part of the machine this runs on"
    signed = subprocess.run(
        [
            *(curl, "-s", "-w", "\n%{http_code}", "--aws-sigv4", "aws:amz:us-east-1:execute-api"),
            *("--user", f"{access.key_id}:{access.secret}", url),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    body, code = signed.stdout.rsplit("\n", 1)
    assert code == "200" and "items" in json.loads(body)
    unsigned = subprocess.run(
        [curl, "-s", "-o", "/dev/null", "-w", "%{http_code}", url],
        capture_output=True,
        text=True,
        check=True,
    )
    assert unsigned.stdout == "403"
    # awscurl, as installed: credentials from the environment `imgpipe local env` sets
    awscurl = str(Path(sys.executable).with_name("awscurl"))
    answered = subprocess.run(
        [awscurl, "--service", "execute-api", "--region", "us-east-1", url],
        capture_output=True,
        text=True,
        check=False,
        env=_env_of(access),
    )
    assert answered.returncode == 0, answered.stderr[-2000:]
    assert "items" in json.loads(answered.stdout)
    # requests with its SigV4 helper, and without it
    auth = AWS4Auth(access.key_id, access.secret, "us-east-1", "execute-api")
    assert requests.get(url, auth=auth, timeout=30).status_code == 200
    assert requests.get(url, timeout=30).status_code == 403
    if iam_enforced:  # our MiniStack, behind its guard (LocalStack and its stand-in take any)
        wrong = AWS4Auth(access.key_id, "not-the-secret", "us-east-1", "execute-api")
        assert requests.get(url, auth=wrong, timeout=30).status_code == 403


def _post_form(upload: dict[str, Any], data: bytes, content_type: str, **override: str) -> int:
    """A browser's multipart POST of the form, with plain urllib: the status S3 answers."""
    fields = {**upload["fields"], **override}
    boundary = uuid.uuid4().hex
    body = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in fields.items()
    )
    body += (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="p.jpg"\r\n'
            f"Content-Type: {content_type}\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    req = urllib.request.Request(
        upload["url"],
        data=body,
        method="POST",
        headers={"content-type": f"multipart/form-data; boundary={boundary}"},
    )
    try:
        with urllib.request.urlopen(req) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def test_an_app_uploads_through_post_uploads_with_plain_http(
    local_stack: Deployment, server: ApiServer, catalog: Catalog, corpus: Path
) -> None:
    """No AWS SDK on the app's side: JSON to POST /uploads (here through the loopback server,
    which signs for the deployed route), then the form to S3. The server chose the key; the
    form allows that key, an image type and up to the stage's size, for five minutes."""
    token = {"authorization": f"Bearer {server.token}", "content-type": "application/json"}

    def ask(doc: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        req = urllib.request.Request(
            f"{server.url}/uploads", data=json.dumps(doc).encode(), method="POST", headers=token
        )
        try:
            with urllib.request.urlopen(req) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    photo = (corpus / "Landscape_2.jpg").read_bytes()
    code, answer = ask({"content_type": "image/jpeg", "filename": "../../etc/passwd", "size": 9})
    assert code == 201 and answer["key"].startswith("uploads/") and ".." not in answer["key"]
    assert answer["status"] == "/images/" + quote(answer["key"])
    assert _post_form(answer["upload"], photo, "image/jpeg") in (200, 201, 204)
    with processing(local_stack):
        record = wait_for(catalog, local_stack, [answer["key"]])[answer["key"]]
    assert record.status == "DONE"
    # refused by the route: not an image, more than the stage allows, unknown fields
    assert ask({"content_type": "text/html"})[0] == 400
    assert ask({"content_type": "image/png", "size": MAX_BYTES + 1})[0] == 400
    assert ask({"content_type": "image/png", "key": "users/bob/x.png"})[0] == 400
    # refused by S3, whatever the client sends with a valid form
    _, fresh = ask({"content_type": "image/jpeg"})
    form = fresh["upload"]
    assert _post_form(form, photo, "text/html", **{"Content-Type": "text/html"}) == 403
    assert _post_form(form, b"x" * (MAX_BYTES + 1), "image/jpeg") == 400  # bigger than allowed
    assert _post_form(form, photo, "image/jpeg", key="users/bob/mine.jpg") == 403  # another's
    time.sleep(UPLOAD_EXPIRES + 1)  # a form used after its time
    assert _post_form(form, photo, "image/jpeg") == 403
    # the loopback server sends a file the page PUTs to it, with the form's fields
    _, proxied = ask({"content_type": "image/jpeg", "filename": "cat.jpg"})
    req = urllib.request.Request(
        server.url + proxied["send"],
        data=photo,
        method="PUT",
        headers={"authorization": token["authorization"], "content-type": "image/jpeg"},
    )
    with urllib.request.urlopen(req) as resp:
        assert resp.status == 200
    with processing(local_stack):
        assert wait_for(catalog, local_stack, [proxied["key"]])[proxied["key"]].status == "DONE"


def test_cli_upload_via_api_needs_only_execute_api_invoke(
    local_stack: Deployment, iam_enforced: bool, corpus: Path, tmp_path: Path
) -> None:
    """A user whose only right is to call the stage's HTTP API uploads with `--via-api`: no
    S3, no DynamoDB, no CloudFormation; the stage keys the upload and `--wait` polls the API."""
    invoke = {"Effect": "Allow", "Action": "execute-api:Invoke", "Resource": "*"}
    creds = role_allowed(local_stack, f"{local_stack.name}-api-only", invoke)
    photo = tmp_path / "holiday.jpg"
    shutil.copy(corpus / "Landscape_4.jpg", photo)
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "IMGPIPE_", "LOCALSTACK_"))
    } | {
        "AWS_ACCESS_KEY_ID": creds["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": creds["SecretAccessKey"],
        "AWS_SESSION_TOKEN": creds["SessionToken"],
        "AWS_DEFAULT_REGION": local_stack.access.region or "us-east-1",
        "IMGPIPE_API_URL": str(local_stack.api_url),
        "COLUMNS": "200",
    }
    with processing(local_stack):
        out = subprocess.run(
            [IMGPIPE, "upload", "--via-api", "--wait", "--json", str(photo)],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
    assert out.returncode == 0, out.stdout + out.stderr
    [result] = json.loads(out.stdout)
    assert result["status"] == "DONE" and result["key"].startswith("uploads/")
    assert result["width"] == 1800
    # the same user cannot reach S3 directly (where the endpoint enforces IAM): the form
    # was their only way in
    if iam_enforced:
        direct = boto3.client(
            "s3",
            endpoint_url=local_stack.access.endpoint_url,
            region_name=env["AWS_DEFAULT_REGION"],
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"],
        )
        with pytest.raises(ClientError):
            direct.put_object(Bucket=local_stack.uploads_bucket, Key="mine.jpg", Body=b"x")
