"""On-demand renditions on the local stack: the render function behind the local API Gateway,
with its own role (MiniStack enforces it), the secret the stack generated, the URL the CLI
signs, and the photo the pipeline made DONE."""

from __future__ import annotations

import io
import urllib.error
import urllib.request
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest
from PIL import Image

from imgpipe.catalog import Catalog
from imgpipe.deployment import Deployment
from imgpipe.outcomes import Status
from tests.conftest import ROOT
from tests.functional.conftest import wait_for
from tests.harness.backends import processing
from tests.harness.cli import imgpipe
from tests.harness.wait import poll

pytestmark = [pytest.mark.functional]


class _Keep(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None  # the 302 itself is what is checked


def _get(url: str, accept: str = "") -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    try:
        with urllib.request.build_opener(_Keep).open(request, timeout=60) as resp:
            return resp.status, dict(resp.headers.items()), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read()


def _with(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {**dict(parse_qsl(parts.query)), **changes}
    return urlunsplit(parts._replace(query=urlencode({k: v for k, v in query.items() if v})))


def test_a_signed_url_renders_once_is_refused_otherwise_and_goes_with_its_photo(
    local_stack: Deployment, catalog: Catalog, prefix: str
) -> None:
    key = f"{prefix}sideways photo.jpg"  # stored 1200x1800 with EXIF orientation 6
    data = (ROOT / "demo" / "photos" / "rotated-exif-6.jpg").read_bytes()
    with processing(local_stack):
        local_stack.client("s3").put_object(Bucket=local_stack.uploads_bucket, Key=key, Body=data)
        wait_for(catalog, local_stack, [key])
    url = imgpipe("render-url", key, "--width", "640").stdout.strip()
    assert url.startswith(f"{local_stack.api_url}/render/") and "&sig=" in url

    status, headers, _ = _get(url, "image/avif,image/webp,*/*")
    assert status == 302, headers
    assert (headers["x-imgpipe-render"], headers["vary"]) == ("miss", "Accept")
    with urllib.request.urlopen(headers["location"], timeout=60) as kept:
        rendition = Image.open(io.BytesIO(kept.read()))
    assert (rendition.format, rendition.size) == ("AVIF", (640, 427))  # upright, 640 wide
    again = _get(url, "image/avif")
    assert again[0] == 302 and again[1]["x-imgpipe-render"] == "hit"  # read, not made again

    assert _get(_with(url, w="641"))[0] == 400  # off the ladder: never rendered
    assert _get(_with(url, w="750"))[0] == 403  # signed for 640 only
    assert _get(_with(url, sig="A" * 43))[0] == 403  # forged
    assert _get(_with(url, sig=""))[0] == 403  # unsigned
    rejected = _get(url.replace("sideways%20photo.jpg", "nothing-here.jpg"))
    assert rejected[0] == 403  # another key than was signed

    # the photo deleted: its renditions go with it (the process function lists and removes
    # them, under its own role: renditions/ only)
    s3 = local_stack.client("s3")
    with processing(local_stack):
        s3.delete_object(Bucket=local_stack.uploads_bucket, Key=key)
        poll(
            lambda: catalog.get(local_stack.uploads_bucket, key),
            lambda record: record is not None and record.status is Status.DELETED,
            60,
            what=f"{key} DELETED",
        )
    left = s3.list_objects_v2(Bucket=local_stack.derived_bucket, Prefix=f"renditions/{key}/")
    assert left.get("KeyCount", 0) == 0, left.get("Contents")
