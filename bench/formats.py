"""`make bench` (formats): per output format, bytes per thumbnail at matched visual quality, and
the whole process (decode, resize, encode 1024/512/128 px) against sharp writing the same sizes
in the same format, one thread each, in the same run.

Matched quality: SSIM of the luminance (scikit-image's structural_similarity) of the 1024 px
thumbnail against a LANCZOS resize of the full decode. JPEG at its default quality sets the
bar; for WebP and AVIF the lowest quality reaching that SSIM is found (bisection) and its bytes
reported, beside the bytes and SSIM at imgpipe's default quality for each format. Photos: three
of the shared corpus (1800x1200 camera JPEGs) and, for the timings, a 12 MP photo made from one.
sharp runs with its own defaults but the same quality numbers.
"""

from __future__ import annotations

import argparse
import io
import statistics
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps
from skimage.metrics import structural_similarity

from bench.thumbs import CORPUS, LIMITS, make_photo, run_node, time_ms
from imgpipe.imaging import RenderOptions, ThumbSpec, parse_sizes, render
from imgpipe.imaging.engine import Quality, encode

DEFAULTS = RenderOptions()
QUALITY = Quality(DEFAULTS.jpeg_quality, DEFAULTS.webp_quality, DEFAULTS.avif_quality)
FORMATS = ("jpeg", "webp", "avif")
PHOTOS = ("Landscape_1.jpg", "Landscape_3.jpg", "Portrait_5.jpg")
SHARP_JS = r"""
const sharp = require('sharp');
const fs = require('fs');
sharp.concurrency(1);
sharp.cache(false);
const [file, runs, fmt, q] = [process.argv[2], Number(process.argv[3]), process.argv[4],
                              Number(process.argv[5])];
const input = fs.readFileSync(file);
const options = {jpeg: {quality: q, progressive: true}, webp: {quality: q}, avif: {quality: q}};
async function once() {
  const raw = (r) => ({
    raw: {width: r.info.width, height: r.info.height, channels: r.info.channels}});
  const big = await sharp(input).rotate().resize(1024, 1024, {fit: 'inside'})
    .raw().toBuffer({resolveWithObject: true});
  const sizes = [];
  sizes.push((await sharp(big.data, raw(big)).toFormat(fmt, options[fmt]).toBuffer()).length);
  const mid = await sharp(big.data, raw(big)).resize(512, 512, {fit: 'inside'})
    .raw().toBuffer({resolveWithObject: true});
  sizes.push((await sharp(mid.data, raw(mid)).toFormat(fmt, options[fmt]).toBuffer()).length);
  sizes.push((await sharp(mid.data, raw(mid)).resize(128, 128, {fit: 'inside'})
    .toFormat(fmt, options[fmt]).toBuffer()).length);
  return sizes;
}
(async () => {
  let sizes = await once();
  const ms = [];
  for (let i = 0; i < runs; i++) {
    const t = process.hrtime.bigint();
    sizes = await once();
    ms.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  ms.sort((a, b) => a - b);
  console.log(JSON.stringify({ms: ms[Math.floor(ms.length / 2)], bytes: sizes[0]}));
})();
"""


def _luma(im: Image.Image) -> np.ndarray:
    return np.asarray(im.convert("L"), dtype=np.float64)


def _ssim(candidate: bytes, reference: Image.Image) -> float:
    with Image.open(io.BytesIO(candidate)) as im:
        got = _luma(im)
    score = structural_similarity(got, _luma(reference), data_range=255.0)  # type: ignore[no-untyped-call]
    return float(score)


def _quality(fmt: str, q: int) -> Quality:
    return Quality(
        q if fmt == "jpeg" else QUALITY.jpeg,
        q if fmt == "webp" else QUALITY.webp,
        q if fmt == "avif" else QUALITY.avif,
    )


def matched(fmt: str, thumb: Image.Image, reference: Image.Image, bar: float) -> tuple[int, int]:
    """The lowest quality of ``fmt`` whose SSIM reaches ``bar``, and its bytes."""
    low, high = 1, 100
    while low < high:
        mid = (low + high) // 2
        if _ssim(encode(thumb, fmt, _quality(fmt, mid)), reference) >= bar:
            high = mid
        else:
            low = mid + 1
    return low, len(encode(thumb, fmt, _quality(fmt, low)))


