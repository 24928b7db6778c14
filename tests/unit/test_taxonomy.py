"""Everyday names over ImageNet classes: the data file's integrity and the scoring, on
probability vectors written by hand (no model), so each rule is visible in its test."""

from __future__ import annotations

import numpy as np
import pytest

from imgpipe.labels import Label
from imgpipe.labels.taxonomy import Floors, Taxonomy, confidence, taxonomy

DOG_BREEDS = range(151, 269)  # ImageNet-1k's dogs
TABBY, EGYPTIAN_CAT = 281, 285
ESPRESSO, GEYSER, SEASHORE = 967, 974, 978

# Fixed here, so that recalibrating the shipped floors (make bench-labels) moves no test.
FIXED = Floors(names=0.25, classes=0.90, noise=0.02)


def vector(**mass: float) -> np.ndarray:
    p = np.zeros(1000)
    for index, value in mass.items():
        p[int(index.removeprefix("c"))] = value
    return p


def names(labels: list[Label]) -> list[str]:
    return [x.name for x in labels]


def test_every_name_has_real_classes_and_known_parents() -> None:
    t = taxonomy()
    assert len(t.class_names) == 1000 and len(t.names) >= 80
    for name in t.names:
        members = t.members[name]
        assert len(members) and members.min() >= 0 and members.max() < 1000
        assert all(parent in t.names for parent in t.parents[name]), name
        assert name not in t.parents[name]
        # a parent holds every class of its children: its score is never below theirs
        for parent in t.parents[name]:
            assert set(members) <= set(t.members[parent]), (name, parent)
    assert set(t.parents["Dog"]) == {"Animal", "Mammal", "Canine", "Pet"}
    assert set(DOG_BREEDS) <= set(t.members["Dog"])
    assert ESPRESSO in t.members["Beverage"] and ESPRESSO not in t.members["Food"]


def test_mass_spread_over_many_breeds_says_dog_and_its_parents() -> None:
    p = np.zeros(1000)
    p[list(DOG_BREEDS)[:20]] = 0.045  # 90 % over twenty breeds, none above 5 %
    p[0] = 0.1
    labels = taxonomy().labels(p, FIXED)
    found = {x.name: x for x in labels}
    assert {"Dog", "Animal", "Mammal", "Canine", "Pet"} <= set(found)
    assert found["Dog"].parents == ("Animal", "Mammal", "Canine", "Pet")
    assert found["Animal"].confidence >= found["Dog"].confidence >= 75
    # no breed is sure enough to be named on its own
    assert not any(taxonomy().class_names[i] in found for i in DOG_BREEDS)


def test_a_thin_spread_over_hundreds_of_classes_is_noise_not_an_animal() -> None:
    p = np.full(1000, 0.3 / 999)
    p[ESPRESSO] = 0.7
    assert names(taxonomy().labels(p, FIXED)) == ["Beverage"]  # espresso under its floor
    p = np.full(1000, 1 / 1000)  # nothing at all: a texture, a test pattern
    assert taxonomy().labels(p, FIXED) == []


def test_a_single_class_is_named_only_when_the_model_is_sure() -> None:
    sure = {x.name: x for x in taxonomy().labels(vector(c967=0.95), FIXED)}
    assert sure["Espresso"].parents == ("Beverage",) and sure["Espresso"].confidence == 87.5
    assert "Geyser" not in names(taxonomy().labels(vector(c974=0.85), FIXED))
    # the scene it implies is still reported
    assert {"Water", "Landscape", "Nature", "Outdoors"} <= set(
        names(taxonomy().labels(vector(c974=0.85), FIXED))
    )


def test_two_classes_sharing_a_name_add_up() -> None:
    t = Taxonomy.from_document(
        {
            "labels": {"Thing": {"parents": [], "classes": [0, 1]}},
            "class_names": ["Missile", "Missile", "Other"],
        }
    )
    labels = t.labels(np.array([0.5, 0.45, 0.05]), Floors(names=0.99, classes=0.9))
    assert [(x.name, x.parents) for x in labels] == [("Missile", ("Thing",))]


@pytest.mark.parametrize(
    ("score", "floor", "expected"),
    [(0.25, 0.25, 75.0), (1.0, 0.25, 100.0), (0.0, 0.25, 0.0), (0.125, 0.25, 37.5), (0.9, 0.9, 75)],
)
def test_a_score_at_its_floor_reads_as_the_shared_default(
    score: float, floor: float, expected: float
) -> None:
    assert confidence(score, floor) == expected


def test_labels_match_by_name_or_parent_in_any_case() -> None:
    dog = Label("Dog", 90.0, parents=("Animal", "Pet"))
    assert dog.matches("dog") and dog.matches("ANIMAL") and dog.matches("pet")
    assert not dog.matches("cat") and not dog.matches("do")


def test_the_photos_of_the_old_complaint_get_broad_labels() -> None:
    # scenes the issue named, as the model's mass would fall: a harbour, a snowy slope
    harbour = taxonomy().labels(vector(c628=0.5, c510=0.2, c536=0.1), FIXED)
    assert {"Ship", "Watercraft", "Vehicle", "Water"} <= set(names(harbour))
    snow = taxonomy().labels(vector(c970=0.4, c795=0.2), FIXED)
    assert {"Snow", "Nature", "Outdoors"} <= set(names(snow))


def test_imagenet_cup_is_a_drinking_cup_not_a_beverage() -> None:
    # class 968 is WordNet's "cup" of punch; ImageNet's pictures (and a photo of cups) are cups
    found = names(taxonomy().labels(vector(c968=0.62, c504=0.21), FIXED))
    assert {"Cup", "Tableware"} <= set(found) and "Beverage" not in found
