"""Sky from pixels (labels/sky.py): what counts as open sky and what must not."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imgpipe.labels.sky import sky_fraction, sky_mask
from tests.conftest import skimage_photo

W, H = 320, 240


def _scene(top: tuple[int, int, int], ground_luma: int, horizon: float = 0.45) -> Image.Image:
    """A smooth band of colour ``top`` (darker towards the horizon) above a textured ground."""
    rng = np.random.default_rng(7)
    pixels = np.empty((H, W, 3), dtype=np.float32)
    line = round(H * horizon)
    shade = np.linspace(1.0, 0.85, line, dtype=np.float32)[:, None, None]
    pixels[:line] = np.asarray(top, dtype=np.float32) * shade
    texture = rng.normal(0, 40, size=(H - line, W, 1)).astype(np.float32)
    ground = np.asarray((ground_luma * 1.1, ground_luma, ground_luma * 0.7), dtype=np.float32)
    pixels[line:] = ground + texture
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def test_blue_sky_over_land_is_the_band_above_the_horizon() -> None:
    im = _scene((110, 160, 225), ground_luma=90)
    share = sky_fraction(im)
    assert 0.40 <= share <= 0.46, share
    mask = sky_mask(im)
    assert mask[0].all() and not mask[-1].any()


def test_a_blue_wall_over_a_brighter_table_is_no_sky() -> None:
    assert sky_fraction(_scene((110, 160, 225), ground_luma=235)) == 0.0


def test_warm_smooth_surfaces_are_no_sky() -> None:
    # wood, skin, petals and the orange of a jacket are smooth too: sky must be blue
    assert sky_fraction(_scene((200, 140, 80), ground_luma=60)) == 0.0


def test_blue_that_does_not_reach_the_top_is_no_sky() -> None:
    rng = np.random.default_rng(3)
    pixels = rng.normal(100, 40, size=(H, W, 3))
    pixels[80:160, 100:220] = (110, 160, 225)  # a blue object in the middle of the frame
    assert sky_fraction(Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))) == 0.0


def test_textured_blue_is_no_sky() -> None:
    rng = np.random.default_rng(5)
    pixels = np.asarray((60, 90, 160), dtype=np.float32) + rng.normal(0, 45, size=(H, W, 1))
    denim = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    assert sky_fraction(denim) == 0.0


@pytest.mark.parametrize("size", [(1, 1), (15, 200), (200, 3)])
def test_too_small_to_tell(size: tuple[int, int]) -> None:
    assert sky_fraction(Image.new("RGB", size, (110, 160, 225))) == 0.0


def test_real_photos(corpus: Path) -> None:
    with Image.open(corpus / "Landscape_1.jpg") as opened:
        waterfall = opened.convert("RGB")  # a waterfall under a blue-grey sky
    assert sky_fraction(waterfall) >= 0.05
    for indoors in ("coffee.png", "chelsea.png", "astronaut.png"):
        assert sky_fraction(skimage_photo(indoors)) == 0.0, indoors


def test_a_maze_of_blue_is_cut_short() -> None:
    # a corridor winding down the frame: 5 px wide, walls 3 px, gaps at alternate ends, so the
    # path from the top to row 90 is longer than twice the perimeter (the cap)
    size = 160
    pixels = np.full((size, size, 3), 30, dtype=np.uint8)
    for i, top in enumerate(range(0, size - 5, 8)):
        pixels[top : top + 5] = (110, 160, 225)
        gap = slice(size - 6, size) if i % 2 == 0 else slice(0, 6)
        pixels[top + 5 : top + 8, gap] = (110, 160, 225)
    mask = sky_mask(Image.fromarray(pixels))
    assert mask[2].all()  # the first corridor is reached
    assert not mask[90:].any()  # the far end, beyond the cap, is not
