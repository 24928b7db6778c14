"""An ICC profile for an RGB space described by numbers (primaries, white, transfer), so that
LittleCMS converts it to sRGB like any embedded profile.

HEIF and AVIF often describe colour with an ``nclx`` box (ITU-T H.273 code points: Display P3
is primaries 12 with the sRGB transfer 13) instead of an ICC profile; Pillow's ImageCms can only
create sRGB, Lab and XYZ profiles, so the matrix/TRC profile is written here (ICC.1:2001-04,
version 2.1: header, tag table, desc/cprt/wtpt/rXYZ/gXYZ/bXYZ/rTRC/gTRC/bTRC)."""

from __future__ import annotations

import math
import struct
from collections.abc import Callable

Matrix = tuple[tuple[float, float, float], ...]
XY = tuple[float, float]

D50_XYZ = (0.9642, 1.0, 0.8249)
# Bradford cone response (Lindbloom): chromatic adaptation of the colorants to D50
_BRADFORD: Matrix = (
    (0.8951, 0.2664, -0.1614),
    (-0.7502, 1.7135, 0.0367),
    (0.0389, -0.0685, 1.0296),
)
_TABLE = 1024  # entries of each tone curve


def _mul(a: Matrix, b: Matrix) -> Matrix:
    return tuple(
        (
            sum(a[i][k] * b[k][0] for k in range(3)),
            sum(a[i][k] * b[k][1] for k in range(3)),
            sum(a[i][k] * b[k][2] for k in range(3)),
        )
        for i in range(3)
    )


def _apply(m: Matrix, v: tuple[float, float, float]) -> tuple[float, float, float]:
    return (
        m[0][0] * v[0] + m[0][1] * v[1] + m[0][2] * v[2],
        m[1][0] * v[0] + m[1][1] * v[1] + m[1][2] * v[2],
        m[2][0] * v[0] + m[2][1] * v[1] + m[2][2] * v[2],
    )


def _inverse(m: Matrix) -> Matrix:
    (a, b, c), (d, e, f), (g, h, i) = m
    det = a * (e * i - f * h) - b * (d * i - f * g) + c * (d * h - e * g)
    if abs(det) < 1e-12:
        raise ValueError("degenerate primaries")
    return (
        ((e * i - f * h) / det, (c * h - b * i) / det, (b * f - c * e) / det),
        ((f * g - d * i) / det, (a * i - c * g) / det, (c * d - a * f) / det),
        ((d * h - e * g) / det, (b * g - a * h) / det, (a * e - b * d) / det),
    )


def _xyz(xy: XY) -> tuple[float, float, float]:
    x, y = xy
    if y <= 0:
        raise ValueError("a chromaticity with y <= 0")
    return (x / y, 1.0, (1 - x - y) / y)


def colorants(red: XY, green: XY, blue: XY, white: XY) -> Matrix:
    """The RGB -> XYZ (D50) matrix of a space: its columns are the adapted colorants."""
    r, g, b = _xyz(red), _xyz(green), _xyz(blue)
    m: Matrix = ((r[0], g[0], b[0]), (r[1], g[1], b[1]), (r[2], g[2], b[2]))
    sr, sg, sb = _apply(_inverse(m), _xyz(white))  # each primary's share of the white
    rgb_to_xyz: Matrix = tuple((row[0] * sr, row[1] * sg, row[2] * sb) for row in m)
    src = _apply(_BRADFORD, _xyz(white))
    dst = _apply(_BRADFORD, D50_XYZ)
    gain: Matrix = ((dst[0] / src[0], 0, 0), (0, dst[1] / src[1], 0), (0, 0, dst[2] / src[2]))
    adapt = _mul(_inverse(_BRADFORD), _mul(gain, _BRADFORD))
    return _mul(adapt, rgb_to_xyz)


def _srgb(v: float) -> float:
    return v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4


def _bt709(v: float) -> float:
    return v / 4.5 if v < 0.081 else ((v + 0.099) / 1.099) ** (1 / 0.45)


# H.273 transfer characteristics -> the encoded value's linear light. HDR transfers (PQ 16,
# HLG 18) are not listed: their pixels need tone mapping, not a profile.
TRANSFERS: dict[int, Callable[[float], float]] = {
    1: _bt709,
    6: _bt709,
    14: _bt709,
    15: _bt709,
    4: lambda v: v**2.2,
    5: lambda v: v**2.8,
    8: lambda v: v,
    13: _srgb,
}


