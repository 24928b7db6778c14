"""HEIF files with exactly the structure a test names: grids, overlays, transformations,
several images, auxiliary (alpha, depth) images, EXIF items, ICC profiles.

The HEVC bitstreams come from a real encoder (pillow-heif's x265, in the dev extra only); the
container around them (ISO/IEC 23008-12: ``ftyp``, ``meta`` with ``iinf``/``iloc``/``iref``/
``iprp``, ``mdat``) is written here, so that a test can combine properties no encoder exposes —
a grid whose tiles carry an ``irot`` on the grid, an EXIF orientation that disagrees with the
container, a primary image that is not the first item, an overlay of two images, a 200 MP grid
of a few kilobytes that reuses one tile.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass, field

import pillow_heif
from PIL import Image


@dataclass(frozen=True)
class Coded:
    """One HEVC-coded image: its decoder configuration and its bitstream."""

    hvcc: bytes  # the whole hvcC property box
    data: bytes
    width: int
    height: int


def _boxes(data: bytes) -> dict[bytes, list[bytes]]:
    found: dict[bytes, list[bytes]] = {}
    at = 0
    while at + 8 <= len(data):
        size, kind = struct.unpack_from(">I4s", data, at)
        found.setdefault(kind, []).append(data[at + 8 : at + size])
        at += size
    return found


def encode(im: Image.Image, quality: int = 90) -> Coded:
    """``im`` coded by x265 (sizes divisible by 8 avoid a ``clap`` of the encoder's own)."""
    buf = io.BytesIO()
    pillow_heif.from_pillow(im).save(buf, quality=quality, save_nclx_profile=False)
    top = _boxes(buf.getvalue())
    meta = _boxes(top[b"meta"][0][4:])
    props = meta[b"iprp"][0]
    ipco = _boxes(_boxes(props)[b"ipco"][0])
    hvcc_body = ipco[b"hvcC"][0]
    # iloc: one item, one extent (what libheif writes); field sizes from its header
    iloc = meta[b"iloc"][0]
    version, sizes = iloc[0], iloc[4:6]
    offset_size, length_size, base_size = sizes[0] >> 4, sizes[0] & 15, sizes[1] >> 4
    at = 6 + (4 if version == 2 else 2)  # the item count
    at += (4 if version == 2 else 2) + (2 if version >= 1 else 0) + 2  # id, method, data ref
    base = int.from_bytes(iloc[at : at + base_size], "big")
    at += base_size
    assert struct.unpack_from(">H", iloc, at)[0] == 1, "one extent expected"
    at += 2
    offset = base + int.from_bytes(iloc[at : at + offset_size], "big")
    length = int.from_bytes(iloc[at + offset_size : at + offset_size + length_size], "big")
    file = buf.getvalue()
    return Coded(_box(b"hvcC", hvcc_body), file[offset : offset + length], im.width, im.height)


def _box(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(body), kind) + body


def _full(kind: bytes, version: int, flags: int, body: bytes) -> bytes:
    return _box(kind, struct.pack(">I", (version << 24) | flags) + body)


def ispe(width: int, height: int) -> bytes:
    return _full(b"ispe", 0, 0, struct.pack(">II", width, height))


def irot(quarter_turns_anticlockwise: int) -> bytes:
    return _box(b"irot", bytes([quarter_turns_anticlockwise & 3]))


def imir(axis: int) -> bytes:
    """axis 0: top and bottom swap; 1: left and right swap (as libheif reads the box)."""
    return _box(b"imir", bytes([axis & 1]))


def clap(width: int, height: int, dx: int, dy: int) -> bytes:
    """A clean aperture ``width`` x ``height`` whose centre is (dx, dy) from the image's centre."""
    return _box(b"clap", struct.pack(">8i", width, 1, height, 1, dx, 1, dy, 1))


def icc(profile: bytes) -> bytes:
    return _box(b"colr", b"prof" + profile)


def nclx(primaries: int, transfer: int = 13, matrix: int = 6, full_range: bool = True) -> bytes:
    return _box(
        b"colr", b"nclx" + struct.pack(">HHHB", primaries, transfer, matrix, full_range << 7)
    )


def pixi(*bits: int) -> bytes:
    return _full(b"pixi", 0, 0, bytes([len(bits), *bits]))


ALPHA_URN = b"urn:mpeg:mpegB:cicp:systems:auxiliary:alpha\x00"
DEPTH_URN = b"urn:mpeg:hevc:2015:auxid:2\x00"


def auxc(urn: bytes) -> bytes:
    return _full(b"auxC", 0, 0, urn)


@dataclass
class _Item:
    kind: bytes
    data: bytes
    props: list[bytes]
    hidden: bool = False


@dataclass
class HeifFile:
    """Items added in order; ``build`` writes the file. Ids start at 1."""

    brand: bytes = b"heic"
    items: list[_Item] = field(default_factory=list)
    refs: list[tuple[bytes, int, list[int]]] = field(default_factory=list)
    primary: int = 0

    def image(self, coded: Coded, *props: bytes, hidden: bool = False) -> int:
        """A coded image item with its ``ispe`` (the coded size) and ``props`` after it."""
        base = [coded.hvcc, ispe(coded.width, coded.height)]
        return self._add(_Item(b"hvc1", coded.data, base + list(props), hidden))

    def grid(
        self, rows: int, cols: int, width: int, height: int, tiles: list[int], *props: bytes
    ) -> int:
        """A grid image ``width`` x ``height`` of ``tiles`` (row by row; ids may repeat)."""
        big = width > 0xFFFF or height > 0xFFFF
        size = ">II" if big else ">HH"
        body = bytes([0, 1 if big else 0, rows - 1, cols - 1]) + struct.pack(size, width, height)
        item = self._add(_Item(b"grid", body, [ispe(width, height), *props]))
        self.refs.append((b"dimg", item, tiles))
        return item

    def overlay(
        self,
        width: int,
        height: int,
        fill: tuple[int, int, int, int],
        placed: list[tuple[int, int, int]],
        *props: bytes,
    ) -> int:
        """A canvas ``width`` x ``height`` filled with 16-bit RGBA ``fill``, and each (item,
        x, y) drawn on it in order."""
        body = bytes([0, 0]) + struct.pack(">4H", *fill) + struct.pack(">HH", width, height)
        body += b"".join(struct.pack(">hh", x, y) for _, x, y in placed)
        item = self._add(_Item(b"iovl", body, [ispe(width, height), *props]))
        self.refs.append((b"dimg", item, [i for i, _, _ in placed]))
        return item

    def auxiliary(self, master: int, coded: Coded, urn: bytes) -> int:
        item = self.image(coded, auxc(urn), hidden=True)
        self.refs.append((b"auxl", item, [master]))
        return item

    def exif(self, image: int, tiff: bytes) -> int:
        """An EXIF item describing ``image`` (``tiff``: a TIFF header and IFDs, as
        ``Image.Exif().tobytes()`` without its ``Exif\\0\\0`` prefix)."""
        item = self._add(_Item(b"Exif", struct.pack(">I", 0) + tiff, [], hidden=True))
        self.refs.append((b"cdsc", item, [image]))
        return item

    def _add(self, item: _Item) -> int:
        self.items.append(item)
        return len(self.items)

    def build(self) -> bytes:
        ftyp = _box(b"ftyp", self.brand + b"\0\0\0\0" + b"mif1" + self.brand + b"miaf")
        meta = self._meta(0)
        start = len(ftyp) + len(meta) + 8  # the mdat's payload
        return ftyp + self._meta(start) + _box(b"mdat", b"".join(self._placed(0)))

    def _placed(self, start: int) -> dict[bytes, int]:
        """Where each distinct bitstream lies: items with the same bytes share one extent (a
        grid may not name one tile twice, but its tiles may all be the same picture)."""
        at: dict[bytes, int] = {}
        offset = start
        for item in self.items:
            if item.data not in at:
                at[item.data] = offset
                offset += len(item.data)
        return at

    def _meta(self, start: int) -> bytes:
        hdlr = _full(b"hdlr", 0, 0, b"\0\0\0\0pict" + b"\0" * 12 + b"\0")
        pitm = _full(b"pitm", 0, 0, struct.pack(">H", self.primary or 1))
        infe = b"".join(
            _full(b"infe", 2, int(item.hidden), struct.pack(">HH4s", i, 0, item.kind) + b"\0")
            for i, item in enumerate(self.items, 1)
        )
        iinf = _full(b"iinf", 0, 0, struct.pack(">H", len(self.items)) + infe)
        placed = self._placed(start)
        entries = b"".join(
            struct.pack(">HHHII", i, 0, 1, placed[item.data], len(item.data))
            for i, item in enumerate(self.items, 1)
        )
        iloc = _full(
            b"iloc", 0, 0, bytes([0x44, 0x00]) + struct.pack(">H", len(self.items)) + entries
        )
        iref = _full(
            b"iref",
            0,
            0,
            b"".join(
                _box(kind, struct.pack(">HH", source, len(to)) + struct.pack(f">{len(to)}H", *to))
                for kind, source, to in self.refs
            ),
        )
        props: list[bytes] = []
        assoc = b""
        for i, item in enumerate(self.items, 1):
            indices = []
            for prop in item.props:
                if prop not in props:
                    props.append(prop)
                indices.append(props.index(prop) + 1)
            # hvcC, irot, imir, clap and grid geometry are essential; ispe/colr/pixi are not
            marks = [
                ix | (0x80 if props[ix - 1][4:8] in {b"hvcC", b"irot", b"imir", b"clap"} else 0)
                for ix in indices
            ]
            assoc += struct.pack(">HB", i, len(marks)) + bytes(marks)
        ipma = _full(b"ipma", 0, 0, struct.pack(">I", len(self.items)) + assoc)
        iprp = _box(b"iprp", _box(b"ipco", b"".join(props)) + ipma)
        body = hdlr + pitm + iinf + iloc + (iref if self.refs else b"") + iprp
        return _full(b"meta", 0, 0, body)


def exif_tiff(orientation: int = 1, **tags: object) -> bytes:
    """EXIF as a HEIF ``Exif`` item holds it: the TIFF structure, no ``Exif\\0\\0``."""
    exif = Image.Exif()
    if orientation != 1:
        exif[0x0112] = orientation
    for name, value in tags.items():
        exif[{"make": 0x010F, "model": 0x0110}[name]] = value
    return exif.tobytes()[6:] if exif.tobytes().startswith(b"Exif") else exif.tobytes()