def sizes_by_quality() -> None:
    rows: dict[str, list[tuple[int, float, int, int]]] = {f: [] for f in FORMATS}
    for name in PHOTOS:
        data = (CORPUS / name).read_bytes()
        with Image.open(io.BytesIO(data)) as im:
            full = ImageOps.exif_transpose(im).convert("RGB")
        large = next(
            t for t in render(data, parse_sizes("large=1024"), LIMITS).thumbnails
        )  # the engine's own resize, as JPEG: its pixels are the thumbnail to encode
        with Image.open(io.BytesIO(large.data)) as im:
            size = im.size
        reference = full.resize(size, Image.Resampling.LANCZOS)
        thumb = full.resize(size, Image.Resampling.BICUBIC)
        bar = _ssim(encode(thumb, "jpeg", QUALITY), reference)
        for fmt in FORMATS:
            default = encode(thumb, fmt, QUALITY)
            q, matched_bytes = (
                matched(fmt, thumb, reference, bar)
                if fmt != "jpeg"
                else (
                    QUALITY.jpeg,
                    len(default),
                )
            )
            rows[fmt].append((len(default), _ssim(default, reference), q, matched_bytes))
    jpeg_bytes = float(statistics.mean(r[3] for r in rows["jpeg"]))
    print("1024 px thumbnail, SSIM (luminance) vs LANCZOS from the full decode;")
    print(f"JPEG q{QUALITY.jpeg} sets the bar; mean of {len(PHOTOS)} corpus photos\n")
    print(
        f"{'format':8s}{'default q':>10s}{'bytes':>9s}{'SSIM':>8s}   {'matched q':>10s}"
        f"{'bytes':>9s}{'vs JPEG':>9s}"
    )
    for fmt in FORMATS:
        r = rows[fmt]
        default_q = getattr(QUALITY, fmt)
        mean_matched = float(statistics.mean(x[3] for x in r))
        print(
            f"{fmt:8s}{default_q:>10d}{statistics.mean(x[0] for x in r):>9.0f}"
            f"{statistics.mean(x[1] for x in r):>8.4f}   "
            f"{'/'.join(str(x[2]) for x in r):>10s}{mean_matched:>9.0f}"
            f"{mean_matched / jpeg_bytes:>8.2f}x"
        )


def sharp_ms(photo: Path, fmt: str, runs: int) -> tuple[float, int]:
    result = run_node(SHARP_JS, str(photo), str(runs), fmt, str(getattr(QUALITY, fmt)))
    return float(result["ms"]), int(result["bytes"])


def speed(runs: int) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="imgpipe-formats-"))
    photo = make_photo(12, workdir)
    data = photo.read_bytes()
    print(f"\nwhole process, 12 MP JPEG -> 1024/512/128 px, one thread, median of {runs} runs")
    print(
        f"{'format':8s}{'imgpipe ms':>11s}{'sharp ms':>10s}{'ratio':>8s}"
        f"{'imgpipe B':>11s}{'sharp B':>9s}   (bytes: the 1024 px file)"
    )
    for fmt in FORMATS:
        specs = parse_sizes(f"large=1024:fit:{fmt},medium=512:fit:{fmt},small=128:fit:{fmt}")

        def ours_once(d: bytes, s: tuple[ThumbSpec, ...] = specs) -> None:
            render(d, s, LIMITS, quality=QUALITY)

        ours = time_ms(ours_once, data, runs)
        large = next(
            t for t in render(data, specs, LIMITS, quality=QUALITY).thumbnails if t.name == "large"
        )
        theirs, their_bytes = sharp_ms(photo, fmt, runs)
        print(
            f"{fmt:8s}{ours:>11.1f}{theirs:>10.1f}{ours / theirs:>7.2f}x"
            f"{len(large.data):>11d}{their_bytes:>9d}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    sizes_by_quality()
    speed(args.runs)


if __name__ == "__main__":
    main()
