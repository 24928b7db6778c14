"""Thumbnail shapes and formats: the sizes grammar, cover crops that keep the subject (found by
attention, or the faces the labeler saw), letterboxing, and every output format."""

from __future__ import annotations

import io

import pytest
from PIL import Image, ImageDraw

from imgpipe.image_job import process_image
from imgpipe.imaging import Limits, RenderOptions, parse_sizes, render
from imgpipe.imaging.crop import faces_focus, scaled_size, window
from imgpipe.imaging.types import ThumbSpec
from imgpipe.labels import LabelSettings
from imgpipe.labels.local import LocalLabeler
from tests.conftest import jpeg_of, skimage_photo

LIMITS = Limits(max_bytes=10**8, max_pixels=10**8)
COVERS = "square=300x300:cover, card=400x225:cover, tall=225x400:cover"
SUBJECT = (230, 30, 30)


def test_the_sizes_grammar() -> None:
    specs = {
        s.name: s
        for s in parse_sizes(
            "square=300x300:cover:webp,avif; card=1200x675:cover:jpeg,webp;"
            " large=1600:fit:avif,jpeg; box=200x100:pad-102030"
        )
    }
    assert specs["square"] == ThumbSpec("square", 300, 300, "cover", ("webp", "avif"))
    assert specs["card"].formats == ("jpeg", "webp") and specs["card"].height == 675
    assert (specs["large"].mode, specs["large"].formats) == ("fit", ("avif", "jpeg"))
    assert (specs["box"].mode, specs["box"].background) == ("pad", "#102030")
    old = parse_sizes("small=128,medium=512,large=1024")  # today's meaning: three JPEG fits
    assert [(s.name, s.width, s.height, s.mode, s.formats) for s in old] == [
        ("large", 1024, 1024, "fit", ("jpeg",)),
        ("medium", 512, 512, "fit", ("jpeg",)),
        ("small", 128, 128, "fit", ("jpeg",)),
    ]
    assert parse_sizes("a=64", ("webp", "jpeg"))[0].formats == ("webp", "jpeg")


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("a=100:cover:gif", "format 'gif'"),
        ("a=100x:cover", "N or WxH"),
        ("a=100:fit-ffffff", "pad-RRGGBB"),
        ("a=4x4", "8..8192"),
        ("webp,a=100", "name=size first"),
        ("a=100:webp,webp", "named twice"),
        ("a=100:cover:webp:x", "name=size[:mode][:formats]"),
    ],
)
def test_a_bad_size_says_what_is_wrong_in_one_line(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=None) as info:
        parse_sizes(text)
    assert says in str(info.value) and "\n" not in str(info.value)