def _s15(value: float) -> bytes:
    return struct.pack(">i", round(value * 65536))


def _xyz_tag(xyz: tuple[float, float, float]) -> bytes:
    return b"XYZ \0\0\0\0" + b"".join(_s15(v) for v in xyz)


def _curve(linear: Callable[[float], float]) -> bytes:
    points = [linear(i / (_TABLE - 1)) for i in range(_TABLE)]
    table = b"".join(struct.pack(">H", max(0, min(65535, round(p * 65535)))) for p in points)
    return b"curv\0\0\0\0" + struct.pack(">I", _TABLE) + table


def _desc(text: str) -> bytes:
    ascii_text = text.encode("ascii", "replace") + b"\0"
    return (
        b"desc\0\0\0\0"
        + struct.pack(">I", len(ascii_text))
        + ascii_text
        + struct.pack(">II", 0, 0)  # no Unicode description
        + struct.pack(">HB", 0, 0)
        + b"\0" * 67  # no ScriptCode description
    )


def rgb_profile(name: str, matrix: Matrix, linear: Callable[[float], float]) -> bytes:
    """An ICC v2 display profile: ``matrix`` (RGB -> XYZ D50), one tone curve for all three."""
    trc = _curve(linear)
    tags = [
        (b"desc", _desc(name)),
        (b"cprt", b"text\0\0\0\0No copyright, use freely\0"),
        (b"wtpt", _xyz_tag(D50_XYZ)),  # v2 display profiles: the PCS white (lcms reads so)
        (b"rXYZ", _xyz_tag((matrix[0][0], matrix[1][0], matrix[2][0]))),
        (b"gXYZ", _xyz_tag((matrix[0][1], matrix[1][1], matrix[2][1]))),
        (b"bXYZ", _xyz_tag((matrix[0][2], matrix[1][2], matrix[2][2]))),
        (b"rTRC", trc),
        (b"gTRC", trc),
        (b"bTRC", trc),
    ]
    table_size = 4 + 12 * len(tags)
    offset = 128 + table_size
    entries, body, placed = b"", b"", {}
    for sig, data in tags:
        if data not in placed:  # the three TRC tags share one curve, as the format allows
            placed[data] = offset + len(body)
            body += data + b"\0" * (-len(data) % 4)
        entries += sig + struct.pack(">II", placed[data], len(data))
    size = offset + len(body)
    header = (
        struct.pack(">I", size)
        + b"\0\0\0\0"
        + bytes([2, 0x10, 0, 0])
        + b"mntrRGB XYZ "
        + struct.pack(">6H", 2026, 1, 1, 0, 0, 0)
        + b"acsp"
        + b"\0" * 24  # platform, flags, manufacturer, model, attributes
        + struct.pack(">I", 0)  # perceptual intent
        + b"".join(_s15(v) for v in D50_XYZ)
        + b"\0" * 48  # creator, profile id, reserved
    )
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + entries + body


def from_nclx(nclx: object) -> bytes | None:
    """A profile for the space an ``nclx`` box describes (pi_heif gives its primaries as
    chromaticities), or None where sRGB is right already or no profile can say it."""
    if not isinstance(nclx, dict):
        return None
    primaries, transfer = nclx.get("color_primaries"), nclx.get("transfer_characteristics")
    if primaries in (1, 2) and transfer in (1, 2, 6, 13, 14, 15):
        return None  # BT.709 primaries: sRGB's own (unspecified is taken as sRGB)
    code = transfer if isinstance(transfer, int) else -1
    linear = _srgb if code == 2 else TRANSFERS.get(code)
    try:
        red, green, blue, white = (
            (float(nclx[f"color_primary_{c}_x"]), float(nclx[f"color_primary_{c}_y"]))
            for c in ("red", "green", "blue", "white")
        )
        if linear is None or not all(
            math.isfinite(v) for p in (red, green, blue, white) for v in p
        ):
            return None
        matrix = colorants(red, green, blue, white)
    except (KeyError, TypeError, ValueError):
        return None
    return rgb_profile(f"nclx primaries {primaries} transfer {transfer}", matrix, linear)
