"""`make bench`: the thumbnail engine against naive Pillow, Pillow's thumbnail(), the decode floor
and sharp (libvips), on the same photos in the same run, one thread each.

Photos: a 12 MP and a 24 MP JPEG made from the shared corpus (Landscape_6.jpg, EXIF orientation 6,
so every contender must rotate): LANCZOS-upscaled with mild grain added so the JPEG carries
detail like a camera file, saved at quality 90 with the original EXIF. Each contender makes
1024/512/128 px JPEGs at quality 85 from the file's bytes.

Prints per-image milliseconds (median of --runs) and peak memory (the rise of max RSS in a fresh
process running the contender once), then the ratios and the PSNR of imgpipe's 1024 px
thumbnail against a LANCZOS reference made from the full decode.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image, ImageChops, ImageOps, ImageStat

from imgpipe.imaging import Limits, fit, parse_sizes, render

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus" / "exif-orientation"
SIZES = (1024, 512, 128)
SPECS = parse_sizes("large=1024,medium=512,small=128")
LIMITS = Limits(max_bytes=200 * 1024 * 1024, max_pixels=200_000_000)
QUALITY = 85
SHARP_JS = r"""
const sharp = require('sharp');
const fs = require('fs');
sharp.concurrency(1);
sharp.cache(false);
const [file, runs, out] = [process.argv[2], Number(process.argv[3]), process.argv[4]];
const input = fs.readFileSync(file);
async function once() {
  const big = await sharp(input).rotate().resize(1024, 1024, {fit: 'inside'})
    .raw().toBuffer({resolveWithObject: true});
  const raw = (r) => ({
    raw: {width: r.info.width, height: r.info.height, channels: r.info.channels}});
  const jpeg = {quality: 85, progressive: true};  // as imgpipe writes them
  const large = await sharp(big.data, raw(big)).jpeg(jpeg).toBuffer();
  if (out) fs.writeFileSync(out, large);
  const mid = await sharp(big.data, raw(big)).resize(512, 512, {fit: 'inside'})
    .raw().toBuffer({resolveWithObject: true});
  await sharp(mid.data, raw(mid)).jpeg(jpeg).toBuffer();
  await sharp(mid.data, raw(mid)).resize(128, 128, {fit: 'inside'}).jpeg(jpeg).toBuffer();
}
(async () => {
  // VmHWM, not maxRSS: getrusage's maximum is inherited from the parent across fork/exec.
  const hwm = () => Number(/VmHWM:\s+(\d+)/.exec(fs.readFileSync('/proc/self/status', 'utf8'))[1]);
  const before = hwm();
  await once();  // warm-up, and the memory figure of a single run
  const rss = (hwm() - before) / 1024;
  const times = [];
  for (let i = 0; i < runs; i++) {
    const t = process.hrtime.bigint();
    await once();
    times.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  times.sort((a, b) => a - b);
  console.log(JSON.stringify({ms: times[Math.floor(times.length / 2)], rss_mb: rss}));
})();
"""


def _jpeg(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=QUALITY, progressive=True, optimize=True)  # as imgpipe writes
    return buf.getvalue()


def naive(data: bytes) -> None:
    """What most code does: full decode, orient, LANCZOS from the full image for each size."""
    with Image.open(io.BytesIO(data)) as im:
        full = ImageOps.exif_transpose(im).convert("RGB")
    for size in SIZES:
        _jpeg(full.resize(fit(full.width, full.height, size), Image.Resampling.LANCZOS))


def pillow_thumbnail(data: bytes) -> None:
    """Pillow's own thumbnail(): draft + reducing_gap + BICUBIC, per size."""
    with Image.open(io.BytesIO(data)) as im:
        im.thumbnail((1024, 1024))
        current = ImageOps.exif_transpose(im)
    for size in SIZES:
        current.thumbnail((size, size))
        _jpeg(current)


def floor(data: bytes) -> None:
    """The decode floor: draft to the smallest scale covering 1024 px, reduce(), one encode."""
    with Image.open(io.BytesIO(data)) as im:
        im.draft("RGB", fit(im.width, im.height, 1024))
        im.load()
        factor = max(1, max(im.size) // 1024)
        _jpeg(im.reduce(factor) if factor > 1 else im)


def imgpipe(data: bytes) -> None:
    render(data, SPECS, LIMITS, jpeg_quality=QUALITY)


CONTENDERS: dict[str, Callable[[bytes], None]] = {
    "naive Pillow": naive,
    "Pillow thumbnail()": pillow_thumbnail,
    "decode floor": floor,
    "imgpipe": imgpipe,
}


def make_photo(megapixels: int, out: Path, source: Path = CORPUS / "Landscape_6.jpg") -> Path:
    with Image.open(source) as im:
        exif = im.info.get("exif", b"")
        base = im.convert("RGB")
    scale = math.sqrt(megapixels * 1e6 / (base.width * base.height))
    size = (round(base.width * scale), round(base.height * scale))
    big = base.resize(size, Image.Resampling.LANCZOS)
    grain = Image.effect_noise(size, 40).convert("RGB")
    big = Image.blend(big, grain, 0.04)
    path = out / f"{source.stem}-{megapixels}mp.jpg"
    big.save(path, "JPEG", quality=90, exif=exif)
    return path


def time_ms(fn: Callable[[bytes], None], data: bytes, runs: int) -> float:
    fn(data)  # warm-up: imports, caches
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        fn(data)
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def peak_mb(name: str, path: Path) -> float:
    """Run one contender once in a fresh interpreter; the rise of its max RSS."""
    out = subprocess.run(
        [sys.executable, __file__, "--child", name, str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    return float(out.stdout.strip())


def child(name: str, path: Path) -> None:
    data = path.read_bytes()
    fn = CONTENDERS[name]
    # Import and initialise everything the contender touches on a tiny image first, so the
    # figure is the image's cost, not the libraries'.
    tiny = io.BytesIO()
    Image.new("RGB", (64, 48)).save(tiny, "JPEG")
    fn(tiny.getvalue())
    before = _high_water_kb()
    fn(data)
    print((_high_water_kb() - before) / 1024)


def _high_water_kb() -> int:
    """Peak RSS of this process. Not getrusage's ru_maxrss: a child inherits its parent's."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status (Linux only)")


def sharp(path: Path, runs: int, large_out: Path) -> tuple[float, float]:
    """sharp in its own node process (resolved from the project's node_modules)."""
    result = run_node(SHARP_JS, str(path), str(runs), str(large_out))
    return float(result["ms"]), float(result["rss_mb"])


def run_node(script: str, *args: str) -> dict[str, Any]:
    """Run ``script`` with node in the project (so it resolves node_modules' sharp); the one
    JSON document it prints."""
    with tempfile.NamedTemporaryFile("w", suffix=".js", dir=ROOT, delete=False) as js:
        js.write(script)
    try:
        out = subprocess.run(
            ["node", js.name, *args], capture_output=True, text=True, check=True, cwd=ROOT
        )
    finally:
        Path(js.name).unlink()
    result: dict[str, Any] = json.loads(out.stdout)
    return result


# As a sharp user writes a folder job: libvips' default concurrency, one pipeline per CPU at
# once (imgpipe process runs one file per CPU too), results written as each finishes.
SHARP_DIR_JS = r"""
const sharp = require('sharp');
const fs = require('fs');
const os = require('os');
const path = require('path');
const [dir, out] = [process.argv[2], process.argv[3]];
async function one(name) {
  const input = fs.readFileSync(path.join(dir, name));
  const big = await sharp(input).rotate().resize(1024, 1024, {fit: 'inside'})
    .raw().toBuffer({resolveWithObject: true});
  const raw = (r) => ({
    raw: {width: r.info.width, height: r.info.height, channels: r.info.channels}});
  const target = path.join(out, name);
  fs.mkdirSync(target, {recursive: true});
  const jpeg = {quality: 85, progressive: true};  // as imgpipe writes them
  await sharp(big.data, raw(big)).jpeg(jpeg).toFile(path.join(target, 'large.jpg'));
  const mid = await sharp(big.data, raw(big)).resize(512, 512, {fit: 'inside'})
    .raw().toBuffer({resolveWithObject: true});
  await sharp(mid.data, raw(mid)).jpeg(jpeg).toFile(path.join(target, 'medium.jpg'));
  await sharp(mid.data, raw(mid)).resize(128, 128, {fit: 'inside'}).jpeg(jpeg)
    .toFile(path.join(target, 'small.jpg'));
}
(async () => {
  const names = fs.readdirSync(dir).filter((n) => /\.jpe?g$/i.test(n)).sort();
  const worker = async () => { while (names.length) await one(names.shift()); };
  await Promise.all(Array.from({length: os.cpus().length}, worker));
})();
"""


def whole_process(folder: Path, runs: int) -> tuple[float, float]:
    """Seconds for all of ``folder``'s photos as a user runs each tool: one process, start-up
    included, every CPU in use, median of ``runs``. imgpipe: ``imgpipe process DIR``; sharp: one
    node process (SHARP_DIR_JS)."""
    imgpipe_cli = str(Path(sys.executable).with_name("imgpipe"))
    with tempfile.NamedTemporaryFile("w", suffix=".js", dir=ROOT, delete=False) as js:
        js.write(SHARP_DIR_JS)
    commands: dict[str, Callable[[str], list[str]]] = {
        "imgpipe": lambda out: [
            imgpipe_cli,
            "process",
            str(folder),
            "--labels",
            "none",
            "--quality",
            str(QUALITY),
            "--out",
            out,
        ],
        "sharp": lambda out: ["node", js.name, str(folder), out],
    }
    times: dict[str, list[float]] = {name: [] for name in commands}
    try:
        for _ in range(runs):
            for name, command in commands.items():
                with tempfile.TemporaryDirectory() as out:
                    started = time.perf_counter()
                    subprocess.run(command(out), check=True, cwd=ROOT, capture_output=True)
                    times[name].append(time.perf_counter() - started)
    finally:
        Path(js.name).unlink()
    return statistics.median(times["imgpipe"]), statistics.median(times["sharp"])


def large_of(name: str, data: bytes) -> Image.Image:
    """The 1024 px JPEG a Python contender makes, decoded."""
    if name == "imgpipe":
        thumbs = render(data, SPECS, LIMITS, jpeg_quality=QUALITY).thumbnails
        encoded = next(t for t in thumbs if t.name == "large").data
    elif name == "Pillow thumbnail()":
        with Image.open(io.BytesIO(data)) as im:
            im.thumbnail((1024, 1024))
            encoded = _jpeg(ImageOps.exif_transpose(im))
    else:  # naive: LANCZOS from the full decode, so only the JPEG encoding differs
        with Image.open(io.BytesIO(data)) as im:
            full = ImageOps.exif_transpose(im).convert("RGB")
        encoded = _jpeg(full.resize(fit(full.width, full.height, 1024), Image.Resampling.LANCZOS))
    with Image.open(io.BytesIO(encoded)) as out:
        return out.convert("RGB")


def psnr(candidate: Image.Image, data: bytes) -> float:
    """PSNR against LANCZOS from the full decode (unencoded) at the candidate's size."""
    with Image.open(io.BytesIO(data)) as im:
        full = ImageOps.exif_transpose(im).convert("RGB")
    reference = full.resize(candidate.size, Image.Resampling.LANCZOS)
    rms = ImageStat.Stat(ImageChops.difference(candidate, reference)).rms
    mse = sum(r * r for r in rms) / len(rms)
    return 10 * math.log10(255**2 / mse) if mse else float("inf")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]))
        return 0
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="imgpipe-bench-"))
    photos = [make_photo(mp, workdir) for mp in (12, 24)]
    results: dict[str, dict[str, tuple[float, float, float]]] = {}
    for photo in photos:
        data = photo.read_bytes()
        with Image.open(photo) as im:
            label = f"{im.width}x{im.height} ({len(data) / 1048576:.1f} MB)"
        row: dict[str, tuple[float, float, float]] = {}
        for name, fn in CONTENDERS.items():
            quality = psnr(large_of(name, data), data) if name != "decode floor" else math.nan
            row[name] = (time_ms(fn, data, args.runs), peak_mb(name, photo), quality)
        sharp_large = workdir / f"sharp-{photo.stem}.jpg"
        ms, mb = sharp(photo, args.runs, sharp_large)
        with Image.open(sharp_large) as im:
            row["sharp"] = (ms, mb, psnr(im.convert("RGB"), data))
        results[label] = row
    names = [*CONTENDERS, "sharp"]
    print(f"thumbnails 1024/512/128 px, JPEG q{QUALITY}, one thread, median of {args.runs} runs")
    print(f"photos made from {CORPUS.name}/Landscape_6.jpg (upscaled + grain, EXIF orientation 6)")
    print("PSNR: the 1024 px JPEG against LANCZOS from the full decode; naive's is the ceiling")
    print("(its resample is the reference's own, so only the JPEG encoding costs it)\n")
    print(f"{'':20s}" + "".join(f"{label:>36s}" for label in results))
    print(f"{'':20s}" + "".join(f"{'ms':>12s}{'peak MB':>12s}{'PSNR dB':>12s}" for _ in results))
    for name in names:
        cells = "".join(
            f"{results[k][name][0]:12.1f}{results[k][name][1]:12.1f}{results[k][name][2]:12.1f}"
            for k in results
        )
        print(f"{name:20s}{cells}")
    print()
    for label, row in results.items():
        ours = row["imgpipe"]
        print(
            f"{label}: imgpipe is {row['naive Pillow'][0] / ours[0]:.1f}x faster than naive "
            f"(target >= 7), {row['sharp'][0] / ours[0]:.2f}x faster than sharp (>= 1.25), "
            f"{ours[0] / row['decode floor'][0]:.2f}x the decode floor (<= 1.5); "
            f"memory {ours[1] / row['naive Pillow'][1]:.2f} of naive (<= 0.2)"
        )
    print(
        "\nwhole processes, start-up included, as a user runs them: one file per CPU at once"
        " (median of 3):"
    )
    synthetic = workdir / "synthetic"
    synthetic.mkdir()
    for photo in photos:
        shutil.copy(photo, synthetic / photo.name)
    for what, folder in (
        (f"{len(list(CORPUS.glob('*.jpg')))} real photos ({CORPUS.name})", CORPUS),
        ("the 12 and 24 MP photos above", synthetic),
    ):
        imgpipe_s, sharp_s = whole_process(folder, 3)
        print(
            f"  {what}: imgpipe process {imgpipe_s:.2f} s, sharp {sharp_s:.2f} s: "
            f"{sharp_s / imgpipe_s:.2f}x (target >= 1.25)"
        )
    print(f"\nbench wall time {time.monotonic() - started:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
