"""Emit a trainable torch module from a parsed TF.js graph (the same graph IR `posekit.convert.onnx_emit` reads).

Convolution kernels and biases become ``nn.Parameter``s holding the pretrained weights (batch norm is already
folded into them by the TF.js converter); other constants become buffers.  The layout policy follows the ONNX
emitter: TF.js tensors are NHWC; convolutions and resizes produce channel-first (NCHW) values, element-wise ops keep
a channel-first value channel-first (constants are rearranged to broadcast against it), and every other op sees
the TF layout.  ``ResizeBilinear`` with a constant size keeps its scale factor, so the module runs at any input
size, not only the size the graph was exported for.

`zoo_backbone` turns a zoo network cut at an intermediate tensor (e.g. PoseNet's last MobileNetV1 block, or
MoveNet's MobileNetV2 + FPN features) into a backbone for `posekit.train`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from posekit.convert.onnx_emit import NHWC_AXIS_IN_NCHW, Emitter, UnsupportedOp, const_to_nchw, needed_nodes
from posekit.convert.tfjs import Node, TfjsGraph, split_ref, tensor_ref
from posekit.errors import PosekitError

_CONV = ("Conv2D", "_FusedConv2D", "DepthwiseConv2dNative", "FusedDepthwiseConv2dNative")
_UNARY = {"Relu": torch.relu, "Relu6": lambda x: F.hardtanh(x, 0.0, 6.0), "Sigmoid": torch.sigmoid,
          "Tanh": torch.tanh, "Elu": F.elu, "Identity": lambda x: x}
_BINARY = {"Add": torch.add, "AddV2": torch.add, "BiasAdd": torch.add, "Sub": torch.sub, "Mul": torch.mul,
           "RealDiv": torch.div, "Maximum": torch.maximum, "Minimum": torch.minimum}
_SHAPE_OPS = ("Cast", "Unpack", "ExpandDims", "Squeeze", "ConcatV2")


class Value:
    """A tensor during the forward pass and whether it is held channel-first."""

    __slots__ = ("t", "nchw")

    def __init__(self, t: torch.Tensor, nchw: bool = False) -> None:
        self.t, self.nchw = t, nchw

    def tf(self) -> torch.Tensor:
        return self.t.permute(0, 2, 3, 1) if self.nchw else self.t

    def channels_first(self) -> torch.Tensor:
        return self.t if self.nchw else self.t.permute(0, 3, 1, 2)


def _key(name: str) -> str:
    """A parameter / buffer name from a TF node name."""
    return re.sub(r"\W", "_", name)


def _hw(values: list[int] | None) -> tuple[int, int]:
    return (int(values[1]), int(values[2])) if values else (1, 1)


def same_padding(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """TF's SAME padding (before, after) of one spatial axis: the odd pixel goes after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


