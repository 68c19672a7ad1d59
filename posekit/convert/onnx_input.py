"""Give an imported ONNX graph a pixel input: RGB uint8 [1, H, W, 3], normalised inside the graph.

Estimators then hand the network the letterboxed or cropped uint8 image as it is; ONNX Runtime casts, reorders
and scales it as the model was trained (one fused pass on its threads instead of a float copy in numpy per crop).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

_ONNX_DTYPES = {"float32": TensorProto.FLOAT, "int32": TensorProto.INT32}


def with_pixel_input(model: onnx.ModelProto, scale: float | Sequence[float], offset: float | Sequence[float],
                     dtype: str = "float32", bgr: bool = False, nchw: bool = False) -> onnx.ModelProto:
    """``model`` (changed in place and returned) with its first input replaced by RGB uint8 NHWC pixels of the
    same name and spatial size; inside, they become ``pixels * scale + offset`` (scalars or per-channel, in the
    model's channel order) as ``dtype``, reversed to BGR when ``bgr``, transposed to NCHW when ``nchw``.
    ``dtype`` "int32" allows only scale 1, offset 0 (the cast alone)."""
    if dtype not in _ONNX_DTYPES:
        raise ValueError(f"pixel input can feed float32 or int32 graphs, not {dtype}")
    scale_arr = np.asarray(scale, dtype=np.float32).reshape(-1)
    offset_arr = np.asarray(offset, dtype=np.float32).reshape(-1)
    if dtype == "int32" and (np.any(scale_arr != 1) or np.any(offset_arr != 0)):
        raise ValueError("an int32 input takes the pixels as they are (scale 1, offset 0)")
    graph = model.graph
    original = graph.input[0]
    name = original.name
    dims = list(original.type.tensor_type.shape.dim)
    if nchw:
        dims = [dims[0], dims[2], dims[3], dims[1]]
    pixels = helper.make_tensor_value_info(name, TensorProto.UINT8, [d.dim_param or d.dim_value or None for d in dims])

    # the graph's own tensor gets a new name; the pixel input takes over the old one (callers feed it by name)
    inner = f"{name}/normalised"
    for node in graph.node:
        node.input[:] = [inner if i == name else i for i in node.input]
    nodes, initializers, current = [], [], name

    def step(op: str, *extra: str, **attrs) -> None:
        nonlocal current
        out = f"{name}/{op.lower()}{len(nodes)}"
        nodes.append(helper.make_node(op, [current, *extra], [out], **attrs))
        current = out

    def constant(suffix: str, value: np.ndarray) -> str:
        initializers.append(numpy_helper.from_array(value, f"{name}/{suffix}"))
        return f"{name}/{suffix}"

    step("Cast", to=_ONNX_DTYPES[dtype])
    if bgr:
        step("Gather", constant("bgr", np.array([2, 1, 0], np.int64)), axis=3)
    if np.any(scale_arr != 1):
        step("Mul", constant("scale", scale_arr))
    if np.any(offset_arr != 0):
        step("Add", constant("offset", offset_arr))
    if nchw:
        step("Transpose", perm=[0, 3, 1, 2])
    nodes[-1].output[0] = inner
    graph.input.remove(original)
    graph.input.insert(0, pixels)
    for i, node in enumerate(nodes):
        graph.node.insert(i, node)
    graph.initializer.extend(initializers)
    return model
