"""HEIF/HEIC as phones and other encoders write it, each property in a file the test makes:
x265 codes the pictures (pillow-heif, dev extra), tests/harness/heif_files.py writes the
container around them where an encoder cannot (grids of chosen tiles, overlays, transforms
with an EXIF orientation, a primary image that is not the first, depth images)."""

from __future__ import annotations

import io
import struct
from collections.abc import Callable

import pillow_heif
import pytest
from PIL import Image

from imgpipe.image_job import process_image
from imgpipe.imaging import ImageRejected, Limits, Rendered, RenderOptions, parse_sizes, render
from imgpipe.imaging import heif as heif_module
from imgpipe.imaging.icc import rgb_profile
from imgpipe.labels import LabelSettings
from imgpipe.labels.local import LocalLabeler
from tests.conftest import sign_photo, skimage_photo
from tests.harness import heif_files as hf
from tests.harness.heif_files import HeifFile, clap, encode, imir, irot

SPECS = parse_sizes("small=64,large=256")
LIMITS = Limits(max_bytes=50 * 1024 * 1024, max_pixels=80_000_000, max_frames=10)
RED, GREEN, BLUE, WHITE = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)


def quadrants(width: int = 256, height: int = 128) -> Image.Image:
    """Red, green / blue, white: every rotation and mirror moves them somewhere else."""
    im = Image.new("RGB", (width, height), RED)
    im.paste(GREEN, (width // 2, 0, width, height // 2))
    im.paste(BLUE, (0, height // 2, width // 2, height))
    im.paste(WHITE, (width // 2, height // 2, width, height))
    return im


def corners(im: Image.Image) -> list[tuple[int, int, int]]:
    """The colour a quarter in from each corner, nearest of the four named ones."""
    w, h = im.size
    points = [
        (w // 4, h // 4),
        (3 * w // 4, h // 4),
        (w // 4, 3 * h // 4),
        (3 * w // 4, 3 * h // 4),
    ]
    named = (RED, GREEN, BLUE, WHITE, (0, 0, 0))
    out: list[tuple[int, int, int]] = []
    for xy in points:
        pixel = im.convert("RGB").getpixel(xy)
        assert isinstance(pixel, tuple)
        out.append(
            min(named, key=lambda c: sum((a - b) ** 2 for a, b in zip(c, pixel, strict=True)))
        )
    return out


def largest(rendered: Rendered) -> Image.Image:
    thumb = max(rendered.thumbnails, key=lambda t: t.width)
    im = Image.open(io.BytesIO(thumb.data))
    im.load()
    return im


def heic(im: Image.Image, **save: object) -> bytes:
    buf = io.BytesIO()
    pillow_heif.from_pillow(im).save(buf, **{"quality": 90, **save})
    return buf.getvalue()


def single(*props: bytes, exif: bytes | None = None) -> bytes:
    f = HeifFile()
    f.primary = f.image(encode(quadrants()), *props)
    if exif is not None:
        f.exif(f.primary, exif)
    return f.build()


def reason(data: bytes, limits: Limits = LIMITS) -> str:
    with pytest.raises(ImageRejected) as info:
        render(data, SPECS, limits)
    return str(info.value.reason)


# --- what a phone writes ----------------------------------------------------------------------


def test_a_heic_photo_becomes_srgb_thumbnails_with_its_record() -> None:
    exif = Image.Exif()
    exif[0x010F], exif[0x0110] = "Apple", "iPhone 15 Pro"
    exif.get_ifd(0x8769)[0x9003] = "2026:11:30 09:15:00"
    gps = exif.get_ifd(0x8825)
    gps.update({1: "N", 2: (48.0, 51.0, 36.0), 3: "E", 4: (2.0, 21.0, 0.0)})
    data = heic(quadrants(640, 480), exif=exif.tobytes())

    rendered = render(data, SPECS, LIMITS)
    with_gps = render(data, SPECS, LIMITS, include_gps=True)

    info = rendered.info
    assert (info.format, info.width, info.height, info.bits, info.frames) == (
        "HEIF",
        640,
        480,
        8,
        1,
    )
    assert [(t.width, t.height, t.content_type) for t in rendered.thumbnails] == [
        (64, 48, "image/jpeg"),
        (256, 192, "image/jpeg"),
    ]
    assert corners(largest(rendered)) == [RED, GREEN, BLUE, WHITE]
    assert info.exif == {
        "make": "Apple",
        "model": "iPhone 15 Pro",
        "taken_at": "2026:11:30 09:15:00",
    }
    assert with_gps.info.exif["gps"] == {"lat": 48.86, "lon": 2.35}


def test_a_grid_is_composed_tile_by_tile_as_the_file_lays_it_out() -> None:
    """iPhones write 512 px tiles in a grid item; here each tile has its own colour, and the
    grid's output size crops the last row and column as the format says."""
    colours = [RED, GREEN, BLUE, WHITE, (255, 255, 0), (0, 255, 255)]
    f = HeifFile()
    tiles = [f.image(encode(Image.new("RGB", (128, 128), c)), hidden=True) for c in colours]
    f.primary = f.grid(2, 3, 380, 250, tiles)  # 3 x 2 tiles of 128 = 384 x 256, cropped

    rendered = render(f.build(), parse_sizes("same=380"), LIMITS)

    assert (rendered.info.width, rendered.info.height) == (380, 250)
    out = largest(rendered).convert("RGB")
    for index, colour in enumerate(colours):
        x, y = (index % 3) * 128 + 60, (index // 3) * 128 + 60
        pixel = out.getpixel((x, y))
        assert isinstance(pixel, tuple)
        assert all(abs(a - b) <= 12 for a, b in zip(pixel, colour, strict=True)), (index, pixel)


def test_a_grid_written_by_an_encoder_as_phones_do() -> None:
    data = heic(quadrants(1024, 768), tile_size=256)
    assert b"grid" in data[:4096]
    assert corners(largest(render(data, SPECS, LIMITS))) == [RED, GREEN, BLUE, WHITE]


def test_an_overlay_places_its_images_on_its_canvas() -> None:
    f = HeifFile()
    red = f.image(encode(Image.new("RGB", (64, 64), RED)), hidden=True)
    blue = f.image(encode(Image.new("RGB", (64, 64), BLUE)), hidden=True)
    f.primary = f.overlay(256, 128, (0, 65535, 0, 65535), [(red, 0, 0), (blue, 192, 64)])

    out = largest(render(f.build(), parse_sizes("same=256"), LIMITS)).convert("RGB")

    assert out.size == (256, 128)
    where = {(32, 32): RED, (224, 96): BLUE, (128, 64): GREEN, (224, 32): GREEN, (32, 96): GREEN}
    for xy, colour in where.items():
        assert corners(out.crop((xy[0] - 8, xy[1] - 8, xy[0] + 8, xy[1] + 8)))[0] == colour, xy


def test_the_primary_image_is_rendered_whatever_else_the_file_holds() -> None:
    """A burst (the chosen shot is the second item), with a depth map on the primary: the
    thumbnails are the primary's, the record counts the images, nothing is an animation."""
    f = HeifFile()
    f.image(encode(Image.new("RGB", (128, 96), RED)))
    chosen = f.image(encode(quadrants(128, 96)))
    f.image(encode(Image.new("RGB", (128, 96), BLUE)))
    f.auxiliary(chosen, encode(Image.new("RGB", (64, 48), (90, 90, 90))), hf.DEPTH_URN)
    f.primary = chosen

    rendered = render(f.build(), SPECS, LIMITS)

    assert corners(largest(rendered)) == [RED, GREEN, BLUE, WHITE]
    assert (rendered.info.frames, rendered.info.animated) == (3, False)


def test_the_primary_of_an_encoders_burst() -> None:
    shots = [Image.new("RGB", (96, 64), c) for c in (RED, GREEN, BLUE)]
    buf = io.BytesIO()
    heif = pillow_heif.from_pillow(shots[0])
    for shot in shots[1:]:
        heif.add_from_pillow(shot)
    heif.save(buf, quality=90, primary_index=2)

    rendered = render(buf.getvalue(), SPECS, LIMITS)

    assert corners(largest(rendered)) == [BLUE] * 4
    assert rendered.info.frames == 3


def test_a_stereo_pair_renders_the_primary_eye() -> None:
    f = HeifFile()
    left = f.image(encode(Image.new("RGB", (96, 64), RED)))
    f.image(encode(Image.new("RGB", (96, 64), GREEN)))
    f.primary = left
    assert corners(largest(render(f.build(), SPECS, LIMITS))) == [RED] * 4


# --- transformations: once, by the container ----------------------------------------------------

TRANSFORMS: list[tuple[str, list[bytes], list[Image.Transpose]]] = [
    ("irot 90", [irot(1)], [Image.Transpose.ROTATE_90]),
    ("irot 180", [irot(2)], [Image.Transpose.ROTATE_180]),
    ("irot 270", [irot(3)], [Image.Transpose.ROTATE_270]),
    ("imir top-bottom", [imir(0)], [Image.Transpose.FLIP_TOP_BOTTOM]),
    ("imir left-right", [imir(1)], [Image.Transpose.FLIP_LEFT_RIGHT]),
    # in the order the item lists them: first turn, then mirror
    (
        "irot 90 then imir",
        [irot(1), imir(1)],
        [Image.Transpose.ROTATE_90, Image.Transpose.FLIP_LEFT_RIGHT],
    ),
]


@pytest.mark.parametrize(
    ("props", "steps"), [t[1:] for t in TRANSFORMS], ids=[t[0] for t in TRANSFORMS]
)
def test_container_transforms_are_applied(props: list[bytes], steps: list[Image.Transpose]) -> None:
    expected = quadrants()
    for step in steps:
        expected = expected.transpose(step)

    out = largest(render(single(*props), SPECS, LIMITS))

    assert out.size == ((256, 128) if expected.width > expected.height else (128, 256))
    assert corners(out) == corners(expected)


@pytest.fixture(params=["as decoded", "EXIF left as written"])
def exif_kept(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """pi_heif resets a HEIF's EXIF orientation to 1; the engine's own rule must hold without
    that too (another decoder, another version)."""
    if request.param == "EXIF left as written":
        monkeypatch.setattr("pi_heif.as_plugin.set_orientation", lambda info: None)


@pytest.mark.usefixtures("exif_kept")
def test_an_exif_orientation_beside_irot_is_not_applied_a_second_time() -> None:
    """iPhones write irot and the same turn as EXIF orientation 6. The container wins (ISO/IEC
    23008-12): the photo turns once. Here the EXIF even says something else (3, upside down)."""
    expected = corners(quadrants().transpose(Image.Transpose.ROTATE_270))
    for orientation in (6, 3):
        rendered = render(single(irot(3), exif=hf.exif_tiff(orientation)), SPECS, LIMITS)
        assert corners(largest(rendered)) == expected
        assert rendered.info.orientation == 1 and "orientation" not in rendered.info.exif


@pytest.mark.usefixtures("exif_kept")
def test_an_exif_orientation_alone_is_not_applied_either() -> None:
    rendered = render(single(exif=hf.exif_tiff(6)), SPECS, LIMITS)
    assert corners(largest(rendered)) == [RED, GREEN, BLUE, WHITE]


def test_clean_aperture_crops_before_the_thumbnails() -> None:
    # the top-left quarter, 128 x 64, whose centre is 64, 32 from the image's centre
    rendered = render(single(clap(128, 64, -64, -32)), SPECS, LIMITS)
    assert (rendered.info.width, rendered.info.height) == (128, 64)
    assert corners(largest(rendered)) == [RED] * 4


# --- depth, alpha, colour ---------------------------------------------------------------------


def _deep(mode: str, pixel: tuple[int, ...], twelve: bool) -> bytes:
    size = (320, 240)
    data = struct.pack(f"<{len(pixel)}H", *pixel) * (size[0] * size[1])
    buf = io.BytesIO()
    previous = pillow_heif.options.SAVE_HDR_TO_12_BIT
    pillow_heif.options.SAVE_HDR_TO_12_BIT = twelve
    try:
        pillow_heif.from_bytes(mode=mode, size=size, data=data).save(buf, quality=95)
    finally:
        pillow_heif.options.SAVE_HDR_TO_12_BIT = previous
    return buf.getvalue()


@pytest.mark.parametrize("twelve", [False, True], ids=["10-bit", "12-bit"])
def test_high_bit_depth_becomes_8_bit_thumbnails_and_the_record_keeps_the_depth(
    twelve: bool,
) -> None:
    rendered = render(_deep("RGB;16", (40000, 20000, 10000), twelve), SPECS, LIMITS)
    out = largest(rendered)
    assert rendered.info.bits == (12 if twelve else 10)
    assert out.mode == "RGB"
    pixel = out.getpixel((10, 10))
    assert isinstance(pixel, tuple)
    # 40000/65535 of 255 = 156, 20000/65535 = 78, 10000/65535 = 39: scaled, not clipped
    assert all(abs(a - b) <= 3 for a, b in zip(pixel, (156, 78, 39), strict=True))


def test_alpha_is_kept_as_for_png() -> None:
    im = Image.new("RGBA", (320, 240), (255, 0, 0, 255))
    im.paste((0, 0, 255, 0), (0, 0, 160, 240))
    rendered = render(heic(im), SPECS, LIMITS)
    out = largest(rendered)
    assert rendered.info.has_alpha and out.mode == "RGBA"
    assert {t.content_type for t in rendered.thumbnails} == {"image/png"}
    left, right = out.getpixel((20, 100)), out.getpixel((230, 100))
    assert isinstance(left, tuple) and isinstance(right, tuple)
    assert left[3] <= 5 and right[3] >= 250 and right[0] >= 245


def test_ten_bit_alpha() -> None:
    rendered = render(_deep("RGBA;16", (40000, 20000, 10000, 30000), False), SPECS, LIMITS)
    pixel = largest(rendered).getpixel((10, 10))
    assert isinstance(pixel, tuple) and rendered.info.bits == 10
    assert abs(pixel[3] - 117) <= 3  # 30000/65535 of 255


# Display P3 (200, 100, 50) in sRGB, from the published matrices (P3 -> XYZ -> sRGB, D65),
# computed apart from the code under test: (215, 93, 31).
P3_SOURCE, P3_IN_SRGB = (200, 100, 50), (215, 93, 31)
P3_NCLX = dict(primaries=12, transfer=13)


def _p3_profile() -> bytes:
    from imgpipe.imaging.icc import colorants

    matrix = colorants((0.680, 0.320), (0.265, 0.690), (0.150, 0.060), (0.3127, 0.3290))
    return rgb_profile(
        "Display P3", matrix, lambda v: v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4
    )


def _flat(*props: bytes) -> bytes:
    f = HeifFile()
    f.primary = f.image(encode(Image.new("RGB", (128, 128), P3_SOURCE), quality=100), *props)
    return f.build()


@pytest.mark.parametrize(
    "colour",
    [hf.icc(_p3_profile()), hf.nclx(12, 13)],
    ids=["ICC profile (iPhone)", "nclx primaries 12 (Android)"],
)
def test_display_p3_is_converted_to_srgb(colour: bytes) -> None:
    untagged = largest(render(_flat(), SPECS, LIMITS)).getpixel((60, 60))
    tagged = largest(render(_flat(colour), SPECS, LIMITS)).getpixel((60, 60))
    assert isinstance(untagged, tuple) and isinstance(tagged, tuple)
    assert all(abs(a - b) <= 4 for a, b in zip(untagged, P3_SOURCE, strict=True)), untagged
    assert all(abs(a - b) <= 4 for a, b in zip(tagged, P3_IN_SRGB, strict=True)), tagged


def test_srgb_nclx_is_left_alone() -> None:
    pixel = largest(render(_flat(hf.nclx(1, 13)), SPECS, LIMITS)).getpixel((60, 60))
    assert isinstance(pixel, tuple)
    assert all(abs(a - b) <= 4 for a, b in zip(pixel, P3_SOURCE, strict=True))


# --- limits before decoding -------------------------------------------------------------------


def _grid_claiming(columns: int, rows: int) -> bytes:
    """A grid of columns x rows 512 px tiles that all share one coded picture: a few kB."""
    tile = encode(Image.new("RGB", (512, 512), (90, 90, 90)))
    f = HeifFile()
    tiles = [f.image(tile, hidden=True) for _ in range(columns * rows)]
    f.primary = f.grid(rows, columns, columns * 512, rows * 512, tiles)
    return f.build()


def test_a_200_megapixel_heic_is_refused_from_its_header() -> None:
    data = _grid_claiming(32, 24)  # 16384 x 12288
    assert len(data) < 100_000
    assert reason(data) == "too_many_pixels"


def test_pixel_and_memory_limits_are_read_before_the_decode(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The decode is never reached: a load would fail this test."""
    data = _grid_claiming(4, 3)  # 2048 x 1536 = 3.1 MP

    def no_decode(self: Image.Image) -> None:
        raise AssertionError("decoded")

    monkeypatch.setattr("pi_heif.as_plugin._LibHeifImageFile.load", no_decode)
    assert reason(data, Limits(max_pixels=3_000_000)) == "too_many_pixels"
    # 3.1 MP x 8 bytes: 24 MiB, over a 16 MiB budget
    assert reason(data, Limits(max_decode_bytes=16 << 20)) == "too_many_pixels"


def test_the_image_count_is_held_to_max_frames() -> None:
    f = HeifFile()
    coded = encode(Image.new("RGB", (64, 64), RED))
    for _ in range(12):
        f.image(coded)
    f.primary = 1
    assert reason(f.build()) == "too_many_frames"
    assert render(f.build(), SPECS, Limits(max_frames=12)).info.frames == 12


def test_libheif_security_limits_stay_on() -> None:
    heif_module.register()
    import pi_heif

    assert pi_heif.options.DISABLE_SECURITY_LIMITS is False
    f = HeifFile()
    coded = encode(Image.new("RGB", (64, 64), RED))
    for _ in range(1001):  # libheif's default: at most 1000 items
        f.image(coded)
    f.primary = 1
    with pytest.raises(ImageRejected) as info:
        render(f.build(), SPECS, Limits(max_frames=2000))
    assert info.value.reason == "corrupt" and "security limit" in info.value.detail.lower()


# --- broken files: a reason each, never a traceback ---------------------------------------------

PHOTO = None


def _photo() -> bytes:
    global PHOTO
    if PHOTO is None:
        PHOTO = heic(quadrants(640, 480), tile_size=256)
    return PHOTO


BROKEN: list[tuple[str, Callable[[bytes], bytes], str]] = [
    ("empty", lambda d: b"", "empty"),
    ("ftyp only", lambda d: d[:28], "truncated"),
    ("cut in the meta box", lambda d: d[:200], "truncated"),
    ("cut in the picture data", lambda d: d[: len(d) * 2 // 3], "truncated"),
    ("cut by one byte", lambda d: d[:-1], "truncated"),
    ("meta box overwritten", lambda d: d[:100] + b"\xff" * 80 + d[180:], "corrupt"),
    ("no HEVC configuration", lambda d: d.replace(b"hvcC", b"xxxx"), "unsupported_format"),
    (
        "an AVC item (no decoder in this build)",
        lambda d: d.replace(b"hvc1", b"avc1"),
        "unsupported_format",
    ),
]


@pytest.mark.parametrize(
    ("damage", "expected"), [b[1:] for b in BROKEN], ids=[b[0] for b in BROKEN]
)
def test_broken_files_are_rejected_with_their_reason(
    damage: Callable[[bytes], bytes], expected: str
) -> None:
    assert reason(damage(_photo())) == expected


def test_an_av1_image_under_generic_brands_says_what_this_build_lacks() -> None:
    """``mif1`` alone names no codec; libavif reads AV1 only under an avif brand, and libheif
    here decodes HEVC only: a clear unsupported_format, not corrupt."""
    buf = io.BytesIO()
    quadrants().save(buf, "AVIF", quality=90)
    data = bytearray(buf.getvalue())
    size = struct.unpack(">I", data[:4])[0]
    data[8:size] = data[8:size].replace(b"avif", b"mif1").replace(b"avis", b"miaf")
    assert reason(bytes(data)) == "unsupported_format"


# --- labels, faces and text, as on JPEG ---------------------------------------------------------


@pytest.fixture(scope="module")
def labeler() -> LocalLabeler:
    return LocalLabeler(LabelSettings(backend="local"))


def test_faces_labels_and_text_on_heic_as_on_jpeg(labeler: LocalLabeler) -> None:
    options = RenderOptions(sizes=SPECS, limits=LIMITS)
    astronaut = process_image(heic(skimage_photo("astronaut.png")), options, labeler).findings
    assert len(astronaut.faces) == 1 and "Person" in [x.name for x in astronaut.labels]
    sign = process_image(heic(sign_photo("OPEN 24 HOURS")), options, labeler).findings
    assert any("OPEN" in line.text for line in sign.text)