class TorchGraph(nn.Module):
    """The part of ``graph`` between tensor ``start`` (default: its single placeholder) and ``outputs`` (TF.js
    tensor refs) as an ``nn.Module``.

    forward(x) takes the start tensor in TF layout (N, H, W, C), or channel-first (N, C, H, W) with ``nchw=True``,
    and returns {output ref: tensor} in TF layout, or channel-first for 4-D outputs with ``nchw_outputs=True``.
    Values are those the graph computes.  ``trace_shape``: the start tensor's shape the graph was made for (NHWC,
    default the placeholder's), needed when it has resizes.
    """

    def __init__(self, graph: TfjsGraph, outputs: Sequence[str], start: str | None = None,
                 trace_shape: Sequence[int] | None = None) -> None:
        super().__init__()
        self.outputs = [tensor_ref(o) for o in outputs]
        order = needed_nodes(graph, self.outputs)
        if start is None:
            placeholders = [n for n in order if graph.nodes[n].op == "Placeholder"]
            if len(placeholders) != 1:
                raise UnsupportedOp(f"the torch emitter needs exactly one graph input, found {len(placeholders)}")
            start = placeholders[0]
        self.input = tensor_ref(start)
        upstream = set(needed_nodes(graph, [self.input]))
        consts = Emitter(graph)  # read-only use: constant lookup through Identity chains
        self.nodes: list[Node] = [graph.nodes[n] for n in order
                                  if n not in upstream and graph.nodes[n].op not in ("Const", "Placeholder")
                                  and consts.const_value(f"{n}:0") is None]  # Identity of a constant
        produced = {self.input} | {f"{n.name}:{i}" for n in self.nodes for i in range(int(n.attrs.get("num", 1)))}
        self.weights = nn.ParameterDict()
        self._consts: dict[str, str] = {}  # tensor ref -> buffer name
        self._ints: dict[str, np.ndarray] = {}  # integer attributes given as constant tensors
        for node in self.nodes:
            missing = [r for r in node.inputs if tensor_ref(r) not in produced and consts.const_value(r) is None]
            if missing:
                raise UnsupportedOp(f"node {node.name} needs {missing[0]}, which is computed before {self.input}")
            if node.op in _CONV:
                self._add_conv(consts, node)
            elif node.op in _UNARY or node.op in _SHAPE_OPS or node.op in ("ResizeBilinear", "ResizeNearestNeighbor"):
                args = node.inputs[-1:] if node.op == "ConcatV2" else node.inputs[1:]
                for ref in args:
                    self._ints[tensor_ref(ref)] = consts.need_const(ref, f"{node.op} {node.name} argument")
            elif node.op in _BINARY:
                for ref in node.inputs:
                    value = consts.const_value(ref)
                    if value is not None:
                        self._add_buffer(ref, value)
            else:
                raise UnsupportedOp(f"TF op {node.op!r} (node {node.name}) is not supported by the torch emitter")
        self._resize_scale: dict[str, tuple[float, float]] = {}
        self._tracing = False
        shape = list(trace_shape or graph.input_shapes.get(split_ref(self.input)[0]) or [])
        if any(n.op.startswith("Resize") for n in self.nodes):
            if len(shape) != 4 or not all(shape):
                raise UnsupportedOp("resizes with constant sizes need the graph's input shape to learn their scale")
            self._tracing = True  # one pass at the exported size records each resize's scale
            with torch.no_grad():
                self(torch.zeros(shape))
            self._tracing = False

    def _add_buffer(self, ref: str, value: np.ndarray) -> None:
        """A constant operand of an element-wise op, also stored rearranged to broadcast against NCHW values."""
        ref = tensor_ref(ref)
        if ref in self._consts:
            return
        name = _key(f"c_{ref}")
        # graph constants are rebuilt with the graph: not part of the state dict
        self.register_buffer(name, torch.from_numpy(np.array(value)), persistent=False)
        if 1 < value.ndim <= 4:
            self.register_buffer(name + "_nchw", torch.from_numpy(np.array(const_to_nchw(value))), persistent=False)
        self._consts[ref] = name

    def _add_conv(self, consts: Emitter, node: Node) -> None:
        if node.attrs.get("data_format", "NHWC") != "NHWC":
            raise UnsupportedOp(f"{node.op} {node.name}: data_format {node.attrs['data_format']}")
        kernel = consts.need_const(node.inputs[1], f"{node.name} filter").astype(np.float32)
        kh, kw, cin, cout = kernel.shape
        if "Depthwise" in node.op:
            weight = kernel.transpose(2, 3, 0, 1).reshape(cin * cout, 1, kh, kw)
        else:
            weight = kernel.transpose(3, 2, 0, 1)
        self.weights[_key(node.name) + "_w"] = nn.Parameter(torch.from_numpy(np.ascontiguousarray(weight)))
        fused = list(node.attrs.get("fused_ops") or [])
        if fused[:1] == ["BiasAdd"]:
            bias = consts.need_const(node.inputs[2], f"{node.name} bias").astype(np.float32).reshape(-1)
            self.weights[_key(node.name) + "_b"] = nn.Parameter(torch.from_numpy(bias.copy()))
            fused = fused[1:]
        if len(fused) > 1 or (fused and fused[0] not in _UNARY):
            raise UnsupportedOp(f"{node.op} {node.name}: fused ops {node.attrs.get('fused_ops')}")
        if node.attrs.get("padding", "VALID") not in ("SAME", "VALID"):
            raise UnsupportedOp(f"{node.op} {node.name}: padding {node.attrs.get('padding')}")

    def _const(self, ref: str, nchw: bool) -> torch.Tensor:
        name = self._consts[tensor_ref(ref)]
        t = getattr(self, name)
        if nchw and t.ndim > 1:
            if t.ndim > 4:
                raise UnsupportedOp(f"constant {ref} ({t.ndim}-D) cannot broadcast against a channel-first value")
            return getattr(self, name + "_nchw")
        return t

    def _conv(self, node: Node, x: Value) -> Value:
        t = x.channels_first()
        weight = self.weights[_key(node.name) + "_w"]
        bias = self.weights.get(_key(node.name) + "_b")
        stride, dilation = _hw(node.attrs.get("strides")), _hw(node.attrs.get("dilations"))
        kh, kw = weight.shape[2:]
        if node.attrs.get("padding") == "SAME":
            ph = same_padding(t.shape[2], kh, stride[0], dilation[0])
            pw = same_padding(t.shape[3], kw, stride[1], dilation[1])
            if ph[0] == ph[1] and pw[0] == pw[1]:
                padding: tuple[int, int] = (ph[0], pw[0])
            else:
                t, padding = F.pad(t, (pw[0], pw[1], ph[0], ph[1])), (0, 0)
        else:
            padding = (0, 0)
        groups = t.shape[1] if "Depthwise" in node.op else 1
        y = F.conv2d(t, weight, bias, stride, padding, dilation, groups)
        for op in list(node.attrs.get("fused_ops") or [])[1:]:
            y = _UNARY[op](y)
        return Value(y, nchw=True)

    def _resize(self, node: Node, x: Value) -> Value:
        t = x.channels_first()
        size = [int(s) for s in self._ints[tensor_ref(node.inputs[1])]]
        if self._tracing:
            self._resize_scale[node.name] = (size[0] / t.shape[2], size[1] / t.shape[3])
        scale = self._resize_scale[node.name]  # a scale, not a size: the module runs at any input size
        if node.op == "ResizeBilinear":
            if node.attrs.get("align_corners", False):
                y = F.interpolate(t, scale_factor=scale, mode="bilinear", align_corners=True)
            elif node.attrs.get("half_pixel_centers", False):
                y = F.interpolate(t, scale_factor=scale, mode="bilinear", align_corners=False)
            else:
                raise UnsupportedOp(f"ResizeBilinear {node.name}: legacy (asymmetric) coordinates")
        else:
            if node.attrs.get("align_corners", False) or node.attrs.get("half_pixel_centers", False):
                raise UnsupportedOp(f"ResizeNearestNeighbor {node.name}: align_corners / half_pixel_centers")
            y = F.interpolate(t, scale_factor=scale, mode="nearest")
        return Value(y, nchw=True)

    def _binary(self, node: Node, values: dict[str, Value]) -> Value:
        refs = [tensor_ref(r) for r in node.inputs]
        nchw = any(values[r].nchw for r in refs if r in values)
        args = []
        for r in refs:
            if r in values:
                args.append(values[r].channels_first() if nchw else values[r].tf())
            else:
                args.append(self._const(r, nchw))
        return Value(_BINARY[node.op](*args), nchw)

    def _shape_op(self, node: Node, values: dict[str, Value]) -> None:
        out = f"{node.name}:0"
        if node.op == "Cast":
            if node.attrs.get("DstT", "DT_FLOAT") != "DT_FLOAT":
                raise UnsupportedOp(f"Cast {node.name} to {node.attrs.get('DstT')}")
            x = values[tensor_ref(node.inputs[0])]
            values[out] = Value(x.t.float(), x.nchw)
            return
        if node.op == "ConcatV2":
            refs = [tensor_ref(r) for r in node.inputs[:-1]]
            axis = int(self._ints[tensor_ref(node.inputs[-1])])
            if all(values[r].nchw for r in refs):
                values[out] = Value(torch.cat([values[r].t for r in refs], NHWC_AXIS_IN_NCHW[axis % 4]), True)
            else:
                values[out] = Value(torch.cat([values[r].tf() for r in refs], axis))
            return
        x = values[tensor_ref(node.inputs[0])].tf()
        if node.op == "Unpack":
            for i, part in enumerate(torch.unbind(x, int(node.attrs.get("axis", 0)))):
                values[f"{node.name}:{i}"] = Value(part)
        elif node.op == "ExpandDims":
            values[out] = Value(x.unsqueeze(int(self._ints[tensor_ref(node.inputs[1])])))
        else:  # Squeeze
            dims = node.attrs.get("squeeze_dims") or [i for i, d in enumerate(x.shape) if d == 1]
            values[out] = Value(x.squeeze(tuple(dims)))

    def forward(self, x: torch.Tensor, nchw: bool = False, nchw_outputs: bool = False) -> dict[str, torch.Tensor]:
        values: dict[str, Value] = {self.input: Value(x, nchw)}
        for node in self.nodes:
            out = f"{node.name}:0"
            if node.op in _CONV:
                values[out] = self._conv(node, values[tensor_ref(node.inputs[0])])
            elif node.op in _UNARY:
                v = values[tensor_ref(node.inputs[0])]
                values[out] = Value(_UNARY[node.op](v.t), v.nchw)
            elif node.op in _BINARY:
                values[out] = self._binary(node, values)
            elif node.op.startswith("Resize"):
                values[out] = self._resize(node, values[tensor_ref(node.inputs[0])])
            else:
                self._shape_op(node, values)
        result = {}
        for ref in self.outputs:
            v = values[ref]
            result[ref] = v.channels_first() if nchw_outputs and v.t.ndim == 4 else v.tf()
        return result


