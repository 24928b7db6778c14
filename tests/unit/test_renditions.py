"""On-demand renditions, the pure part (issue 39's first step): what may be asked, how it is
signed, which format auto answers, where it is kept, and that the engine makes it as it makes
the eager thumbnails."""

from __future__ import annotations

import io
import re
from urllib.parse import parse_qsl, urlsplit

import pytest
from PIL import Image

from imgpipe.imaging import Limits
from imgpipe.imaging.engine import Quality, render
from imgpipe.outcomes import Status
from imgpipe.record import ImageRecord, ThumbnailRef
from imgpipe.render_api import RenderApi, RenderSettings
from imgpipe.renditions import (
    LADDER,
    BadRender,
    Render,
    choose,
    parse,
    render_url,
    rendition_key,
    sign,
    snap,
    verify,
)
from tests.conftest import ROOT
from tests.harness.memory_ports import MemoryCatalog, MemoryPresigner, MemoryStore, etag_of

SECRET = b"s" * 32


def test_a_request_on_the_ladder_is_parsed_with_defaults() -> None:
    assert parse({"w": "640"}) == (Render(640), "")
    # without h: fit is bounded by the width alone; cover and pad fill a square
    assert (Render(640).spec("jpeg").width, Render(640).spec("jpeg").height) == (640, 1 << 16)
    square = parse({"w": "256", "fit": "cover"})[0].spec("webp")
    assert (square.width, square.height, square.mode) == (256, 256, "cover")
    asked = {"w": "256", "h": "256", "fit": "cover", "fmt": "webp", "q": "60", "sig": "x"}
    assert parse(asked) == (Render(256, 256, "cover", "webp", 60), "x")
    assert parse({"w": "640", "h": "0"})[0] == Render(640)


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ({}, "w (the width in pixels) is required"),
        ({"w": "641"}, "w must be one of 16, 32"),  # off the ladder: never rendered
        ({"w": "²"}, "w must be one of"),
        ({"w": "-640"}, "w must be one of"),
        ({"w": "640", "h": "99999"}, "h must be one of"),
        ({"w": "640", "q": "100"}, "q must be one of 50, 60"),
        ({"w": "640", "fit": "stretch"}, "fit must be one of fit, cover, pad"),
        ({"w": "640", "fmt": "gif"}, "fmt must be one of auto, jpeg"),
        ({"w": "640", "width": "640"}, "unknown parameters 'width'"),
    ],
)
def test_anything_off_the_ladder_is_refused_with_a_reason(query: dict[str, str], says: str) -> None:
    with pytest.raises(BadRender, match=re.escape(says)):
        parse(query)


def test_a_signature_covers_the_key_and_every_parameter() -> None:
    render = Render(640, 0, "fit", "auto", 75)
    signature = sign(SECRET, "trip/a b.jpg", render)
    assert len(signature) == 43 and verify(SECRET, "trip/a b.jpg", render, signature)
    assert not verify(SECRET, "trip/other.jpg", render, signature)
    assert not verify(SECRET, "trip/a b.jpg", Render(750), signature)
    assert not verify(SECRET, "trip/a b.jpg", Render(640, quality=90), signature)
    assert not verify(b"t" * 32, "trip/a b.jpg", render, signature)
    assert not verify(SECRET, "trip/a b.jpg", render, "")
    assert not verify(SECRET, "trip/a b.jpg", render, "0" * 43)
    assert not verify(b"", "trip/a b.jpg", render, signature)
    with pytest.raises(ValueError, match="not enabled"):
        sign(b"", "k", render)


def test_a_render_url_parses_back_to_what_was_signed() -> None:
    render = Render(256, 256, "cover", "avif", 60)
    url = render_url("https://api.example/stage", "trip/a b+c.jpg", render, SECRET)
    parts = urlsplit(url)
    assert parts.path == "/stage/render/trip/a%20b%2Bc.jpg"
    parsed, signature = parse(dict(parse_qsl(parts.query)))
    assert parsed == render and verify(SECRET, "trip/a b+c.jpg", parsed, signature)


@pytest.mark.parametrize(
    ("fmt", "accept", "answer"),
    [
        ("auto", "image/avif,image/webp,image/apng,*/*;q=0.8", "avif"),  # Chrome
        ("auto", "image/webp,*/*", "webp"),
        ("auto", "image/png,image/svg+xml,image/*;q=0.8,*/*;q=0.5", "jpeg"),  # Safari
        ("auto", "", "jpeg"),
        ("png", "image/avif", "png"),  # asked for: given
    ],
)
def test_auto_picks_the_most_compact_format_the_client_takes(
    fmt: str, accept: str, answer: str
) -> None:
    assert choose(fmt, accept) == answer


