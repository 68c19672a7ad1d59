"""Build tiny TF.js graph models (``model.json`` + one weight shard) on the fly, the way the TF.js converter writes
them, and run them through posekit's importer and ONNX Runtime.  Test helper only."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from posekit.convert.onnx_emit import emit_onnx
from posekit.convert.tfjs import load_tfjs

#: Every way the TF.js converter stores a float weight.
QUANTS = ("float32", "float16", "uint8", "uint16")
SHARD = "group1-shard1of1.bin"

_TF_DTYPE = {np.dtype(np.float32): "DT_FLOAT", np.dtype(np.int32): "DT_INT32", np.dtype(np.bool_): "DT_BOOL"}


class TfType(str):
    """An attribute holding a TF dtype (``DT_FLOAT``), written as ``{"type": ...}``."""


def encode_attr(value: Any) -> dict[str, Any]:
    """A Python attribute value in TF.js's JSON encoding (ints as strings, strings base64)."""
    if isinstance(value, TfType):
        return {"type": str(value)}
    if isinstance(value, bool):
        return {"b": value}
    if isinstance(value, int):
        return {"i": str(value)}
    if isinstance(value, float):
        return {"f": value}
    if isinstance(value, str):
        return {"s": base64.b64encode(value.encode()).decode()}
    if isinstance(value, (list, tuple)):
        if not value:
            return {"list": {}}
        if all(isinstance(v, str) for v in value):
            return {"list": {"s": [base64.b64encode(v.encode()).decode() for v in value]}}
        return {"list": {"i": [str(int(v)) for v in value]}}
    raise TypeError(f"cannot encode attribute {value!r}")


def _shape(dims: Sequence[int | None]) -> dict[str, Any]:
    return {"dim": [{"size": str(-1 if d is None else d)} for d in dims]}


def quantize(array: np.ndarray, quant: str) -> tuple[bytes, dict[str, Any] | None, np.ndarray]:
    """(stored bytes, manifest ``quantization`` entry, the value TF.js decodes) for one weight.

    ``quant``: "float32" (stored plain, also for int32 / bool arrays), "float16", "uint8" / "uint16" (affine:
    value = q * scale + min, decoded in double precision and stored as the weight's dtype, as TF.js does).
    """
    if quant == "float32":  # plain, whatever the dtype
        return array.tobytes(), None, array
    if quant == "float16":
        half = array.astype(np.float16)
        return half.tobytes(), {"dtype": "float16", "original_dtype": "float32"}, half.astype(np.float32)
    levels = {"uint8": 255, "uint16": 65535}[quant]
    lo, hi = float(array.min()), float(array.max())
    scale = (hi - lo) / levels if hi > lo else 1.0
    q = np.clip(np.round((array.astype(np.float64) - lo) / scale), 0, levels).astype(quant)
    decoded = q.astype(np.float64) * scale + lo
    decoded = np.round(decoded).astype(np.int32) if array.dtype == np.int32 else decoded.astype(np.float32)
    return q.tobytes(), {"dtype": quant, "scale": scale, "min": lo, "original_dtype": str(array.dtype)}, decoded


class GraphBuilder:
    """Collects nodes and weights; ``values[name]`` is each constant as TF.js decodes it (the numpy reference's
    weights)."""

    def __init__(self) -> None:
        self.nodes: list[dict[str, Any]] = []
        self.weights: list[tuple[dict[str, Any], bytes]] = []
        self.values: dict[str, np.ndarray] = {}
        self.inputs: dict[str, dict[str, Any]] = {}

    def placeholder(self, name: str, shape: Sequence[int | None], dtype: str = "DT_FLOAT") -> str:
        self.nodes.append({"name": name, "op": "Placeholder",
                           "attr": {"shape": {"shape": _shape(shape)}, "dtype": {"type": dtype}}})
        self.inputs[f"{name}:0"] = {"name": f"{name}:0", "dtype": dtype, "tensorShape": _shape(shape)}
        return name

    def const(self, name: str, value: Any, quant: str = "float32") -> str:
        """A weight stored in the shard: float -> float32, integer -> int32; ``quant`` as in `quantize`."""
        array = np.asarray(value)
        array = array.astype(np.int32 if array.dtype.kind in "iu" else np.float32 if array.dtype.kind == "f" else bool)
        stored, quantization, decoded = quantize(array, quant)
        spec: dict[str, Any] = {"name": name, "shape": list(array.shape), "dtype": str(array.dtype)}
        if quantization:
            spec["quantization"] = quantization
        self.weights.append((spec, stored))
        self.values[name] = decoded
        dtype = _TF_DTYPE[array.dtype]
        self.nodes.append({"name": name, "op": "Const", "attr": {
            "value": {"tensor": {"dtype": dtype, "tensorShape": _shape(array.shape)}}, "dtype": {"type": dtype}}})
        return name

    def op(self, op: str, inputs: Sequence[str], name: str | None = None, **attrs: Any) -> str:
        """Add a node; ``attrs`` are Python values (see `encode_attr`); the default ``T`` is DT_FLOAT."""
        name = name or f"{op.lower()}_{len(self.nodes)}"
        attrs.setdefault("T", TfType("DT_FLOAT"))
        self.nodes.append({"name": name, "op": op, "input": list(inputs),
                           "attr": {k: encode_attr(v) for k, v in attrs.items()}})
        return name

    def write(self, folder: Path, outputs: Sequence[str] = ()) -> Path:
        """Write ``model.json`` and its shard into ``folder``; returns the model.json path."""
        folder.mkdir(parents=True, exist_ok=True)
        (folder / SHARD).write_bytes(b"".join(stored for _, stored in self.weights))
        signature = {"inputs": self.inputs, "outputs": {o: {"name": o} for o in outputs}}
        model = {
            "format": "graph-model", "generatedBy": "posekit tests", "convertedBy": "tests/tfjs_builder.py",
            "signature": signature,
            "modelTopology": {"node": self.nodes, "library": {}, "versions": {"producer": 1}},
            "weightsManifest": [{"paths": [SHARD], "weights": [spec for spec, _ in self.weights]}],
        }
        path = folder / "model.json"
        path.write_text(json.dumps(model))
        return path

    def run(self, folder: Path, outputs: Sequence[str], feeds: dict[str, np.ndarray],
            nchw_outputs: Sequence[str] = ()) -> list[np.ndarray]:
        """Write the model, convert it for ``outputs`` (tensor refs; ``nchw_outputs`` of them channel-first) and run
        it in ONNX Runtime.

        ``feeds``: placeholder name -> array.
        """
        model = emit_onnx(load_tfjs(self.write(folder, outputs)), outputs=list(outputs), nchw_outputs=nchw_outputs)
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
        return session.run(None, {f"{k}:0": v for k, v in feeds.items()})