_MOVENET_BACKBONE = (
    # the float image after the graph's batch-1 unstack / resize no-op, before its own normalisation
    "StatefulPartitionedCall/stack:0",
    "StatefulPartitionedCall/center_net_mobile_net_v2fpn_feature_extractor/model_1/re_lu_2/Relu:0",
)
#: Zoo networks usable as backbones: (tensor to feed, holding the graph input's values; default cut, the last
#: shared feature map).
ZOO_BACKBONES = {
    "posenet": ("image:0", "MobilenetV1/MobilenetV1/Conv2d_13_pointwise/Relu6:0"),
    "movenet-lightning": _MOVENET_BACKBONE,
    "movenet-thunder": _MOVENET_BACKBONE,
}


class ZooBackbone(nn.Module):
    """A zoo network cut at tensor ``cut`` as a trainable backbone with its pretrained weights.

    forward(x) takes posekit's training input, (rgb - mean) / std in (N, 3, H, W), turns it into what the zoo
    graph expects (rgb * input_scale + input_offset, channel order of the spec) and returns the cut tensor NCHW.
    """

    def __init__(self, name: str, cut: str, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        from posekit.convert.tfjs import load_tfjs
        from posekit.hub.fetch import model_files
        from posekit.hub.registry import get_spec

        if name not in ZOO_BACKBONES:
            raise PosekitError(f"zoo:{name} cannot serve as a backbone; use one of "
                               f"{', '.join('zoo:' + n for n in ZOO_BACKBONES)}")
        spec = get_spec(name)
        start, default_cut = ZOO_BACKBONES[name]
        cut = cut or default_cut
        graph = load_tfjs(model_files(spec.name)[spec.graph_file])
        if split_ref(cut)[0] not in graph.nodes:
            raise PosekitError(f"model.cut {cut!r} is not a tensor of zoo:{name}")
        self.graph = TorchGraph(graph, [cut], start, [1 if d is None else d for d in spec.input_shape])
        self.cut = tensor_ref(cut)
        def channels(v: Sequence[float] | float) -> torch.Tensor:
            return torch.as_tensor(v, dtype=torch.float32).expand(3).reshape(1, 3, 1, 1).clone()

        for key, value in (("mean", mean), ("std", std), ("scale", spec.input_scale), ("offset", spec.input_offset)):
            self.register_buffer(key, channels(value), persistent=False)
        self.bgr = spec.channels == "BGR"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pixels = x * self.std + self.mean  # RGB 0..255
        if self.bgr:
            pixels = pixels.flip(1)
        return self.graph(pixels * self.scale + self.offset, nchw=True, nchw_outputs=True)[self.cut]
