"""`make bench` (HEIC part): phone photos to the default thumbnails, against libheif's own full
decode of the same files (the floor: nothing is cheaper than decoding every pixel once, and
HEVC has no reduced-size decode) and against the same photos as JPEG.

Photos: 12 MP (4032x3024) made from the shared corpus as an iPhone writes them: 512 px HEVC
tiles in a grid, 4:2:0, an EXIF item; the portrait one stored landscape with an ``irot`` (and
EXIF orientation 6, which must not turn it again). x265 (pillow-heif, the dev extra) writes
them once into build/bench-heic/ (about 20 s each); the JPEGs are the same pixels at q90.

Prints per photo: milliseconds (median of --runs, one thread of ours; libheif decodes a grid's
tiles on its own threads) and the peak memory of a fresh process doing it once, then the
ratios; last, `imgpipe process` on the folder of HEICs against the folder of JPEGs, start-up
included, as a user runs it.
"""

from __future__ import annotations

import argparse
import io
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from PIL import Image

from bench.thumbs import CORPUS, ROOT, _high_water_kb, time_ms
from imgpipe.image_job import process_image
from imgpipe.imaging import RenderOptions
from imgpipe.labels import NullLabeler

SIZE = (4032, 3024)
WORK = ROOT / "build" / "bench-heic"
PHOTOS = {"landscape": "Landscape_1.jpg", "portrait": "Portrait_1.jpg"}
OPTIONS = RenderOptions()  # the default stage's sizes and formats
IMGPIPE = str(Path(sys.executable).with_name("imgpipe"))


def make_photos() -> list[tuple[Path, Path]]:
    """(heic, jpeg) pairs, made once."""
    import pillow_heif

    WORK.mkdir(parents=True, exist_ok=True)
    pairs = []
    for name, source in PHOTOS.items():
        heic, jpeg = WORK / f"{name}-12mp.heic", WORK / f"{name}-12mp.jpg"
        if not heic.exists() or not jpeg.exists():
            with Image.open(CORPUS / source) as im:
                base = im.convert("RGB")
            if name == "portrait":  # the sensor's landscape pixels; irot turns them upright
                base = base.transpose(Image.Transpose.ROTATE_90)
            big = base.resize(SIZE, Image.Resampling.LANCZOS)
            grain = Image.effect_noise(SIZE, 40).convert("RGB")
            big = Image.blend(big, grain, 0.04)
            exif = Image.Exif()
            exif[0x010F], exif[0x0110] = "Apple", "iPhone 15"
            if name == "portrait":  # x265's writer turns this into an irot box
                exif[0x0112] = 6
            print(f"writing {heic.name} with x265 (once)...", file=sys.stderr)
            pillow_heif.from_pillow(big).save(
                heic,
                quality=80,
                tile_size=512,
                exif=exif.tobytes(),
                enc_params={"preset": "fast"},
            )
            big.save(jpeg, "JPEG", quality=90, exif=exif.tobytes())
        pairs.append((heic, jpeg))
    return pairs


def floor(data: bytes) -> None:
    """libheif's own decode of every pixel into memory, nothing else."""
    from pi_heif.heif import open_heif

    heif = open_heif(io.BytesIO(data))
    heif[heif.primary_index].data  # noqa: B018 - the property decodes


def imgpipe(data: bytes) -> None:
    process_image(data, OPTIONS, NullLabeler())


CONTENDERS: dict[str, Callable[[bytes], None]] = {"decode floor": floor, "imgpipe": imgpipe}


def peak_mb(name: str, path: Path) -> float:
    out = subprocess.run(
        [sys.executable, "-m", "bench.heic", "--child", name, str(path)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return float(out.stdout.strip())


def child(name: str, path: Path) -> None:
    fn = CONTENDERS[name]
    small = io.BytesIO()
    Image.new("RGB", (64, 48)).save(small, "JPEG")
    imgpipe(small.getvalue())  # libraries loaded and initialised: the figure is the photo's
    if name == "decode floor":
        import pi_heif  # noqa: F401
    data = path.read_bytes()
    before = _high_water_kb()
    fn(data)
    print((_high_water_kb() - before) / 1024)


def whole(folder: Path, pattern: str, runs: int) -> float:
    files = sorted(str(p) for p in folder.glob(pattern))
    out = WORK / "out"
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(
            [IMGPIPE, "process", "--labels", "none", "--out", str(out), *files],
            check=True,
            capture_output=True,
        )
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--child", nargs=2, metavar=("CONTENDER", "FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]))
        return 0
    pairs = make_photos()
    sizes = ", ".join(s.name + "=" + str(s.size) for s in OPTIONS.sizes)
    size = f"{SIZE[0]}x{SIZE[1]}"
    print(f"\nHEIC as phones write them: {size}, 512 px grid tiles; default sizes {sizes}")
    print(f"{'':42s}{'ms':>10s}{'peak MB':>10s}")
    for heic, jpeg in pairs:
        rows = {}
        for label, fn, path in (
            ("libheif decode (floor)", floor, heic),
            ("imgpipe, HEIC", imgpipe, heic),
            ("imgpipe, same as JPEG", imgpipe, jpeg),
        ):
            ms = time_ms(fn, path.read_bytes(), args.runs)
            mb = peak_mb("decode floor" if fn is floor else "imgpipe", path)
            rows[label] = (ms, mb)
            print(f"  {heic.stem + ': ' + label:40s}{ms:10.1f}{mb:10.1f}")
        floor_ms = rows["libheif decode (floor)"][0]
        heic_ms, heic_mb = rows["imgpipe, HEIC"]
        jpeg_ms = rows["imgpipe, same as JPEG"][0]
        print(
            f"  {heic.stem}: imgpipe is {heic_ms / floor_ms:.2f}x the HEIC decode floor "
            f"(the thumbnails cost {heic_ms - floor_ms:.0f} ms over the decode); HEIC takes "
            f"{heic_ms / jpeg_ms:.1f}x the JPEG of the same pixels (JPEG decodes at 1/2 scale or "
            f"less, HEVC only whole); peak {heic_mb:.0f} MB"
        )
    heic_s = whole(WORK, "*.heic", 3)
    jpeg_s = whole(WORK, "*.jpg", 3)
    print(
        f"whole process, start-up included (median of 3): imgpipe process on the {len(pairs)} "
        f"HEICs {heic_s:.2f} s, on the same photos as JPEG {jpeg_s:.2f} s: {heic_s / jpeg_s:.2f}x"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