def test_a_rendition_is_kept_under_its_source_version() -> None:
    key = rendition_key("trip/a.jpg", "0123456789abcdef", Render(640, 0, "fit", "auto", 75), "avif")
    assert key == "renditions/trip/a.jpg/0123456789abcdef/w640-h0-fit-q75.avif"


def test_snap_gives_the_ladder_width_a_layout_needs() -> None:
    assert [snap(w) for w in (1, 16, 17, 600, 641, 5000)] == [16, 16, 32, 640, 750, 4096]
    assert all(snap(w) == w for w in LADDER)


def test_the_engine_makes_it_as_it_makes_the_thumbnails() -> None:
    """A photo stored sideways (1200x1800 pixels, EXIF orientation 6: a landscape): 640 wide
    as shown, AVIF, with nothing left to rotate."""
    data = (ROOT / "demo" / "photos" / "rotated-exif-6.jpg").read_bytes()
    asked = Render(640, fmt="auto", quality=60)
    fmt = choose(asked.fmt, "image/avif,image/webp")
    done = render(data, [asked.spec(fmt)], Limits(), quality=Quality(60, 60, 60))
    [thumb] = done.thumbnails
    with Image.open(io.BytesIO(thumb.data)) as im:
        assert (im.format, thumb.content_type) == ("AVIF", "image/avif")
        assert (im.width, im.height) == (640, 427)  # upright: the landscape as shown
        assert im.getexif().get(0x0112, 1) == 1


# --- the route, on in-memory doubles -----------------------------------------------------------


def _api() -> tuple[RenderApi, MemoryStore, MemoryCatalog]:
    store, catalog = MemoryStore(), MemoryCatalog()
    data = (ROOT / "demo" / "photos" / "rotated-exif-6.jpg").read_bytes()
    store.put("up", "trip/a b.jpg", data)
    thumb = "thumbnails/trip/a b.jpg/0123456789abcdef/small.jpg"
    catalog.items[("up", "trip/a b.jpg")] = ImageRecord(
        "up",
        "trip/a b.jpg",
        "s:0A",
        Status.DONE,
        etag=etag_of(data),
        thumbnails=(ThumbnailRef("small", thumb, 128, 85, 4000, "image/jpeg"),),
    )
    catalog.items[("up", "trip/rejected.jpg")] = ImageRecord(
        "up", "trip/rejected.jpg", "s:0B", Status.REJECTED
    )
    settings = RenderSettings("up", "down", SECRET)
    return RenderApi(settings, catalog, store, MemoryPresigner()), store, catalog


def _signed(key: str, render: Render) -> dict[str, str]:
    url = render_url("https://api", key, render, SECRET)
    return dict(parse_qsl(urlsplit(url).query))


def test_a_signed_request_renders_once_and_then_reads_what_was_kept() -> None:
    api, store, _ = _api()
    query = _signed("trip/a b.jpg", Render(640))
    first = api.handle("GET", "trip/a b.jpg", query, "image/avif,image/webp,*/*")
    assert first.status == 302 and first.headers["x-imgpipe-render"] == "miss"
    assert first.headers["vary"] == "Accept"
    kept = "renditions/trip/a b.jpg/0123456789abcdef/w640-h0-fit-q75.avif"
    assert first.headers["location"].startswith(f"memory://down/{kept}?expires=900")
    with Image.open(io.BytesIO(store.objects[("down", kept)])) as im:
        assert (im.format, im.size) == ("AVIF", (640, 427))
    again = api.handle("GET", "trip/a b.jpg", query, "image/avif")
    assert again.status == 302 and again.headers["x-imgpipe-render"] == "hit"
    assert api.renders == 1  # the second answer read the kept rendition
    # another Accept, another format, made once too
    safari = api.handle("GET", "trip/a b.jpg", query, "image/png,*/*")
    assert safari.headers["location"].startswith("memory://down/renditions/trip/a b.jpg/")
    assert ".jpg?" in safari.headers["location"] and api.renders == 2


