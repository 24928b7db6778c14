"""`make bench-labels`: what the offline labeler costs, and how good its labels are.

On a 2 MP corpus photo (Landscape_1.jpg, 1800x1200), as the pipeline runs it: on the 1024 px
thumbnail. Prints, per detector, the import + model-load time in a fresh interpreter (median of
3 processes) and the per-image milliseconds (median of --runs, one thread), then the disk size of
what `pip install 'imgpipe[local-ml]'` adds. Then the evaluation on a labelled set of everyday
photos, before and now, and the calibration of the floors (bench/label_eval.py).
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from importlib import metadata
from pathlib import Path

from PIL import Image

from bench.label_eval import Photo, evaluate, load_set
from imgpipe.imaging import Limits, parse_sizes, render
from imgpipe.labels import LabelRequest, LabelSettings, local
from imgpipe.labels.pool import usable_cpus

PHOTO = Path(__file__).resolve().parents[2] / "shared/corpus/exif-orientation/Landscape_1.jpg"
DETECTORS: dict[str, Callable[[Image.Image], object]] = {
    "faces (dlib HOG)": local.detect_faces,
    "text (RapidOCR)": local.detect_text,
    "moderation (Open-NSFW)": local.detect_moderation,
    "labels (EfficientNet-Lite0)": local.classify,
}
MODEL_KEYS = {
    "faces (dlib HOG)": "faces",
    "text (RapidOCR)": "text",
    "moderation (Open-NSFW)": "moderation",
    "labels (EfficientNet-Lite0)": "labels",
}


def load_ms(key: str) -> float:
    code = (
        "import time; t = time.perf_counter()\n"
        "from imgpipe.labels import local\n"
        f"with local.model({key!r}): pass\n"
        "print((time.perf_counter() - t) * 1000)\n"
    )
    samples = [
        float(
            subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True, check=True
            ).stdout
        )
        for _ in range(3)
    ]
    return statistics.median(samples)


def _requirements(dist: str, extra: str | None = None) -> set[str]:
    found: set[str] = set()
    for req in metadata.requires(dist) or []:
        name, _, marker = req.partition(";")
        if extra is None and "extra ==" in marker:
            continue
        if extra is not None and f'extra == "{extra}"' not in marker.replace("'", '"'):
            continue
        found.add(re.split(r"[<>=!~\[ (]", name.strip(), maxsplit=1)[0].lower())
    return found


def _closure(names: set[str]) -> set[str]:
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        try:
            metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        seen.add(name)
        todo.extend(_requirements(name))
    return seen


def install_mb() -> float:
    base = _closure(_requirements("imgpipe"))
    extra = _closure(_requirements("imgpipe", "local-ml")) - base
    total = 0
    for name in extra:
        dist = metadata.distribution(name)
        for file in dist.files or []:
            path = Path(str(dist.locate_file(file)))
            if path.is_file():
                total += path.stat().st_size
    return total / 1048576


def _label_all(photos: list[Photo], threads: int) -> tuple[float, list[object]]:
    labeler = local.LocalLabeler(LabelSettings(backend="local"))

    def one(photo: Photo) -> object:
        request = LabelRequest("", photo.id, len(photo.thumbnail), "JPEG", photo.thumbnail)
        return dataclasses.replace(labeler.detect(request), ms=0.0)

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        answers = list(pool.map(one, photos))
    return time.perf_counter() - started, answers


def threads_section(photos: list[Photo]) -> None:
    """dlib's detector and RapidOCR's pipeline cannot be called by two threads at once: one
    instance behind a lock, an instance per concurrent caller, or per caller up to one per CPU
    (what ships: labels/pool.py). All on the same photos, 2 and 4 threads, in this run;
    answers checked against one thread's."""
    print(
        f"\nthreads: {len(photos)} photos, all four detectors, {usable_cpus()} CPUs; "
        "a lock vs instances of dlib and RapidOCR"
    )
    local.use_pools(None)
    _, reference = _label_all(photos, 1)
    seconds_one, _ = _label_all(photos, 1)
    print(f"{'':32s}{'photos/s':>10s}{'vs 1 thread':>13s}{'instances':>11s}{'same answers':>14s}")
    print(f"{'1 thread':32s}{len(photos) / seconds_one:10.2f}{1.0:13.2f}")
    for threads in (2, 4):
        cpus = usable_cpus()
        for name, limit in (("lock", 1), ("instance per caller", None), ("per CPU", cpus)):
            local.use_pools(limit)
            _label_all(photos[:threads], threads)  # build what this policy builds, untimed
            seconds, answers = _label_all(photos, threads)
            built = max(local.pools_built().values())
            same = answers == reference
            print(
                f"{f'{threads} threads, {name}':32s}{len(photos) / seconds:10.2f}"
                f"{seconds_one / seconds:13.2f}{built:11d}{same!s:>14s}"
            )
    local.use_pools(usable_cpus())
    print(f"memory of one more caller's dlib + RapidOCR instances: {_extra_instance_mb():.0f} MB")


def _rss_mb(instances: int) -> float:
    """RSS of a fresh interpreter holding ``instances`` of dlib + RapidOCR, each run once."""
    code = (
        "import resource\n"
        "from contextlib import ExitStack\n"
        "import numpy as np\n"
        "from imgpipe.labels import local\n"
        "pixels = np.random.default_rng(1).integers(0, 255, (683, 1024, 3), np.uint8)\n"
        "with ExitStack() as held:\n"
        f"    for _ in range({instances}):\n"
        "        faces = held.enter_context(local.model('faces'))\n"
        "        ocr = held.enter_context(local.model('text'))\n"
        "        faces.run(pixels, 0, 0.0)\n"
        "        ocr(pixels)\n"
        "    pages = int(open('/proc/self/statm').read().split()[1])\n"
        "    print(pages * resource.getpagesize() / 1048576)\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(run.stdout)


def _extra_instance_mb() -> float:
    """What a second caller's own instances add, in fresh interpreters (in this one the
    allocator reuses what the replaced pools freed)."""
    return statistics.median(_rss_mb(2) - _rss_mb(1) for _ in range(3))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    wall = time.monotonic()
    local.check_installed()
    data = PHOTO.read_bytes()
    large = max(
        render(data, parse_sizes("large=1024"), Limits(10**9, 10**9)).thumbnails,
        key=lambda t: t.width,
    )
    with Image.open(io.BytesIO(large.data)) as im:
        thumb = im.convert("RGB")
    print(
        f"{PHOTO.name} ({Image.open(PHOTO).size[0]}x{Image.open(PHOTO).size[1]}), "
        f"detectors on its {thumb.width}x{thumb.height} thumbnail, one thread\n"
    )
    print(f"{'detector':30s}{'import+load ms':>16s}{'ms per image':>16s}")
    total = 0.0
    for name, fn in DETECTORS.items():
        fn(thumb)  # load and warm up
        samples = []
        for _ in range(args.runs):
            started = time.perf_counter()
            fn(thumb)
            samples.append((time.perf_counter() - started) * 1000)
        ms = statistics.median(samples)
        total += ms
        print(f"{name:30s}{load_ms(MODEL_KEYS[name]):16.0f}{ms:16.1f}")
    print(f"{'all four':30s}{'':16s}{total:16.1f}")
    print(f"\npip install 'imgpipe[local-ml]' adds {install_mb():.0f} MB on disk")
    threads_section(load_set())
    evaluate()
    print(f"bench wall time {time.monotonic() - wall:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
