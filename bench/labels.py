"""`make bench-labels`: what the offline labeler costs, and how good its labels are.

On a 2 MP corpus photo (Landscape_1.jpg, 1800x1200), as the pipeline runs it: on the 1024 px
thumbnail. Prints, per detector, the import + model-load time in a fresh interpreter (median of
3 processes) and the per-image milliseconds (median of --runs, one thread), then the disk size of
what `pip install 'imgpipe[local-ml]'` adds. Then the evaluation on a labelled set of everyday
photos, before and now, and the calibration of the floors (bench/label_eval.py).
"""

from __future__ import annotations

import argparse
import io
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

from PIL import Image

from imgpipe.imaging import Limits, parse_sizes, render
from imgpipe.labels import local
from label_eval import evaluate

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
        f"local._model({key!r})\n"
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
    evaluate()
    print(f"bench wall time {time.monotonic() - wall:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