def _scene(size: tuple[int, int], at: tuple[float, float], side: int) -> Image.Image:
    """A quiet gradient with one busy subject (a red and yellow checkerboard) centred at
    ``at`` (fractions): what draws the eye is where we put it."""
    scene = Image.linear_gradient("L").resize(size).convert("RGB")
    scene = Image.blend(scene, Image.new("RGB", size, (120, 140, 160)), 0.7)
    draw = ImageDraw.Draw(scene)
    left, top = round(at[0] * size[0] - side / 2), round(at[1] * size[1] - side / 2)
    cell = max(4, side // 8)
    for y in range(0, side, cell):
        for x in range(0, side, cell):
            colour = SUBJECT if (x // cell + y // cell) % 2 else (250, 220, 40)
            draw.rectangle((left + x, top + y, left + x + cell - 1, top + y + cell - 1), colour)
    return scene


def _pixels(im: Image.Image) -> list[tuple[int, int, int]]:
    raw = im.convert("RGB").tobytes()
    return [(raw[i], raw[i + 1], raw[i + 2]) for i in range(0, len(raw), 3)]


def _subject_pixels(im: Image.Image) -> int:
    return sum(1 for r, g, b in _pixels(im) if r > 180 and g < 90 and b < 90)


@pytest.mark.parametrize("size", [(1600, 900), (900, 1600)])
@pytest.mark.parametrize("at", [(0.12, 0.5), (0.88, 0.5), (0.5, 0.12), (0.5, 0.88), (0.8, 0.8)])
def test_attention_keeps_an_off_centre_subject_inside_every_cover_crop(
    size: tuple[int, int], at: tuple[float, float]
) -> None:
    side = min(size) // 7
    photo = _scene(size, at, side)
    rendered = render(jpeg_of(photo, 95), parse_sizes(COVERS), LIMITS)
    for thumb in rendered.thumbnails:
        spec = next(s for s in parse_sizes(COVERS) if s.name == thumb.name)
        assert (thumb.width, thumb.height) == (spec.width, spec.height)
        scaled = scaled_size(*size, spec)
        scale = scaled[0] / size[0]
        whole = _subject_pixels(photo.resize(scaled, Image.Resampling.BICUBIC))
        kept = _subject_pixels(Image.open(io.BytesIO(thumb.data)))
        # the subject (at the thumbnail's scale) is all there, less JPEG's edge blur
        assert kept >= 0.85 * whole, (thumb.name, kept, whole, scale)


def test_the_faces_found_decide_a_cover_crop() -> None:
    """A busier distractor draws attention to the left; the labeler's face box on the right
    wins: the crop is cut around it."""
    photo = _scene((1600, 900), (0.15, 0.5), 300)
    face = (0.78, 0.35, 0.08, 0.16)
    ImageDraw.Draw(photo).ellipse(
        (1600 * face[0], 900 * face[1], 1600 * (face[0] + face[2]), 900 * (face[1] + face[3])),
        fill=(40, 200, 60),
    )
    rendered = render(jpeg_of(photo, 95), parse_sizes("square=300x300:cover"), LIMITS, faces=[face])
    [thumb] = rendered.thumbnails
    out = Image.open(io.BytesIO(thumb.data)).convert("RGB")
    green = sum(1 for r, g, b in _pixels(out) if g > 160 and r < 100 and b < 110)
    scale = 300 / 900
    expected = 3.14159 / 4 * (1600 * face[2] * scale) * (900 * face[3] * scale)
    assert green >= 0.85 * expected
    assert _subject_pixels(out) == 0  # the distractor is out of the crop


def test_a_real_face_found_by_the_offline_labeler_is_inside_the_crop() -> None:
    """The astronaut (one face) at the right of a wide scene with a busy sign on its left:
    the labeler runs on the uncropped view first, and the square crop keeps the face."""
    scene = _scene((1600, 700), (0.12, 0.5), 260)
    scene.paste(skimage_photo("astronaut.png").resize((680, 680)), (880, 10))
    options = RenderOptions(sizes=parse_sizes("square=256x256:cover"), limits=LIMITS)
    done = process_image(jpeg_of(scene, 95), options, LocalLabeler(LabelSettings(backend="local")))
    [face] = done.findings.faces
    box = (face.box.left, face.box.top, face.box.width, face.box.height)
    assert box[0] > 0.6  # found where it is: right of centre
    scaled = scaled_size(1600, 700, options.sizes[0])
    left, top, right, bottom = window(scaled, (256, 256), faces_focus([box]) or (0.5, 0.5))
    assert left <= box[0] * scaled[0] and (box[0] + box[2]) * scaled[0] <= right
    assert top <= box[1] * scaled[1] and (box[1] + box[3]) * scaled[1] <= bottom
    [thumb] = done.rendered.thumbnails
    expected = (
        Image.open(io.BytesIO(jpeg_of(scene, 95)))
        .resize(scaled, Image.Resampling.BICUBIC)
        .crop((left, top, right, bottom))
    )
    got = Image.open(io.BytesIO(thumb.data)).convert("RGB")
    diff = sum(
        abs(a - b)
        for p, q in zip(_pixels(got), _pixels(expected), strict=True)
        for a, b in zip(p, q, strict=True)
    )
    assert diff / (256 * 256 * 3) < 12  # the same pixels, give or take resampling and JPEG


def test_pad_letterboxes_to_the_exact_box_with_its_colour() -> None:
    rendered = render(
        jpeg_of(_scene((1600, 900), (0.5, 0.5), 100), 95),
        parse_sizes("box=300x300:pad-0000ff"),
        LIMITS,
    )
    [thumb] = rendered.thumbnails
    out = Image.open(io.BytesIO(thumb.data)).convert("RGB")
    assert out.size == (300, 300)
    r, g, b = out.getpixel((150, 5))  # type: ignore[misc]
    assert b > 200 and r < 40 and g < 40  # the band above the photo
    assert out.getpixel((150, 150)) != out.getpixel((150, 5))


@pytest.mark.parametrize("alpha", [False, True])
def test_every_format_and_alpha(alpha: bool) -> None:
    mode = "RGBA" if alpha else "RGB"
    photo = Image.new(mode, (800, 600), (10, 120, 200, 128) if alpha else (10, 120, 200))
    buf = io.BytesIO()
    photo.save(buf, "PNG")
    rendered = render(buf.getvalue(), parse_sizes("a=200:fit:avif,webp,jpeg,png"), LIMITS)
    got = {t.extension: t for t in rendered.thumbnails}
    # JPEG has no alpha: where the photo has some, PNG stands in (once)
    assert set(got) == ({"avif", "webp", "png"} if alpha else {"avif", "webp", "jpg", "png"})
    for ext, thumb in got.items():
        with Image.open(io.BytesIO(thumb.data)) as im:
            assert im.format == {"jpg": "JPEG"}.get(ext, ext.upper())
            assert im.size == (200, 150)
            assert ("A" in im.mode) == (alpha and ext != "jpg"), (ext, im.mode)
    if not alpha:
        jpeg = Image.open(io.BytesIO(got["jpg"].data))
        assert jpeg.info.get("progressive") == 1  # progressive, optimised tables


def test_each_size_is_encoded_from_its_own_pixels() -> None:
    """Many cover sizes of one photo, each in two formats: every file is its own size's,
    never bytes cached for another image (an encode cache keyed by object id alone would
    hand a freed crop's bytes to the next one)."""
    specs = parse_sizes(
        ";".join(f"s{n}={40 + 7 * n}x{30 + 5 * n}:cover:webp,jpeg" for n in range(12))
    )
    rendered = render(jpeg_of(_scene((1600, 900), (0.3, 0.6), 200), 95), specs, LIMITS)
    for thumb in rendered.thumbnails:
        with Image.open(io.BytesIO(thumb.data)) as im:
            assert im.size == (thumb.width, thumb.height), thumb.name
