"""Everyday labels from ImageNet-1k class probabilities: "Dog 95, Animal 98", not "Basenji 31".

ImageNet's 1,000 classes are fine-grained (120 dog breeds, "geyser", "agama"); a photo's
probability mass spreads over many of them and no single one is sure. ``taxonomy.json`` (built
by ``scripts/build_taxonomy.py`` from WordNet 3.0's hypernyms) groups the classes under a
hundred everyday names with their parents; a name's score is the sum of its classes'
probabilities, counting only classes the model gives at least ``noise`` — below that the
spread of ~400 animal classes alone adds up to a confident "Animal" on a photo of grass.

Two sources, each with its own floor measured on the labelled set (``make bench-labels``):
names (sums) and single classes (a fine name such as "Espresso" or "Tripod"). A score at its
source's floor is reported as confidence 75 — the shared ``MIN_CONFIDENCE`` default — and the
rest of each range is stretched linearly, so one floor means the same for every source and
backend. Pure numpy; no model here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

from ..codec import Received
from .types import Label

DATA = "taxonomy.json"
REPORTED_FLOOR = 75.0  # what a score at its source's floor is reported as


@dataclass(frozen=True, slots=True)
class Floors:
    """Per-source operating points, chosen by ``make bench-labels`` on the fit part of its
    labelled set (the held-out part reports how they do on photos they were not chosen on)."""

    names: float = 0.50  # a name's summed probability
    classes: float = 0.95  # one ImageNet class on its own
    noise: float = 0.02  # classes under this add nothing to a name
    sky: float = 0.05  # the share of the frame that is open sky (``labels/sky.py``)


def confidence(score: float, floor: float) -> float:
    """0..1 score -> 0..100 confidence with ``floor`` at REPORTED_FLOOR, order kept."""
    if score >= floor:
        reported = REPORTED_FLOOR + (100 - REPORTED_FLOOR) * (score - floor) / (1 - floor)
    else:
        reported = REPORTED_FLOOR * score / floor
    return round(min(100.0, max(0.0, reported)), 2)


@dataclass(frozen=True, slots=True)
class Taxonomy:
    names: tuple[str, ...]
    parents: dict[str, tuple[str, ...]]
    members: dict[str, np.ndarray[Any, np.dtype[np.intp]]]
    class_names: tuple[str, ...]
    class_parents: tuple[tuple[str, ...], ...]  # per class: the names it belongs to

    @classmethod
    def from_document(cls, doc: Received) -> Taxonomy:
        import numpy  # a local-ml dependency: this module imports without it

        entries: Received = doc["labels"]
        class_names = tuple(str(n) for n in doc["class_names"])
        belongs: list[list[str]] = [[] for _ in class_names]
        for name, entry in entries.items():
            for index in entry["classes"]:
                belongs[index].append(name)
        return cls(
            names=tuple(entries),
            parents={n: tuple(e["parents"]) for n, e in entries.items()},
            members={n: numpy.asarray(e["classes"], dtype=numpy.intp) for n, e in entries.items()},
            class_names=class_names,
            class_parents=tuple(tuple(b) for b in belongs),
        )

    def labels(self, probabilities: np.ndarray[Any, Any], floors: Floors) -> list[Label]:
        """Names and single classes at or above their floors, most confident first."""
        import numpy

        kept = numpy.where(probabilities >= floors.noise, probabilities, 0.0)
        found: dict[str, Label] = {}
        for name in self.names:
            score = float(kept[self.members[name]].sum())
            if score >= floors.names:
                found[name] = Label(
                    name, confidence(score, floors.names), parents=self.parents[name]
                )
        by_name: dict[str, list[int]] = {}  # two classes may share a name ("Missile")
        for index in numpy.flatnonzero(kept):
            by_name.setdefault(self.class_names[int(index)], []).append(int(index))
        for name, indices in by_name.items():
            score = float(kept[indices].sum())
            if score >= floors.classes and name not in found:
                parents = dict.fromkeys(p for i in indices for p in self.class_parents[i])
                found[name] = Label(name, confidence(score, floors.classes), parents=tuple(parents))
        return sorted(found.values(), key=lambda label: (-label.confidence, label.name))


@cache
def taxonomy() -> Taxonomy:
    doc = json.loads((files(__package__) / DATA).read_text(encoding="utf-8"))
    return Taxonomy.from_document(doc)