def test_refusals_come_before_any_work() -> None:
    api, store, _ = _api()
    before = dict(store.objects)
    good = _signed("trip/a b.jpg", Render(640))
    for key, query, status in (
        ("trip/a b.jpg", {k: v for k, v in good.items() if k != "sig"}, 403),  # unsigned
        ("trip/a b.jpg", {**good, "sig": "A" * 43}, 403),  # forged
        ("trip/a b.jpg", {**good, "w": "750"}, 403),  # another width than was signed
        ("trip/other.jpg", good, 403),  # another key than was signed
        ("trip/a b.jpg", {**good, "w": "641"}, 400),  # off the ladder
        ("trip/a b.jpg", {**good, "x": "1"}, 400),
        ("trip/a\x07.jpg", good, 400),
        ("trip/missing.jpg", _signed("trip/missing.jpg", Render(640)), 404),
        ("trip/rejected.jpg", _signed("trip/rejected.jpg", Render(640)), 404),
    ):
        assert api.handle("GET", key, query, "").status == status, (key, query)
    assert api.handle("DELETE", "trip/a b.jpg", good, "").headers == {"allow": "GET"}
    assert store.objects == before and api.renders == 0


def test_an_image_replaced_since_it_was_done_is_not_rendered_from_the_new_bytes() -> None:
    api, store, _ = _api()
    store.put("up", "trip/a b.jpg", b"other bytes")  # a new upload, not yet processed
    answer = api.handle("GET", "trip/a b.jpg", _signed("trip/a b.jpg", Render(640)), "")
    assert answer.status == 404 and api.renders == 0


# --- their lifecycle: replaced and removed with their photo, found by reconcile -----------------


def test_a_new_version_and_a_removal_take_the_old_renditions_with_them() -> None:
    from imgpipe import config
    from imgpipe.events import S3ObjectEvent
    from imgpipe.pipeline import Pipeline
    from tests.conftest import jpeg_bytes
    from tests.harness.memory_ports import MemoryPublisher

    store, catalog = MemoryStore(), MemoryCatalog()
    env = {"UPLOADS_BUCKET": "up", "DERIVED_BUCKET": "down", "TABLE_NAME": "t", "TOPIC_ARN": "a"}
    pipeline = Pipeline(config.load(env), store, catalog, MemoryPublisher())
    api = RenderApi(RenderSettings("up", "down", SECRET), catalog, store, MemoryPresigner())

    def upload(key: str, data: bytes, sequencer: str) -> None:
        store.objects[("up", key)] = data
        event = S3ObjectEvent(
            "ObjectCreated:Put", "up", key, len(data), etag_of(data), sequencer, "t"
        )
        assert pipeline.handle(event).status is Status.DONE

    def renditions() -> list[str]:
        return sorted(k for b, k in store.objects if b == "down" and k.startswith("renditions/"))

    upload("a.jpg", jpeg_bytes((800, 600)), "0A")
    upload("a.jpg/b.jpg", jpeg_bytes((800, 600)), "0A")  # a key under the first as a prefix
    for key in ("a.jpg", "a.jpg/b.jpg"):
        assert api.handle("GET", key, _signed(key, Render(256)), "image/webp").status == 302
    first = renditions()
    assert len(first) == 2
    upload("a.jpg", jpeg_bytes((640, 480)), "0B")  # a new version: its own renditions later
    assert renditions() == [k for k in first if k.startswith("renditions/a.jpg/b.jpg/")]
    api.handle("GET", "a.jpg", _signed("a.jpg", Render(256)), "image/webp")
    del store.objects[("up", "a.jpg")]
    removed = S3ObjectEvent("ObjectRemoved:Delete", "up", "a.jpg", 0, "", "0C", "t")
    assert pipeline.handle(removed).status is Status.DELETED
    # the other key's rendition stays: only a.jpg's own were listed and removed
    assert renditions() == [k for k in first if k.startswith("renditions/a.jpg/b.jpg/")]


def test_reconcile_keeps_a_done_versions_renditions_and_removes_the_rest() -> None:
    from datetime import UTC, datetime, timedelta

    from imgpipe.reconcile import Reconciler

    api, store, catalog = _api()
    assert api.handle("GET", "trip/a b.jpg", _signed("trip/a b.jpg", Render(640)), "").status == 302
    old = datetime.now(UTC) - timedelta(days=1)
    kept = next(k for b, k in store.objects if k.startswith("renditions/"))
    stale = "renditions/trip/a b.jpg/fedcba9876543210/w640-h0-fit-q75.jpg"  # another version
    nobody = "renditions/gone.jpg/0123456789abcdef/w256-h0-fit-q75.webp"
    for key in (kept, stale, nobody):
        store.put("down", key, store.objects.get(("down", key), b"x"), old)
    store.put("up", "trip/a b.jpg", store.objects[("up", "trip/a b.jpg")], old)
    report = Reconciler(store, catalog, "up", "down", min_age=timedelta(minutes=15)).run(fix=True)
    orphans = sorted((f.kind, f.key, f.fixed) for f in report.findings if f.kind == "orphan")
    assert orphans == [("orphan", nobody, "deleted"), ("orphan", stale, "deleted")]
    assert ("down", kept) in store.objects
