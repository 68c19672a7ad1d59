"""Emit an ONNX model from a parsed TF.js graph.

Layout policy, kept here and nowhere else: TF.js tensors are NHWC.  Spatial ops (convolutions, pooling, resize,
depth-to-space, padding) produce channel-first (NCHW) values; element-wise ops, concatenation and reductions
keep a channel-first value channel-first when their other inputs allow it; every other op asks for the TF layout,
and a Transpose is inserted (once per value) only where a channel-first value meets such an op.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from posekit.convert.tfjs import TfjsGraph, split_ref, tensor_ref
from posekit.errors import PosekitError

OPSET = 18
NHWC_TO_NCHW = (0, 3, 1, 2)
NCHW_TO_NHWC = (0, 2, 3, 1)
NHWC_AXIS_IN_NCHW = {0: 0, 1: 2, 2: 3, 3: 1}
INT_MAX = np.iinfo(np.int64).max
INT_MIN = np.iinfo(np.int64).min

_NP_TO_ONNX = {
    np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.int32): TensorProto.INT32,
    np.dtype(np.int64): TensorProto.INT64, np.dtype(np.bool_): TensorProto.BOOL,
}
_TF_TO_ONNX = {
    "DT_FLOAT": TensorProto.FLOAT, "DT_INT32": TensorProto.INT32, "DT_INT64": TensorProto.INT32,
    "DT_BOOL": TensorProto.BOOL, "DT_HALF": TensorProto.FLOAT, "DT_DOUBLE": TensorProto.FLOAT,
    "DT_UINT8": TensorProto.INT32, "DT_INT8": TensorProto.INT32,
}


@dataclass
class Value:
    """An emitted tensor: its ONNX name and whether it is held channel-first (a 4-D NCHW activation)."""

    name: str
    nchw: bool = False


class UnsupportedOp(PosekitError):
    """The graph uses a TF op (or an attribute combination) the importer does not handle."""


class Emitter:
    """Walks the needed part of a TF.js graph and collects ONNX nodes and initializers."""

    def __init__(self, graph: TfjsGraph) -> None:
        self.graph = graph
        self.values: dict[str, Value] = {}
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._transposed: dict[tuple[str, bool], str] = {}
        self._folded: dict[str, np.ndarray] = {}
        self._counter = 0

    # -- naming and constants -------------------------------------------------------------------------
    def fresh(self, hint: str) -> str:
        self._counter += 1
        return f"{hint}__{self._counter}"

    def add_const(self, array: np.ndarray, hint: str = "const") -> str:
        name = self.fresh(hint)
        self.initializers.append(numpy_helper.from_array(np.asarray(array, order="C"), name))
        return name

    def int64(self, values: Sequence[int] | np.ndarray, hint: str = "i64") -> str:
        return self.add_const(np.asarray(values, dtype=np.int64), hint)

    def fold(self, ref: str, array: np.ndarray) -> None:
        """Record a tensor computed at conversion time: it behaves as a constant from here on."""
        self._folded[tensor_ref(ref)] = array

    def const_value(self, ref: str) -> np.ndarray | None:
        """The numpy value of a ref if it is a constant (through Identity chains), else None."""
        if tensor_ref(ref) in self._folded:
            return self._folded[tensor_ref(ref)]
        name, index = split_ref(ref)
        node = self.graph.nodes.get(name)
        while node is not None and node.op == "Identity" and index == 0:
            name, index = split_ref(node.inputs[0])
            node = self.graph.nodes.get(name)
        if node is not None and node.op == "Const" and index == 0:
            return self.graph.consts[name]
        return None

    def need_const(self, ref: str, what: str) -> np.ndarray:
        value = self.const_value(ref)
        if value is None:
            raise UnsupportedOp(f"{what} must be a constant in the graph (got tensor {ref})")
        return value

    # -- values and layouts ---------------------------------------------------------------------------
    def value(self, ref: str) -> Value:
        ref = tensor_ref(ref)
        if ref not in self.values:
            const = self.const_value(ref)
            if const is None:
                raise UnsupportedOp(f"tensor {ref} was used before it was produced")
            self.values[ref] = Value(self.add_const(const, split_ref(ref)[0].replace("/", "_")))
        return self.values[ref]

    def set(self, ref: str, name: str, nchw: bool = False) -> None:
        self.values[tensor_ref(ref)] = Value(name, nchw)

    def tf(self, ref: str) -> str:
        """The tensor in TF (NHWC) layout."""
        v = self.value(ref)
        return self._transpose(v.name, NCHW_TO_NHWC) if v.nchw else v.name

    def nchw(self, ref: str) -> str:
        """A 4-D tensor in channel-first layout."""
        v = self.value(ref)
        return v.name if v.nchw else self._transpose(v.name, NHWC_TO_NCHW)

    def _transpose(self, name: str, perm: tuple[int, ...]) -> str:
        key = (name, perm == NHWC_TO_NCHW)
        if key not in self._transposed:
            self._transposed[key] = self.op("Transpose", [name], perm=list(perm))
        return self._transposed[key]

    # -- node creation --------------------------------------------------------------------------------
    def op(self, op_type: str, inputs: Sequence[str], n_out: int = 1, **attrs) -> str:
        """Add one ONNX node; returns its output name (the first one when n_out > 1, see ``op_multi``)."""
        return self.op_multi(op_type, inputs, n_out, **attrs)[0]

    def op_multi(self, op_type: str, inputs: Sequence[str], n_out: int, **attrs) -> list[str]:
        outs = [self.fresh(op_type) for _ in range(n_out)]
        self.nodes.append(helper.make_node(op_type, list(inputs), outs, **attrs))
        return outs

    def cast(self, name: str, to: int) -> str:
        return self.op("Cast", [name], to=to)

    def as_int64(self, ref: str) -> str:
        """An integer input (shape, axes, indices) as int64, folded when it is a constant."""
        const = self.const_value(ref)
        if const is not None:
            return self.int64(const.astype(np.int64))
        return self.cast(self.tf(ref), TensorProto.INT64)

    def broadcast_inputs(self, refs: Sequence[str]) -> tuple[list[str], bool]:
        """Names for an element-wise op, channel-first when any input is and the others can follow."""
        values = [self.value(r) for r in refs]
        if any(v.nchw for v in values):
            names: list[str] = []
            for ref, v in zip(refs, values):
                if v.nchw:
                    names.append(v.name)
                    continue
                const = self.const_value(ref)
                if const is None or const.ndim > 4:
                    break
                names.append(v.name if const.size == 1 else self.add_const(const_to_nchw(const)))
            else:
                return names, True
        return [self.tf(r) for r in refs], False


def const_to_nchw(array: np.ndarray) -> np.ndarray:
    """A constant broadcasting against NHWC -> the same constant broadcasting against NCHW."""
    shaped = array.reshape((1,) * (4 - array.ndim) + array.shape)
    return shaped.transpose(NHWC_TO_NCHW)


def needed_nodes(graph: TfjsGraph, outputs: Sequence[str], leaves: Collection[str] = ()) -> list[str]:
    """Names of the nodes the outputs depend on, in dependency order (iterative DFS); the nodes named in
    ``leaves`` are included but not their inputs."""
    order: list[str] = []
    state: dict[str, int] = {}
    for out in outputs:
        root = split_ref(out)[0]
        if root not in graph.nodes:
            raise PosekitError(f"output {out!r} is not a node of this graph")
        stack = [(root, False)]
        while stack:
            name, done = stack.pop()
            if done:
                state[name] = 2
                order.append(name)
                continue
            if state.get(name):
                continue
            state[name] = 1
            stack.append((name, True))
            for ref in [] if name in leaves else reversed(graph.nodes[name].inputs):
                dep = split_ref(ref)[0]
                if dep not in graph.nodes:
                    raise PosekitError(f"node {name} reads {ref}, which the graph does not define")
                if not state.get(dep):
                    stack.append((dep, False))
    return order


def emit_onnx(
    graph: TfjsGraph,
    outputs: Sequence[str] | None = None,
    input_shapes: dict[str, Sequence[int | None]] | None = None,
    model_name: str = "posekit",
    nchw_outputs: Sequence[str] = (),
) -> onnx.ModelProto:
    """Convert ``graph`` into an ONNX model computing ``outputs`` (TF.js tensor refs; default: the signature's).

    Cutting at intermediate tensors works by naming them in ``outputs``.  ONNX input names are the placeholders'
    tensor refs (``"input:0"``), output names the requested refs.  ``input_shapes`` overrides placeholder shapes
    (NHWC, None = dynamic); naming another node there feeds its output (its first) instead of computing it, a
    graph input of that shape and the node's dtype (e.g. to skip a graph's single-image preprocessing).
    ``nchw_outputs``: 4-D outputs (among ``outputs``) to give channel-first, NCHW
    instead of TF's NHWC (no final Transpose when the importer holds them so, as it does convolution outputs).
    """
    from posekit.convert.tfjs_ops import HANDLERS

    outs = [tensor_ref(o) for o in (outputs or graph.signature_outputs)]
    if not outs:
        raise PosekitError("the graph declares no outputs; name the tensors to export")
    em = Emitter(graph)
    graph_inputs = []
    entries = {name for name in input_shapes or {} if name in graph.nodes and graph.nodes[name].op != "Const"}
    for node_name in needed_nodes(graph, outs, leaves=entries):
        node = graph.nodes[node_name]
        if node.op == "Const":
            continue
        if node.op == "Placeholder" or node_name in entries:
            ref = f"{node_name}:0"
            shape = list((input_shapes or {}).get(node_name, graph.input_shapes.get(node_name, [])))
            dims = [d if d is not None and d > 0 else f"{node_name}_d{i}" for i, d in enumerate(shape)]
            dtype = _TF_TO_ONNX.get(node.attrs.get("dtype", node.attrs.get("T", "DT_FLOAT")), TensorProto.FLOAT)
            graph_inputs.append(helper.make_tensor_value_info(ref, dtype, dims))  # [] = a scalar
            em.set(ref, ref)
            continue
        handler = HANDLERS.get(node.op)
        if handler is None:
            raise UnsupportedOp(f"TF op {node.op!r} (node {node_name}) is not supported by the importer")
        handler(em, node)

    out_names = []
    for ref in outs:
        nchw = ref in {tensor_ref(o) for o in nchw_outputs}
        em.nodes.append(helper.make_node("Identity", [em.nchw(ref) if nchw else em.tf(ref)], [ref]))
        out_names.append(ref)
    graph_proto = helper.make_graph(em.nodes, model_name, graph_inputs, [], em.initializers)
    model = helper.make_model(
        graph_proto, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="posekit.convert"
    )
    model.ir_version = 8
    _declare_outputs(model, out_names)
    onnx.checker.check_model(model)
    return model


def _declare_outputs(model: onnx.ModelProto, names: list[str]) -> None:
    """Give each graph output the element type that shape inference finds for it."""
    inferred = onnx.shape_inference.infer_shapes(model)
    types = {vi.name: vi.type for vi in (*inferred.graph.value_info, *inferred.graph.input)}
    for init in model.graph.initializer:
        types.setdefault(init.name, helper.make_tensor_type_proto(init.data_type, None))
    for name in names:
        ttype = types.get(name)
        if ttype is None or not ttype.tensor_type.elem_type:
            ttype = helper.make_tensor_type_proto(TensorProto.FLOAT, None)
        vi = onnx.ValueInfoProto()
        vi.name = name
        vi.type.CopyFrom(ttype)
        model.graph.output.append(vi)
