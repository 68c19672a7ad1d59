"""Read a TensorFlow.js graph model (``model.json`` + weight shards) into a small graph representation.

Weights are dequantised to their original dtype (float16 -> float32, uint8/uint16 affine -> float32);
integer constants stay int32, as in TF.js where every integer tensor is int32.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from posekit.errors import PosekitError

_DTYPES = {
    "float32": np.float32, "int32": np.int32, "bool": np.bool_, "float16": np.float16,
    "uint8": np.uint8, "uint16": np.uint16, "int8": np.int8, "int16": np.int16,
}
_TF_DTYPES = {
    "DT_FLOAT": np.float32, "DT_INT32": np.int32, "DT_INT64": np.int32, "DT_BOOL": np.bool_,
    "DT_HALF": np.float32, "DT_UINT8": np.int32, "DT_INT8": np.int32, "DT_DOUBLE": np.float32,
}


@dataclass
class Node:
    """One graph node. ``inputs`` are tensor refs ``"node:index"`` (control inputs dropped)."""

    name: str
    op: str
    inputs: list[str]
    attrs: dict[str, Any]


@dataclass
class TfjsGraph:
    """Nodes in file order, constant values by node name, placeholders and the signature's outputs."""

    nodes: dict[str, Node]
    consts: dict[str, np.ndarray]
    placeholders: list[str]
    signature_outputs: list[str] = field(default_factory=list)
    input_shapes: dict[str, list[int | None]] = field(default_factory=dict)
    input_dtypes: dict[str, type] = field(default_factory=dict)


def tensor_ref(ref: str) -> str:
    """Normalise ``"name"`` / ``"name:1"`` to ``"name:index"``."""
    name, sep, idx = ref.rpartition(":")
    if sep and idx.isdigit():
        return f"{name}:{idx}"
    return f"{ref}:0"


def split_ref(ref: str) -> tuple[str, int]:
    name, _, idx = tensor_ref(ref).rpartition(":")
    return name, int(idx)


def _decode_attr(value: dict[str, Any]) -> Any:
    if "s" in value:
        return base64.b64decode(value["s"]).decode("utf-8", "replace")
    if "i" in value:
        return int(value["i"])
    if "f" in value:
        return float(value["f"])
    if "b" in value:
        return bool(value["b"])
    if "type" in value:
        return value["type"]
    if "shape" in value:
        shape = value["shape"]
        if shape.get("unknownRank"):
            return None
        return [None if int(d.get("size", -1)) < 0 else int(d["size"]) for d in shape.get("dim", [])]
    if "list" in value:
        lst = value["list"]
        if "s" in lst:
            return [base64.b64decode(s).decode("utf-8", "replace") for s in lst["s"]]
        if "i" in lst:
            return [int(i) for i in lst["i"]]
        if "f" in lst:
            return [float(f) for f in lst["f"]]
        if "type" in lst:
            return list(lst["type"])
        return []
    if "tensor" in value:
        return value["tensor"]
    return None


def decode_weights(manifest: list[dict[str, Any]], read_shard) -> dict[str, np.ndarray]:
    """Decode every weight of a TF.js weights manifest. ``read_shard(path) -> bytes``."""
    out: dict[str, np.ndarray] = {}
    for group in manifest:
        buffer = b"".join(read_shard(p) for p in group["paths"])
        offset = 0
        for spec in group["weights"]:
            shape = [int(s) for s in spec["shape"]]
            count = int(np.prod(shape)) if shape else 1
            quant = spec.get("quantization")
            stored = quant["dtype"] if quant else spec["dtype"]
            if stored not in _DTYPES:
                raise PosekitError(f"weight {spec['name']}: unsupported stored dtype {stored!r}")
            nbytes = count * np.dtype(_DTYPES[stored]).itemsize
            if offset + nbytes > len(buffer):
                raise PosekitError(
                    f"weight file too short for {spec['name']} (need {offset + nbytes} bytes, have {len(buffer)}): "
                    "the download is incomplete; delete the cached model and pull it again"
                )
            raw = np.frombuffer(buffer, dtype=_DTYPES[stored], count=count, offset=offset)
            offset += nbytes
            if quant and stored == "float16":
                arr = raw.astype(np.float32)
            elif quant:
                arr = raw.astype(np.float32) * np.float32(quant["scale"]) + np.float32(quant["min"])
                if spec["dtype"] == "int32":
                    arr = np.round(arr).astype(np.int32)
            else:
                arr = raw.copy()
            out[spec["name"]] = arr.astype(_DTYPES[spec["dtype"]], copy=False).reshape(shape)
    return out


