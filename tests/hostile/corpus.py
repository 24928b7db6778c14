"""The hostile-input corpus, generated (never checked in): ``python -m tests.hostile.corpus DIR``.

Each case is a file an attacker or an unlucky user could upload, with the outcome it must get:
a REJECTED reason, or DONE. ``tests/unit/test_hostile_files.py`` runs every one through
`imgpipe process` in a child process and holds it to the memory and time budget.
"""

from __future__ import annotations

import io
import struct
import sys
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from PIL import Image

from tests.harness.heif_files import Coded, HeifFile, encode


@dataclass(frozen=True)
class Case:
    name: str
    data: bytes
    expected: str  # "DONE" or the REJECTED reason


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return (
        struct.pack(">I", len(payload))
        + kind
        + payload
        + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)
    )


def png_claiming(width: int, height: int, bit_depth: int, colour: int, rows: int = 1) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` but whose data holds ``rows`` rows."""
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[colour]
    row = b"\x00" + b"\x00" * (width * channels * bit_depth // 8)
    out = b"\x89PNG\r\n\x1a\n"
    out += _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, bit_depth, colour, 0, 0, 0))
    if colour == 3:
        out += _chunk(b"PLTE", b"\x00\x00\x00\xff\xff\xff")
        out += _chunk(b"tRNS", b"\x00")
    out += _chunk(b"IDAT", zlib.compress(row * rows, 9))
    return out + _chunk(b"IEND", b"")


def _save(im: Image.Image, fmt: str, **kwargs: object) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kwargs)
    return buf.getvalue()


def tiff_pages(count: int) -> bytes:
    """A little-endian TIFF of ``count`` 1x1 grey pages, written directly (Pillow's writer
    takes minutes for tens of thousands of pages)."""
    tags = 8
    ifd_size = 2 + 12 * tags + 4
    out = bytearray(b"II*\x00" + struct.pack("<I", 8))
    for i in range(count):
        start = len(out)
        pixel_at = start + ifd_size
        next_ifd = 0 if i == count - 1 else pixel_at + 2  # one pixel byte, then align to 2
        entries = [
            (256, 3, 1, 1),  # ImageWidth
            (257, 3, 1, 1),  # ImageLength
            (258, 3, 1, 8),  # BitsPerSample
            (259, 3, 1, 1),  # Compression: none
            (262, 3, 1, 1),  # Photometric: black is zero
            (273, 4, 1, pixel_at),  # StripOffsets
            (278, 3, 1, 1),  # RowsPerStrip
            (279, 4, 1, 1),  # StripByteCounts
        ]
        out += struct.pack("<H", tags)
        for tag, kind, n, value in entries:
            out += struct.pack("<HHII", tag, kind, n, value)
        out += struct.pack("<I", next_ifd) + b"\x80\x00"
    return bytes(out)


def tiff_second_page_without_width() -> bytes:
    data = bytearray(tiff_pages(2))
    # The second IFD's ImageWidth tag (256) renamed to an unknown tag: a page with no width.
    first_ifd = struct.unpack_from("<I", data, 4)[0]
    entries = struct.unpack_from("<H", data, first_ifd)[0]
    second_ifd = struct.unpack_from("<I", data, first_ifd + 2 + 12 * entries)[0]
    count = struct.unpack_from("<H", data, second_ifd)[0]
    for i in range(count):
        at = second_ifd + 2 + 12 * i
        if struct.unpack_from("<H", data, at)[0] == 256:
            struct.pack_into("<H", data, at, 65000)
    return bytes(data)


def gif_cut_in_second_frame() -> bytes:
    frames = [Image.effect_noise((64, 64), 40 + 20 * i).convert("P") for i in range(3)]
    data = _save(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50)
    gce = b"\x21\xf9\x04"  # each frame starts with a graphic control extension
    second = data.find(gce, data.find(gce) + 1)
    assert second > 0
    return data[: second + 40]  # inside the second frame's image descriptor and data


def avif_with_mif1_brand() -> bytes:
    data = bytearray(_save(Image.new("RGB", (64, 48), (10, 120, 200)), "AVIF", quality=60))
    assert data[4:8] == b"ftyp"
    data[8:12] = b"mif1"  # major brand as many encoders write it; "avif" stays compatible
    if b"avif" not in bytes(data[16 : struct.unpack(">I", data[0:4])[0]]):
        raise RuntimeError("the encoder wrote no compatible avif brand")
    return bytes(data)


def _clobbered(data: bytes) -> bytes:
    meta = data.find(b"iinf")
    return data[:meta] + b"\xff" * 64 + data[meta + 64 :]


def jpeg(size: tuple[int, int] = (1200, 900)) -> bytes:
    return _save(Image.linear_gradient("L").resize(size).convert("RGB"), "JPEG", quality=85)


def jpeg_header_claiming(width: int, height: int) -> bytes:
    data = bytearray(jpeg((64, 48)))
    sof = data.find(b"\xff\xc0")
    struct.pack_into(">HH", data, sof + 5, height, width)
    return bytes(data)


BIG = "too_many_pixels"


@cache
def _tile() -> Coded:
    """One 512 px HEVC picture, shared by every tile of the grids below (a few kB each)."""
    return encode(Image.linear_gradient("L").resize((512, 512)).convert("RGB"), quality=60)


def heic_grid(columns: int, rows: int) -> bytes:
    """A valid grid HEIC of columns x rows 512 px tiles, as an iPhone lays one out."""
    f = HeifFile()
    tiles = [f.image(_tile(), hidden=True) for _ in range(columns * rows)]
    f.primary = f.grid(rows, columns, columns * 512, rows * 512, tiles)
    return f.build()


def heic_photo() -> bytes:
    return heic_grid(4, 3)


def cases() -> list[Case]:
    photo = jpeg()
    makers: list[tuple[str, Callable[[], bytes], str]] = [
        ("png-16bit-8940-one-row.png", lambda: png_claiming(8940, 8940, 16, 0), "truncated"),
        ("png-rgba16-5000-one-row.png", lambda: png_claiming(5000, 5000, 16, 6), "truncated"),
        ("png-palette-trns-8940-one-row.png", lambda: png_claiming(8940, 8940, 8, 3), "truncated"),
        # complete and valid, but its 16-bit decode would blow the memory budget
        (
            "png-16bit-8200-complete.png",
            lambda: png_claiming(8200, 8200, 16, 0, 8200),
            "too_many_pixels",
        ),
        # within the budget: processed, and inside the memory limit all the same
        ("png-16bit-6000-complete.png", lambda: png_claiming(6000, 6000, 16, 0, 6000), "DONE"),
        ("tiff-40000-pages.tif", lambda: tiff_pages(40_000), "too_many_frames"),
        ("tiff-page-2-without-width.tif", tiff_second_page_without_width, "corrupt"),
        ("gif-cut-in-frame-2.gif", gif_cut_in_second_frame, "corrupt"),
        ("avif-mif1-brand.avif", avif_with_mif1_brand, "DONE"),
        (
            "jpeg-claiming-65000x65000.jpg",
            lambda: jpeg_header_claiming(65000, 65000),
            "too_many_pixels",
        ),
        ("jpeg-truncated.jpg", lambda: photo[: len(photo) // 3], "truncated"),
        ("empty.jpg", lambda: b"", "empty"),
        ("html.png", lambda: b"<!doctype html><title>x</title>", "not_an_image"),
        ("png-signature-only.png", lambda: b"\x89PNG\r\n\x1a\n" + b"\0" * 40, "corrupt"),
        ("photo.jpg", lambda: photo, "DONE"),
        # HEIC: a phone's grid, one far over MAX_PIXELS in 32 kB, one just under it (75.8 MP,
        # decoded whole: HEVC has no reduced decode), a cut one and one with a broken header
        ("heic-grid-4x3.heic", heic_photo, "DONE"),
        ("heic-grid-claiming-200mp.heic", lambda: heic_grid(32, 24), BIG),
        ("heic-grid-75mp.heic", lambda: heic_grid(17, 17), "DONE"),
        ("heic-cut-in-half.heic", lambda: heic_photo()[: len(heic_photo()) // 2], "truncated"),
        ("heic-meta-overwritten.heic", lambda: _clobbered(heic_photo()), "corrupt"),
        ("heic-ftyp-only.heic", lambda: heic_photo()[:32], "truncated"),
    ]
    return [Case(name, make(), expected) for name, make, expected in makers]


def main(folder: str) -> None:
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    for case in cases():
        (out / case.name).write_bytes(case.data)
        print(f"{case.expected:16s} {len(case.data):>10,d}  {case.name}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "hostile-corpus")
