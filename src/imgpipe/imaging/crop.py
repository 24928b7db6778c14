"""Where a ``cover`` thumbnail is cut: around the photo's focus — its faces, when the labeler
found some, else the part that draws the eye (edges and saturated colour, measured on a small
copy, as sharp's and libvips' ``attention`` strategy does) — with the box's aspect ratio, and
always inside the photo. Pure geometry and Pillow: no AWS, no numpy."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image, ImageChops, ImageFilter

from .types import ThumbSpec

RelBox = tuple[float, float, float, float]  # left, top, width, height, as fractions
SALIENCY_SIDE = 96  # pixels: the small copy the attention measure looks at
CENTRE_BIAS = 0.15  # of the mean saliency, added at the centre and fading to 0 at the edges


def scaled_size(width: int, height: int, spec: ThumbSpec) -> tuple[int, int]:
    """The whole photo's size on its way to ``spec``: covering the box (cover) or fitting in
    it (fit, pad), never enlarged."""
    fx, fy = spec.width / width, spec.height / height
    scale = min(max(fx, fy) if spec.mode == "cover" else min(fx, fy), 1.0)
    return max(1, round(width * scale)), max(1, round(height * scale))


def crop_size(width: int, height: int, spec: ThumbSpec) -> tuple[int, int]:
    """The cut out of a ``width`` x ``height`` image scaled for ``spec``: the box itself, or,
    where the photo is smaller than the box, the largest region of the box's aspect."""
    if width >= spec.width and height >= spec.height:
        return spec.width, spec.height
    ratio = spec.width / spec.height
    if width / height > ratio:
        return max(1, round(height * ratio)), height
    return width, max(1, round(width / ratio))


def window(
    size: tuple[int, int], cut: tuple[int, int], focus: tuple[float, float]
) -> tuple[int, int, int, int]:
    """The ``cut``-sized box centred on ``focus`` (fractions of ``size``), moved inside."""
    (width, height), (cw, ch) = size, cut
    left = min(max(round(focus[0] * width - cw / 2), 0), width - cw)
    top = min(max(round(focus[1] * height - ch / 2), 0), height - ch)
    return left, top, left + cw, top + ch


def faces_focus(faces: Sequence[RelBox]) -> tuple[float, float] | None:
    """The faces' centre, each weighted by its area (the main subject pulls hardest)."""
    boxes = [b for b in faces if b[2] > 0 and b[3] > 0]
    if not boxes:
        return None
    total = sum(w * h for _, _, w, h in boxes)
    x = sum((left + w / 2) * w * h for left, _, w, h in boxes) / total
    y = sum((top + h / 2) * w * h for _, top, w, h in boxes) / total
    return min(max(x, 0.0), 1.0), min(max(y, 0.0), 1.0)


@dataclass(frozen=True, slots=True)
class Saliency:
    """A small map of how much each part of a photo draws the eye, with its summed-area
    table so that any window's total is four look-ups."""

    width: int
    height: int
    table: tuple[tuple[float, ...], ...]  # (height + 1) rows of (width + 1) running sums

    @classmethod
    def of(cls, image: Image.Image) -> Saliency:
        small = image.convert("RGB")
        small.thumbnail((SALIENCY_SIDE, SALIENCY_SIDE), Image.Resampling.BILINEAR)
        grey = small.convert("L")
        edges = ImageChops.add(
            grey.filter(ImageFilter.FIND_EDGES),
            grey.filter(ImageFilter.Kernel((3, 3), (-1, -1, -1, -1, 8, -1, -1, -1, -1), 1)),
            scale=2.0,
        )
        width, height = small.size
        # A 3x3 filter sees a false edge along the border: those pixels count for nothing.
        edge_values = [
            0 if x in (0, width - 1) or y in (0, height - 1) else e
            for (y, x), e in zip(
                ((i // width, i % width) for i in range(width * height)),
                edges.tobytes(),
                strict=True,
            )
        ]
        # Colour counts where it stands out from the photo's own (a tinted scene is no
        # subject everywhere).
        saturation = list(small.convert("HSV").getchannel("S").tobytes())
        usual = sum(saturation) / len(saturation)
        values = [
            e + 0.5 * max(0.0, s - usual) for e, s in zip(edge_values, saturation, strict=True)
        ]
        mean = (sum(values) / len(values)) or 1.0
        weighted = [
            v + CENTRE_BIAS * mean * _centredness(i % width, i // width, width, height)
            for i, v in enumerate(values)
        ]
        return cls(width, height, _summed(weighted, width, height))

    def total(self, left: int, top: int, right: int, bottom: int) -> float:
        t = self.table
        return t[bottom][right] - t[top][right] - t[bottom][left] + t[top][left]

    def focus(self, rel_width: float, rel_height: float) -> tuple[float, float]:
        """The centre (fractions) of the window of that relative size with the most
        saliency; ties go to the window nearest the centre."""
        cw = min(self.width, max(1, round(rel_width * self.width)))
        ch = min(self.height, max(1, round(rel_height * self.height)))
        best, best_at = -1.0, (0, 0)
        mid_x, mid_y = (self.width - cw) / 2, (self.height - ch) / 2
        for top in range(self.height - ch + 1):
            for left in range(self.width - cw + 1):
                score = self.total(left, top, left + cw, top + ch)
                near = (left - mid_x) ** 2 + (top - mid_y) ** 2
                if score > best or (score == best and near < _dist(best_at, mid_x, mid_y)):
                    best, best_at = score, (left, top)
        return (best_at[0] + cw / 2) / self.width, (best_at[1] + ch / 2) / self.height


def _dist(at: tuple[int, int], x: float, y: float) -> float:
    return (at[0] - x) ** 2 + (at[1] - y) ** 2


def _centredness(x: int, y: int, width: int, height: int) -> float:
    dx = abs((x + 0.5) / width - 0.5) * 2
    dy = abs((y + 0.5) / height - 0.5) * 2
    return max(0.0, 1.0 - max(dx, dy))


def _summed(values: list[float], width: int, height: int) -> tuple[tuple[float, ...], ...]:
    rows: list[tuple[float, ...]] = [(0.0,) * (width + 1)]
    for y in range(height):
        running, row = 0.0, [0.0]
        above = rows[-1]
        for x in range(width):
            running += values[y * width + x]
            row.append(above[x + 1] + running)
        rows.append(tuple(row))
    return tuple(rows)
