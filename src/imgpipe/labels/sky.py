"""Sky from pixels: how much of a photo is open sky, for the offline labeler.

ImageNet-1k has no class for sky, so a labeler built on it says nothing about the most common
thing in outdoor photos: landscapes, streets, a kite against clouds. Blue sky is also a region
that is easy to find without a model: smooth, blue, reaching the top edge, and at least as
bright as the ground below it. ``sky_fraction`` measures the share of the frame that is such a
region; ``labels/local.py`` reports "Sky" at or above a floor that ``make bench-labels`` fits
on the fit part of its labelled set. numpy on a 160 px copy, a few milliseconds.

What it misses, by design (each rule was added to stop a wall, a backdrop or wood grain from
reading as sky): white and grey overcast skies, the orange of dusk, night skies, and blue sky
over a ground brighter than itself (a snowfield, a sunlit beach).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

WIDTH = 160  # the copy measured: sky is a large, smooth region, so detail adds nothing
MIN_SIDE = 16

Array = np.ndarray[Any, np.dtype[np.float32]]
Mask = np.ndarray[Any, np.dtype[np.bool_]]


@dataclass(frozen=True, slots=True)
class SkyRules:
    """What counts as sky. Thresholds are on 0..1 channels of the ``WIDTH`` px copy."""

    smooth: float = 0.04  # local gradient of luminance at most this
    bright: float = 0.25  # value (max channel) at least this
    blue: float = 0.04  # blue above red by at least this
    saturation: float = 0.10  # a blue that is a colour, not a grey
    top: float = 0.6  # sky is looked for in this top share of the rows
    contrast: float = 0.0  # the sky at least this much brighter than the ground below it


RULES = SkyRules()


def _small(im: Image.Image) -> Array:
    """``im`` as 0..1 RGB about ``WIDTH`` columns wide (box-filtered: block means)."""
    w, h = im.size
    if w > WIDTH:
        im = im.resize((WIDTH, max(1, round(h * WIDTH / w))), Image.Resampling.BOX)
    small: Array = np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
    return small


def _gradient(luma: Array) -> Array:
    gy = np.zeros_like(luma)
    gx = np.zeros_like(luma)
    gy[1:-1] = (luma[2:] - luma[:-2]) / 2
    gx[:, 1:-1] = (luma[:, 2:] - luma[:, :-2]) / 2
    magnitude: Array = np.hypot(gx, gy)
    return magnitude


def _from_top(candidate: Mask) -> Mask:
    """The parts of ``candidate`` connected (4-neighbour) to the top row, reached within twice
    the frame's perimeter: sky is compact, and the cap bounds the work a maze could ask for
    (each step is a pass over the frame)."""
    region = np.zeros_like(candidate)
    region[0] = candidate[0]
    h, w = candidate.shape
    for _ in range(4 * (h + w)):
        grown = region.copy()
        grown[1:] |= region[:-1]
        grown[:-1] |= region[1:]
        grown[:, 1:] |= region[:, :-1]
        grown[:, :-1] |= region[:, 1:]
        grown &= candidate
        if np.array_equal(grown, region):
            break
        region = grown
    return region


def sky_mask(im: Image.Image, rules: SkyRules = RULES) -> Mask:
    """Per pixel of the small copy: open sky (empty when the region fails the frame tests)."""
    rgb = _small(im)
    if min(rgb.shape[:2]) < MIN_SIDE:
        return np.zeros(rgb.shape[:2], dtype=np.bool_)  # too few pixels to tell sky from a dot
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    value = rgb.max(axis=2)
    saturation = (value - rgb.min(axis=2)) / np.maximum(value, 1e-6)
    luma = 0.299 * r + 0.587 * g + 0.114 * b
    blue = (
        (b >= r + rules.blue)
        & (b >= g - 0.03)
        & (value >= rules.bright)
        & (saturation >= rules.saturation)
    )
    candidate = blue & (_gradient(luma) <= rules.smooth)
    h = candidate.shape[0]
    candidate[round(h * rules.top) :] = False
    region = _from_top(candidate)
    ground = np.zeros_like(region)
    ground[h - h // 3 :] = True
    ground &= ~region
    if region.any() and ground.any() and luma[region].mean() < luma[ground].mean() + rules.contrast:
        return np.zeros_like(region)  # the sky is the bright part of a scene
    return region


def sky_fraction(im: Image.Image, rules: SkyRules = RULES) -> float:
    """The share of the frame (0..1) that is open sky."""
    return float(sky_mask(im, rules).mean())
