"""One handler per TF op: ``handler(emitter, node)`` emits ONNX nodes and records the node's outputs.

Semantics follow TensorFlow (and TF.js, where every integer tensor is int32).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from onnx import TensorProto

from posekit.convert.onnx_emit import (
    INT_MAX,
    INT_MIN,
    NHWC_AXIS_IN_NCHW,
    Emitter,
    UnsupportedOp,
)
from posekit.convert.tfjs import Node

Handler = Callable[[Emitter, Node], None]
HANDLERS: dict[str, Handler] = {}

_CAST_TO = {
    "DT_FLOAT": TensorProto.FLOAT, "DT_HALF": TensorProto.FLOAT, "DT_DOUBLE": TensorProto.FLOAT,
    "DT_INT32": TensorProto.INT32, "DT_INT64": TensorProto.INT32, "DT_UINT8": TensorProto.INT32,
    "DT_INT8": TensorProto.INT32, "DT_INT16": TensorProto.INT32, "DT_BOOL": TensorProto.BOOL,
}


def handles(*ops: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        for op in ops:
            HANDLERS[op] = fn
        return fn

    return register


def _out(node: Node, index: int = 0) -> str:
    return f"{node.name}:{index}"


def _hw(values: list[int] | None, default: int = 1) -> list[int]:
    """[1, h, w, 1] (NHWC attr) -> [h, w]."""
    return [int(values[1]), int(values[2])] if values else [default, default]


def _padding(em: Emitter, node: Node, kernel: tuple[int, int] = (1, 1)) -> dict:
    padding = node.attrs.get("padding", "VALID")
    if padding == "SAME":
        dilation = _hw(node.attrs.get("dilations"))
        if dilation == [1, 1]:
            return {"auto_pad": "SAME_UPPER"}
        if _hw(node.attrs.get("strides")) != [1, 1]:
            raise UnsupportedOp(f"{node.op} {node.name}: SAME padding with both dilation and stride above 1")
        # ONNX Runtime rejects auto_pad with dilation; at stride 1 TF pads (k - 1) * d, the odd pixel at the end
        total = [(k - 1) * d for k, d in zip(kernel, dilation)]
        return {"pads": [total[0] // 2, total[1] // 2, total[0] - total[0] // 2, total[1] - total[1] // 2]}
    if padding == "VALID":
        return {"pads": [0, 0, 0, 0]}
    if padding == "EXPLICIT":
        p = node.attrs.get("explicit_paddings") or [0] * 8
        return {"pads": [p[2], p[4], p[3], p[5]]}
    raise UnsupportedOp(f"{node.op} {node.name}: padding {padding!r}")


# -- convolution family --------------------------------------------------------------------------------
def _activation(em: Emitter, node: Node, name: str, op: str, extra: list[str]) -> str:
    if op == "Relu":
        return em.op("Relu", [name])
    if op == "Relu6":
        return em.op("Clip", [name, em.add_const(np.float32(0)), em.add_const(np.float32(6))])
    if op == "Elu":
        return em.op("Elu", [name])
    if op == "Sigmoid":
        return em.op("Sigmoid", [name])
    if op == "LeakyRelu":
        return em.op("LeakyRelu", [name], alpha=float(node.attrs.get("leakyrelu_alpha", 0.2)))
    if op == "Prelu":
        alpha = em.need_const(extra[0], "PReLU alpha")
        return em.op("PRelu", [name, em.add_const(alpha.reshape(-1, 1, 1).astype(np.float32))])
    raise UnsupportedOp(f"{node.op} {node.name}: fused activation {op!r}")


@handles("Conv2D", "_FusedConv2D", "DepthwiseConv2dNative", "FusedDepthwiseConv2dNative")
def conv2d(em: Emitter, node: Node) -> None:
    if node.attrs.get("data_format", "NHWC") != "NHWC":
        raise UnsupportedOp(f"{node.op} {node.name}: data_format {node.attrs['data_format']}")
    x = em.nchw(node.inputs[0])
    kernel = em.need_const(node.inputs[1], f"{node.name} filter").astype(np.float32)
    kh, kw, cin, cout = kernel.shape
    if "Depthwise" in node.op:
        weight, group = kernel.transpose(2, 3, 0, 1).reshape(cin * cout, 1, kh, kw), cin
    else:
        weight, group = kernel.transpose(3, 2, 0, 1), 1
    fused = list(node.attrs.get("fused_ops") or [])
    extra = node.inputs[2:]
    inputs = [x, em.add_const(np.ascontiguousarray(weight), "W")]
    if fused and fused[0] == "BiasAdd":
        inputs.append(em.add_const(em.need_const(extra[0], "bias").astype(np.float32).reshape(-1), "B"))
        fused, extra = fused[1:], extra[1:]
    elif fused:
        raise UnsupportedOp(f"{node.op} {node.name}: fused ops {fused}")
    y = em.op(
        "Conv", inputs, strides=_hw(node.attrs.get("strides")), dilations=_hw(node.attrs.get("dilations")),
        group=group, kernel_shape=[kh, kw], **_padding(em, node, (kh, kw)),
    )
    for op in fused:
        y = _activation(em, node, y, op, extra)
    em.set(_out(node), y, nchw=True)


@handles("Conv2DBackpropInput")
def conv2d_transpose(em: Emitter, node: Node) -> None:
    kernel = em.need_const(node.inputs[1], f"{node.name} filter").astype(np.float32)
    kh, kw, _, _ = kernel.shape
    sh, sw = _hw(node.attrs.get("strides"))
    attrs: dict = {"strides": [sh, sw], "kernel_shape": [kh, kw]}
    if node.attrs.get("padding") == "SAME":
        # TF SAME: output = input * stride; the forward conv pads total = k - s, the smaller half first.
        th, tw = max(kh - sh, 0), max(kw - sw, 0)
        attrs["pads"] = [th // 2, tw // 2, th - th // 2, tw - tw // 2]
        attrs["output_padding"] = [max(sh - kh, 0), max(sw - kw, 0)]
    elif node.attrs.get("padding") != "VALID":
        raise UnsupportedOp(f"{node.op} {node.name}: padding {node.attrs.get('padding')}")
    weight = np.ascontiguousarray(kernel.transpose(3, 2, 0, 1))
    y = em.op("ConvTranspose", [em.nchw(node.inputs[2]), em.add_const(weight, "W")], **attrs)
    em.set(_out(node), y, nchw=True)


@handles("MaxPool", "AvgPool")
def pool(em: Emitter, node: Node) -> None:
    attrs = {"kernel_shape": _hw(node.attrs.get("ksize")), "strides": _hw(node.attrs.get("strides")),
             **_padding(em, node)}
    if node.op == "AvgPool":
        attrs["count_include_pad"] = 0
    y = em.op("MaxPool" if node.op == "MaxPool" else "AveragePool", [em.nchw(node.inputs[0])], **attrs)
    em.set(_out(node), y, nchw=True)


@handles("ResizeBilinear", "ResizeNearestNeighbor")
def resize(em: Emitter, node: Node) -> None:
    x = em.nchw(node.inputs[0])
    align, half = node.attrs.get("align_corners", False), node.attrs.get("half_pixel_centers", False)
    if node.op == "ResizeBilinear":
        mode = {"mode": "linear",
                "coordinate_transformation_mode": "align_corners" if align else "half_pixel" if half else "asymmetric"}
    elif align:
        mode = {"mode": "nearest", "coordinate_transformation_mode": "align_corners",
                "nearest_mode": "round_prefer_ceil"}
    else:
        mode = {"mode": "nearest", "nearest_mode": "floor",
                "coordinate_transformation_mode": "tf_half_pixel_for_nn" if half else "asymmetric"}
    batch_channels = em.op("Shape", [x], start=0, end=2)
    sizes = em.op("Concat", [batch_channels, em.as_int64(node.inputs[1])], axis=0)
    em.set(_out(node), em.op("Resize", [x, "", "", sizes], **mode), nchw=True)


@handles("DepthToSpace")
def depth_to_space(em: Emitter, node: Node) -> None:
    y = em.op("DepthToSpace", [em.nchw(node.inputs[0])], blocksize=int(node.attrs["block_size"]), mode="DCR")
    em.set(_out(node), y, nchw=True)


@handles("Pad", "PadV2", "MirrorPad")
def pad(em: Emitter, node: Node) -> None:
    pads = em.need_const(node.inputs[1], f"{node.name} paddings").astype(np.int64)
    v = em.value(node.inputs[0])
    if v.nchw:
        pads = pads[[0, 3, 1, 2]]
    inputs = [v.name if v.nchw else em.tf(node.inputs[0]), em.int64(np.concatenate([pads[:, 0], pads[:, 1]]))]
    attrs = {}
    if node.op == "PadV2":
        inputs.append(em.tf(node.inputs[2]))
    elif node.op == "MirrorPad":
        attrs["mode"] = "reflect" if node.attrs.get("mode", "REFLECT") == "REFLECT" else "edge"
        if attrs["mode"] == "edge":
            raise UnsupportedOp(f"MirrorPad {node.name}: SYMMETRIC mode")
    em.set(_out(node), em.op("Pad", inputs, **attrs), nchw=v.nchw)


# -- element-wise ---------------------------------------------------------------------------------------
_UNARY = {"Relu": "Relu", "Sigmoid": "Sigmoid", "Abs": "Abs", "Exp": "Exp", "Sqrt": "Sqrt", "Neg": "Neg",
          "Reciprocal": "Reciprocal", "Tanh": "Tanh", "Floor": "Floor", "Log": "Log", "Elu": "Elu",
          "Identity": "Identity", "LogicalNot": "Not", "Round": "Round", "Rsqrt": None, "Relu6": None,
          "LeakyRelu": None, "Square": None, "Softplus": "Softplus"}


@handles(*_UNARY)
def unary(em: Emitter, node: Node) -> None:
    v = em.value(node.inputs[0])
    x = v.name
    if node.op == "Relu6":
        y = em.op("Clip", [x, em.add_const(np.float32(0)), em.add_const(np.float32(6))])
    elif node.op == "LeakyRelu":
        y = em.op("LeakyRelu", [x], alpha=float(node.attrs.get("alpha", 0.2)))
    elif node.op == "Rsqrt":
        y = em.op("Reciprocal", [em.op("Sqrt", [x])])
    elif node.op == "Square":
        y = em.op("Mul", [x, x])
    else:
        y = em.op(_UNARY[node.op], [x])
    em.set(_out(node), y, nchw=v.nchw)


@handles("Cast")
def cast(em: Emitter, node: Node) -> None:
    v = em.value(node.inputs[0])
    to = _CAST_TO.get(node.attrs.get("DstT", "DT_FLOAT"))
    if to is None:
        raise UnsupportedOp(f"Cast {node.name} to {node.attrs.get('DstT')}")
    em.set(_out(node), em.cast(v.name, to), nchw=v.nchw)


_BINARY = {"Add": "Add", "AddV2": "Add", "BiasAdd": "Add", "Sub": "Sub", "Mul": "Mul", "RealDiv": "Div",
           "Div": "Div", "Maximum": "Max", "Minimum": "Min", "Pow": "Pow", "Equal": "Equal", "Less": "Less",
           "Greater": "Greater", "LessEqual": "LessOrEqual", "GreaterEqual": "GreaterOrEqual",
           "LogicalAnd": "And", "LogicalOr": "Or", "AddN": "Sum", "Select": "Where", "SelectV2": "Where",
           "NotEqual": None, "SquaredDifference": None, "FloorDiv": None, "FloorMod": None, "DivNoNan": None}


@handles(*_BINARY)
def binary(em: Emitter, node: Node) -> None:
    names, nchw = em.broadcast_inputs(node.inputs)
    if node.op == "SquaredDifference":
        d = em.op("Sub", names)
        y = em.op("Mul", [d, d])
    elif node.op == "NotEqual":
        y = em.op("Not", [em.op("Equal", names)])
    elif node.op == "FloorDiv":
        y = _floor_div(em, node, names)
    elif node.op == "FloorMod":
        y = _floor_mod(em, node, names)
    elif node.op == "DivNoNan":
        a, b = names
        zero = em.op("Equal", [b, em.op("CastLike", [em.add_const(np.float32(0)), b])])
        y = em.op("Where", [zero, em.op("CastLike", [em.add_const(np.float32(0)), a]), em.op("Div", [a, b])])
    else:
        y = em.op(_BINARY[node.op], names)
    em.set(_out(node), y, nchw=nchw)


def _is_integer(em: Emitter, node: Node) -> bool:
    return node.attrs.get("T", "DT_FLOAT") in ("DT_INT32", "DT_INT64", "DT_UINT8", "DT_INT16", "DT_INT8")


def _floor_div(em: Emitter, node: Node, names: list[str]) -> str:
    if _is_integer(em, node):  # exact in float64 for any int32
        a, b = (em.cast(n, TensorProto.DOUBLE) for n in names)
        return em.cast(em.op("Floor", [em.op("Div", [a, b])]), TensorProto.INT32)
    return em.op("Floor", [em.op("Div", names)])


def _floor_mod(em: Emitter, node: Node, names: list[str]) -> str:
    if _is_integer(em, node):
        return em.op("Mod", names, fmod=0)  # Python-style: the sign of the divisor, as TF FloorMod
    a, b = names
    return em.op("Sub", [a, em.op("Mul", [em.op("Floor", [em.op("Div", [a, b])]), b])])


# -- shapes and data movement --------------------------------------------------------------------------
@handles("ConcatV2", "Concat")
def concat(em: Emitter, node: Node) -> None:
    if node.op == "Concat":
        axis_ref, refs = node.inputs[0], node.inputs[1:]
    else:
        axis_ref, refs = node.inputs[-1], node.inputs[:-1]
    axis = int(em.need_const(axis_ref, f"{node.name} axis"))
    names, nchw = em.broadcast_inputs(refs)
    if nchw and all(em.value(r).nchw or em.const_value(r) is not None for r in refs):
        axis = NHWC_AXIS_IN_NCHW[axis % 4]
        names = [em.nchw(r) for r in refs]
    else:
        names, nchw = [em.tf(r) for r in refs], False
    em.set(_out(node), em.op("Concat", names, axis=axis), nchw=nchw)


@handles("Mean", "Sum", "Max", "Min", "Prod")
def reduce(em: Emitter, node: Node) -> None:
    axes = [int(a) for a in np.atleast_1d(em.need_const(node.inputs[1], f"{node.name} axes"))]
    keep = bool(node.attrs.get("keep_dims", False))
    onnx_op = {"Mean": "ReduceMean", "Sum": "ReduceSum", "Max": "ReduceMax", "Min": "ReduceMin",
               "Prod": "ReduceProd"}[node.op]
    v = em.value(node.inputs[0])
    spatial = sorted(a % 4 for a in axes) == [1, 2]
    if v.nchw and (keep or spatial):
        y = em.op(onnx_op, [v.name, em.int64([NHWC_AXIS_IN_NCHW[a % 4] for a in axes])], keepdims=int(keep))
        em.set(_out(node), y, nchw=keep)
        return
    y = em.op(onnx_op, [em.tf(node.inputs[0]), em.int64(axes)], keepdims=int(keep))
    em.set(_out(node), y)


@handles("Reshape")
def reshape(em: Emitter, node: Node) -> None:
    shape = em.const_value(node.inputs[1])
    allow_zero = int(shape is not None and bool(np.any(shape == 0)) and not np.any(shape == -1))
    y = em.op("Reshape", [em.tf(node.inputs[0]), em.as_int64(node.inputs[1])], allowzero=allow_zero)
    em.set(_out(node), y)


@handles("Squeeze")
def squeeze(em: Emitter, node: Node) -> None:
    dims = node.attrs.get("squeeze_dims") or []
    inputs = [em.tf(node.inputs[0])] + ([em.int64(dims)] if dims else [])
    em.set(_out(node), em.op("Squeeze", inputs))


@handles("ExpandDims")
def expand_dims(em: Emitter, node: Node) -> None:
    axis = np.atleast_1d(em.need_const(node.inputs[1], f"{node.name} axis")).astype(np.int64)
    em.set(_out(node), em.op("Unsqueeze", [em.tf(node.inputs[0]), em.int64(axis)]))


@handles("Transpose")
def transpose(em: Emitter, node: Node) -> None:
    perm = em.need_const(node.inputs[1], f"{node.name} perm")
    em.set(_out(node), em.op("Transpose", [em.tf(node.inputs[0])], perm=[int(p) for p in perm]))


@handles("Shape")
def shape(em: Emitter, node: Node) -> None:
    v = em.value(node.inputs[0])
    y = em.op("Shape", [v.name])
    if v.nchw:  # report the TF (NHWC) shape without moving data
        y = em.op("Gather", [y, em.int64([0, 2, 3, 1])], axis=0)
    em.set(_out(node), em.cast(y, TensorProto.INT32))


@handles("Size")
def size(em: Emitter, node: Node) -> None:
    em.set(_out(node), em.cast(em.op("Size", [em.value(node.inputs[0]).name]), TensorProto.INT32))


@handles("StridedSlice")
def strided_slice(em: Emitter, node: Node) -> None:
    begin = em.need_const(node.inputs[1], "StridedSlice begin").astype(np.int64)
    end = em.need_const(node.inputs[2], "StridedSlice end").astype(np.int64)
    strides = em.need_const(node.inputs[3], "StridedSlice strides").astype(np.int64)
    bits = {k: int(node.attrs.get(k, 0)) for k in
            ("begin_mask", "end_mask", "ellipsis_mask", "new_axis_mask", "shrink_axis_mask")}
    if bits["ellipsis_mask"]:
        raise UnsupportedOp(f"StridedSlice {node.name}: ellipsis_mask")
    starts, ends, axes, steps, squeeze_axes, new_axes = [], [], [], [], [], []
    in_axis = out_axis = 0
    for i in range(len(begin)):
        if bits["new_axis_mask"] >> i & 1:
            new_axes.append(out_axis)
            out_axis += 1
            continue
        b, e, s = int(begin[i]), int(end[i]), int(strides[i])
        if bits["shrink_axis_mask"] >> i & 1:
            e, s = (b + 1 if b != -1 else INT_MAX), 1
            squeeze_axes.append(in_axis)
        else:
            if bits["begin_mask"] >> i & 1:
                b = 0 if s > 0 else INT_MAX
            if bits["end_mask"] >> i & 1:
                e = INT_MAX if s > 0 else INT_MIN
            out_axis += 1
        starts.append(b)
        ends.append(e)
        axes.append(in_axis)
        steps.append(s)
        in_axis += 1
    y = em.op("Slice", [em.tf(node.inputs[0]), em.int64(starts), em.int64(ends), em.int64(axes), em.int64(steps)])
    if squeeze_axes:
        y = em.op("Squeeze", [y, em.int64(squeeze_axes)])
    if new_axes:
        y = em.op("Unsqueeze", [y, em.int64(new_axes)])
    em.set(_out(node), y)


@handles("Pack")
def pack(em: Emitter, node: Node) -> None:
    axis = em.int64([int(node.attrs.get("axis", 0))])
    parts = [em.op("Unsqueeze", [em.tf(r), axis]) for r in node.inputs]
    em.set(_out(node), em.op("Concat", parts, axis=int(node.attrs.get("axis", 0))))


@handles("Unpack")
def unpack(em: Emitter, node: Node) -> None:
    num, axis = int(node.attrs["num"]), int(node.attrs.get("axis", 0))
    parts = em.op_multi("Split", [em.tf(node.inputs[0])], num, axis=axis, num_outputs=num)
    for i, part in enumerate(parts):
        em.set(_out(node, i), em.op("Squeeze", [part, em.int64([axis])]))


@handles("Split", "SplitV")
def split(em: Emitter, node: Node) -> None:
    num = int(node.attrs.get("num_split", 1))
    if node.op == "Split":
        axis, x, sizes = int(em.need_const(node.inputs[0], "Split axis")), node.inputs[1], None
    else:
        x, axis = node.inputs[0], int(em.need_const(node.inputs[2], "SplitV axis"))
        sizes = em.need_const(node.inputs[1], "SplitV sizes").astype(np.int64)
        if np.any(sizes < 0):
            raise UnsupportedOp(f"SplitV {node.name}: inferred (-1) split sizes")
    inputs = [em.tf(x)] + ([em.int64(sizes)] if sizes is not None else [])
    attrs = {"axis": axis} if sizes is not None else {"axis": axis, "num_outputs": num}
    for i, part in enumerate(em.op_multi("Split", inputs, num, **attrs)):
        em.set(_out(node, i), part)


@handles("Tile")
def tile(em: Emitter, node: Node) -> None:
    em.set(_out(node), em.op("Tile", [em.tf(node.inputs[0]), em.as_int64(node.inputs[1])]))


@handles("Fill")
def fill(em: Emitter, node: Node) -> None:
    em.set(_out(node), em.op("Expand", [em.tf(node.inputs[1]), em.as_int64(node.inputs[0])]))


@handles("Range")
def range_(em: Emitter, node: Node) -> None:
    em.set(_out(node), em.op("Range", [em.tf(r) for r in node.inputs]))


# -- indexing ------------------------------------------------------------------------------------------
@handles("ArgMax", "ArgMin")
def argmax(em: Emitter, node: Node) -> None:
    axis = int(em.need_const(node.inputs[1], f"{node.name} dimension"))
    y = em.op(node.op, [em.tf(node.inputs[0])], axis=axis, keepdims=0)
    em.set(_out(node), em.cast(y, TensorProto.INT32))


@handles("GatherNd")
def gather_nd(em: Emitter, node: Node) -> None:
    y = em.op("GatherND", [em.tf(node.inputs[0]), em.as_int64(node.inputs[1])])
    em.set(_out(node), y)


@handles("GatherV2")
def gather(em: Emitter, node: Node) -> None:
    if int(node.attrs.get("batch_dims", 0)):
        raise UnsupportedOp(f"GatherV2 {node.name}: batch_dims")
    axis = int(em.need_const(node.inputs[2], f"{node.name} axis"))
    em.set(_out(node), em.op("Gather", [em.tf(node.inputs[0]), em.as_int64(node.inputs[1])], axis=axis))


@handles("TopKV2")
def top_k(em: Emitter, node: Node) -> None:
    k = em.op("Reshape", [em.as_int64(node.inputs[1]), em.int64([1])])
    values, indices = em.op_multi("TopK", [em.tf(node.inputs[0]), k], 2, axis=-1, largest=1,
                                  sorted=int(node.attrs.get("sorted", True)))
    em.set(_out(node, 0), values)
    em.set(_out(node, 1), em.cast(indices, TensorProto.INT32))


@handles("SparseToDense")
def sparse_to_dense(em: Emitter, node: Node) -> None:
    indices, shape, values, default = (em.need_const(r, f"SparseToDense {node.name} input") for r in node.inputs)
    dense = np.full([int(s) for s in np.atleast_1d(shape)], default, dtype=values.dtype)
    idx = np.atleast_1d(indices).astype(np.int64)
    dense[tuple(idx.T) if idx.ndim == 2 else idx] = values
    em.fold(_out(node), dense)