def load_tfjs(model_json: str | Path) -> TfjsGraph:
    """Parse ``model.json`` and its weight shards (looked up next to it)."""
    path = Path(model_json)
    try:
        model = json.loads(path.read_text())
    except FileNotFoundError:
        raise PosekitError(f"TF.js model file not found: {path}") from None
    except json.JSONDecodeError as exc:
        raise PosekitError(f"{path} is not valid JSON ({exc}); re-download the model") from None
    topology = model.get("modelTopology")
    if model.get("format", "graph-model") != "graph-model" or not topology or "node" not in topology:
        raise PosekitError(f"{path} is not a TF.js graph model (layers models are not supported)")

    def read_shard(name: str) -> bytes:
        shard = path.parent / name
        if not shard.is_file():
            raise PosekitError(f"weight shard {shard} is missing; pull the model again")
        return shard.read_bytes()

    consts = decode_weights(model.get("weightsManifest", []), read_shard)
    nodes: dict[str, Node] = {}
    placeholders: list[str] = []
    input_shapes: dict[str, list[int | None]] = {}
    input_dtypes: dict[str, type] = {}
    for raw in topology["node"]:
        attrs = {k: _decode_attr(v) for k, v in raw.get("attr", {}).items()}
        inputs = [tensor_ref(i) for i in raw.get("input", []) if not i.startswith("^")]
        node = Node(raw["name"], raw["op"], inputs, attrs)
        nodes[node.name] = node
        if node.op == "Placeholder":
            placeholders.append(node.name)
            input_shapes[node.name] = attrs.get("shape") or []
            input_dtypes[node.name] = _TF_DTYPES.get(attrs.get("dtype", "DT_FLOAT"), np.float32)
        elif node.op == "Const" and node.name not in consts:
            consts[node.name] = _inline_const(attrs.get("value"), attrs.get("dtype"))
    signature = model.get("signature") or model.get("userDefinedMetadata", {}).get("signature") or {}
    outputs = [tensor_ref(o["name"]) for o in signature.get("outputs", {}).values()]
    for name, spec in signature.get("inputs", {}).items():
        node_name = split_ref(spec.get("name", name))[0]
        dims = spec.get("tensorShape", {}).get("dim")
        if node_name in input_shapes and dims:
            input_shapes[node_name] = [None if int(d.get("size", -1)) < 0 else int(d["size"]) for d in dims]
    return TfjsGraph(nodes, consts, placeholders, outputs, input_shapes, input_dtypes)


def _inline_const(tensor: Any, dtype: str | None) -> np.ndarray:
    """A Const whose value is inlined in the JSON instead of the weights (rare in converted models)."""
    np_dtype = _TF_DTYPES.get(dtype or "DT_FLOAT", np.float32)
    if not isinstance(tensor, dict):
        return np.zeros((0,), dtype=np_dtype)
    dims = [int(d.get("size", 0)) for d in tensor.get("tensorShape", {}).get("dim", [])]
    for key in ("floatVal", "intVal", "boolVal"):
        if key in tensor:
            values = np.array(tensor[key], dtype=np_dtype)
            return np.broadcast_to(values, dims).copy() if dims else values.reshape(())
    return np.zeros(dims, dtype=np_dtype)
