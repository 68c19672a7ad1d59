"""The TF.js importer op by op: tiny synthetic TF.js graph models, converted to ONNX, run in ONNX Runtime and
compared with numpy implementations of TensorFlow's semantics (never with ONNX Runtime itself)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from tfjs_builder import QUANTS, SHARD, GraphBuilder, TfType, quantize

from posekit.convert.onnx_emit import UnsupportedOp, emit_onnx
from posekit.convert.tfjs import decode_weights, load_tfjs
from posekit.errors import PosekitError

INT32 = TfType("DT_INT32")
RTOL = 1e-5


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20261122)


def close(actual: np.ndarray, expected: np.ndarray) -> None:
    """float32 parity: 1e-5 relative, measured against the size of the expected values."""
    expected = np.asarray(expected)
    assert actual.shape == expected.shape
    assert actual.dtype == np.float32
    scale = float(np.abs(expected).max()) if expected.size else 1.0
    np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=RTOL * max(scale, 1e-3))


def same(actual: np.ndarray, expected: np.ndarray) -> None:
    """Exact parity for integer / bool outputs, dtype included."""
    expected = np.asarray(expected)
    assert actual.dtype == expected.dtype, (actual.dtype, expected.dtype)
    np.testing.assert_array_equal(actual, expected)


# -- numpy references (TensorFlow semantics, NHWC) ------------------------------------------------------------------
def same_pads(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TF SAME padding (before, after): output = ceil(size / stride); the odd pixel goes at the end."""
    out = -(-size // stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def ref_conv(x: np.ndarray, w: np.ndarray, stride: int = 1, padding: str = "SAME", dilation: int = 1,
             explicit: tuple[int, int, int, int] = (0, 0, 0, 0), depthwise: bool = False) -> np.ndarray:
    """TF Conv2D / DepthwiseConv2dNative. x [N,H,W,C], w [kh,kw,C,M] -> [N,Ho,Wo,M or C*M] (float64)."""
    kh, kw, c, m = w.shape
    if padding == "SAME":
        (top, bottom), (left, right) = same_pads(x.shape[1], kh, stride, dilation), same_pads(x.shape[2], kw, stride,
                                                                                              dilation)
    elif padding == "EXPLICIT":
        top, bottom, left, right = explicit
    else:
        top = bottom = left = right = 0
    xp = np.pad(x.astype(np.float64), ((0, 0), (top, bottom), (left, right), (0, 0)))
    oh = (xp.shape[1] - (kh - 1) * dilation - 1) // stride + 1
    ow = (xp.shape[2] - (kw - 1) * dilation - 1) // stride + 1
    out = np.zeros((x.shape[0], oh, ow, c * m if depthwise else m))
    for i in range(kh):
        for j in range(kw):
            patch = xp[:, i * dilation:i * dilation + (oh - 1) * stride + 1:stride,
                       j * dilation:j * dilation + (ow - 1) * stride + 1:stride]
            if depthwise:
                out += (patch[..., None] * w[i, j]).reshape(out.shape)
            else:
                out += patch @ w[i, j]
    return out


def ref_conv_transpose(dy: np.ndarray, w: np.ndarray, out_hw: tuple[int, int], stride: int) -> np.ndarray:
    """TF Conv2DBackpropInput, SAME: the gradient of a SAME conv of an [N, *out_hw, Cin] input.
    dy [N,Ho,Wo,Cout], w [kh,kw,Cin,Cout]."""
    kh, kw, cin, _ = w.shape
    n, ho, wo, _ = dy.shape
    top, left = same_pads(out_hw[0], kh, stride)[0], same_pads(out_hw[1], kw, stride)[0]
    buf = np.zeros((n, (ho - 1) * stride + kh, (wo - 1) * stride + kw, cin))
    for i in range(kh):
        for j in range(kw):
            buf[:, i:i + (ho - 1) * stride + 1:stride, j:j + (wo - 1) * stride + 1:stride] += dy @ w[i, j].T
    return buf[:, top:top + out_hw[0], left:left + out_hw[1]]


def _resize_source(out: int, size: int, align: bool, half: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """TF's bilinear source rows: (lower index, upper index, fraction), clamped to the input."""
    scale = (size - 1) / (out - 1) if align and out > 1 else size / out
    src = (np.arange(out) + 0.5) * scale - 0.5 if half else np.arange(out) * scale
    lower = np.maximum(np.floor(src), 0).astype(int)
    upper = np.minimum(np.ceil(src), size - 1).astype(int)
    return lower, upper, src - np.floor(src)


def ref_resize_bilinear(x: np.ndarray, out_hw: tuple[int, int], align: bool, half: bool) -> np.ndarray:
    y0, y1, fy = _resize_source(out_hw[0], x.shape[1], align, half)
    x0, x1, fx = _resize_source(out_hw[1], x.shape[2], align, half)
    xd = x.astype(np.float64)
    fx = fx[None, None, :, None]
    top = xd[:, y0][:, :, x0] + (xd[:, y0][:, :, x1] - xd[:, y0][:, :, x0]) * fx
    bottom = xd[:, y1][:, :, x0] + (xd[:, y1][:, :, x1] - xd[:, y1][:, :, x0]) * fx
    return top + (bottom - top) * fy[None, :, None, None]


def ref_max_pool(x: np.ndarray, k: int, stride: int, padding: str) -> np.ndarray:
    pads = (same_pads(x.shape[1], k, stride), same_pads(x.shape[2], k, stride)) if padding == "SAME" else ((0, 0),) * 2
    xp = np.pad(x, ((0, 0), *pads, (0, 0)), constant_values=-np.inf)
    oh, ow = (xp.shape[1] - k) // stride + 1, (xp.shape[2] - k) // stride + 1
    windows = [xp[:, i:i + (oh - 1) * stride + 1:stride, j:j + (ow - 1) * stride + 1:stride]
               for i in range(k) for j in range(k)]
    return np.max(windows, axis=0)


def ref_depth_to_space(x: np.ndarray, block: int) -> np.ndarray:
    n, h, w, c = x.shape
    y = x.reshape(n, h, w, block, block, c // block**2).transpose(0, 1, 3, 2, 4, 5)
    return y.reshape(n, h * block, w * block, c // block**2)


def ref_strided_slice(x: np.ndarray, begin, end, strides, begin_mask=0, end_mask=0, shrink=0, new_axis=0):
    index: list = []
    for i, (b, e, s) in enumerate(zip(begin, end, strides)):
        if new_axis >> i & 1:
            index.append(None)
        elif shrink >> i & 1:
            index.append(b)
        else:
            index.append(slice(None if begin_mask >> i & 1 else b, None if end_mask >> i & 1 else e, s))
    return x[tuple(index)]


# -- graph snippets ---------------------------------------------------------------------------------------------------
def conv_attrs(stride: int = 1, padding: str = "SAME", dilation: int = 1, **extra) -> dict:
    return {"strides": [1, stride, stride, 1], "padding": padding, "dilations": [1, dilation, dilation, 1],
            "data_format": "NHWC", "explicit_paddings": [], **extra}


def source(b: GraphBuilder, kind: str, shape: tuple[int, ...], name: str = "x") -> str:
    """A tensor equal to the fed input ``name``: the placeholder itself ("plain"), or an exact 1x1 identity Conv2D of
    it ("conv"), which the importer holds channel-first, so the op under test meets the NCHW path."""
    x = b.placeholder(name, shape)
    if kind == "plain":
        return x
    eye = b.const(f"{name}/eye", np.eye(shape[-1]).reshape(1, 1, shape[-1], shape[-1]))
    return b.op("Conv2D", [x, eye], name=f"{name}/conv", **conv_attrs(padding="VALID"))


KINDS = ("conv", "plain")


# -- convolutions -----------------------------------------------------------------------------------------------------
ACTIVATIONS = {
    "Relu": lambda y, a: np.maximum(y, 0),
    "Relu6": lambda y, a: np.clip(y, 0, 6),
    "LeakyRelu": lambda y, a: np.where(y > 0, y, 0.15 * y),
    "Prelu": lambda y, a: np.where(y > 0, y, a * y),
}


@pytest.mark.parametrize("quant", QUANTS)
@pytest.mark.parametrize("activation", [None, *ACTIVATIONS])
def test_fused_conv2d(tmp_path: Path, rng, quant: str, activation: str | None) -> None:
    b = GraphBuilder()
    x = b.placeholder("x", (1, 7, 6, 3))
    w = b.const("w", rng.normal(0, 1.5, (3, 3, 3, 5)), quant)
    bias = b.const("bias", rng.normal(0, 1, 5), quant)
    inputs = [x, w, bias]
    if activation == "Prelu":
        inputs.append(b.const("alpha", rng.uniform(0.05, 0.5, 5), quant))
    fused = ["BiasAdd"] + ([activation] if activation else [])
    y = b.op("_FusedConv2D", inputs, num_args=len(inputs) - 2, fused_ops=fused, epsilon=0.0, leakyrelu_alpha=0.15,
             **conv_attrs(stride=2))
    xv = rng.uniform(-2, 2, (1, 7, 6, 3)).astype(np.float32)
    (out,) = b.run(tmp_path, [y], {"x": xv})
    expected = ref_conv(xv, b.values["w"], stride=2) + b.values["bias"]
    assert (expected > 6).any() and (expected < 0).any()  # every activation has work to do
    if activation:
        expected = ACTIVATIONS[activation](expected, b.values.get("alpha"))
    close(out, expected)


CONV_CASES = [  # (H, W, kernel, stride, padding, dilation, explicit pads t b l r)
    (7, 7, 3, 1, "SAME", 1, None),
    (8, 8, 3, 2, "SAME", 1, None),  # even size, stride 2: total pad 1, all of it at the end
    (7, 9, 3, 2, "SAME", 1, None),
    (8, 7, 4, 1, "SAME", 1, None),  # even kernel: pad 1 before, 2 after
    (9, 8, 4, 2, "SAME", 1, None),
    (8, 8, 1, 2, "SAME", 1, None),
    (7, 8, 3, 2, "VALID", 1, None),
    (6, 7, 3, 1, "EXPLICIT", 1, (1, 2, 0, 3)),
    (9, 9, 3, 1, "SAME", 2, None),
    (8, 7, 4, 1, "SAME", 2, None),
    (8, 7, 2, 1, "SAME", 3, None),  # odd total padding with dilation: 1 before, 2 after
    (9, 10, 3, 1, "VALID", 2, None),
]


@pytest.mark.parametrize(("h", "w", "k", "stride", "padding", "dilation", "explicit"), CONV_CASES)
def test_conv2d_padding(tmp_path: Path, rng, h, w, k, stride, padding, dilation, explicit) -> None:
    b = GraphBuilder()
    x = b.placeholder("x", (1, h, w, 2))
    # the filter reaches the conv through an Identity, as in graphs exported from Keras
    kernel = b.op("Identity", [b.const("w", rng.normal(size=(k, k, 2, 3)))], name="w/read")
    explicit_pads = [0, 0, *explicit, 0, 0] if explicit else []
    y = b.op("Conv2D", [x, kernel], **conv_attrs(stride, padding, dilation, explicit_paddings=explicit_pads))
    xv = rng.normal(size=(1, h, w, 2)).astype(np.float32)
    (out,) = b.run(tmp_path, [y], {"x": xv})
    close(out, ref_conv(xv, b.values["w"], stride, padding, dilation, explicit or (0, 0, 0, 0)))


@pytest.mark.parametrize("quant", QUANTS)
@pytest.mark.parametrize("multiplier", [1, 2])
@pytest.mark.parametrize("fused", [False, True])
def test_depthwise_conv(tmp_path: Path, rng, quant: str, multiplier: int, fused: bool) -> None:
    b = GraphBuilder()
    x = b.placeholder("x", (1, 8, 7, 3))
    w = b.const("w", rng.normal(0, 2, (3, 3, 3, multiplier)), quant)
    if fused:
        bias = b.const("bias", rng.normal(size=3 * multiplier), quant)
        y = b.op("FusedDepthwiseConv2dNative", [x, w, bias], fused_ops=["BiasAdd", "Relu6"], num_args=1,
                 **conv_attrs(stride=2))
    else:
        y = b.op("DepthwiseConv2dNative", [x, w], **conv_attrs(stride=1))
    xv = rng.uniform(-2, 2, (1, 8, 7, 3)).astype(np.float32)
    (out,) = b.run(tmp_path, [y], {"x": xv})
    expected = ref_conv(xv, b.values["w"], stride=2 if fused else 1, depthwise=True)
    if fused:
        expected = np.clip(expected + b.values["bias"], 0, 6)
    close(out, expected)


@pytest.mark.parametrize("quant", QUANTS)
@pytest.mark.parametrize("k", [3, 4])
def test_conv2d_backprop_input(tmp_path: Path, rng, quant: str, k: int) -> None:
    b = GraphBuilder()
    dy = b.placeholder("dy", (1, 4, 5, 3))
    sizes = b.const("sizes", [1, 8, 10, 2])
    w = b.const("w", rng.normal(size=(k, k, 2, 3)), quant)
    y = b.op("Conv2DBackpropInput", [sizes, w, dy], **conv_attrs(stride=2))
    dyv = rng.normal(size=(1, 4, 5, 3)).astype(np.float32)
    (out,) = b.run(tmp_path, [y], {"dy": dyv})
    close(out, ref_conv_transpose(dyv, b.values["w"], (8, 10), 2))


@pytest.mark.parametrize(("align", "half"), [(True, False), (False, True), (False, False)])
@pytest.mark.parametrize(("in_hw", "out_hw"), [((5, 4), (9, 11)), ((9, 8), (4, 3)), ((6, 6), (12, 12)),
                                               ((5, 4), (1, 2))])
@pytest.mark.parametrize("kind", KINDS)
def test_resize_bilinear(tmp_path: Path, rng, align: bool, half: bool, in_hw, out_hw, kind: str) -> None:
    b = GraphBuilder()
    x = source(b, kind, (1, *in_hw, 3))
    y = b.op("ResizeBilinear", [x, b.const("size", out_hw)], align_corners=align, half_pixel_centers=half)
    xv = rng.normal(size=(1, *in_hw, 3)).astype(np.float32)
    (out,) = b.run(tmp_path, [y], {"x": xv})
    close(out, ref_resize_bilinear(xv, out_hw, align, half))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("op", ["Pad", "PadV2"])
def test_pad(tmp_path: Path, rng, kind: str, op: str) -> None:
    b = GraphBuilder()
    x = source(b, kind, (1, 4, 5, 3))
    pads = [[0, 0], [1, 2], [0, 3], [1, 0]]
    inputs = [x, b.const("paddings", pads)] + ([b.const("value", np.float32(1.5))] if op == "PadV2" else [])
    y = b.op(op, inputs, Tpaddings=INT32)
    xv = rng.normal(size=(1, 4, 5, 3)).astype(np.float32)
    (out,) = b.run(tmp_path, [y], {"x": xv})
    close(out, np.pad(xv, pads, constant_values=1.5 if op == "PadV2" else 0.0))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("k", "stride", "padding", "hw"), [(3, 2, "SAME", (7, 8)), (2, 2, "SAME", (7, 7)),
                                                            (3, 2, "VALID", (7, 8)), (3, 1, "SAME", (5, 6))])
def test_max_pool(tmp_path: Path, rng, kind: str, k: int, stride: int, padding: str, hw) -> None:
    b = GraphBuilder()
    x = source(b, kind, (1, *hw, 2))
    y = b.op("MaxPool", [x], ksize=[1, k, k, 1], strides=[1, stride, stride, 1], padding=padding, data_format="NHWC")
    xv = rng.normal(size=(1, *hw, 2)).astype(np.float32)
    (out,) = b.run(tmp_path, [y], {"x": xv})
    close(out, ref_max_pool(xv, k, stride, padding))


# -- element-wise -----------------------------------------------------------------------------------------------------
BINARY = {"AddV2": np.add, "Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "RealDiv": np.divide,
          "Maximum": np.maximum, "Minimum": np.minimum, "SquaredDifference": lambda a, c: (a - c) ** 2}
CONST_SHAPES = {"C": (4,), "11C": (1, 1, 1, 4), "scalar": (), "WC": (5, 4)}


def _signed(rng, shape) -> np.ndarray:
    """Values away from zero (safe denominators), both signs."""
    return (rng.uniform(0.5, 2, shape) * rng.choice([-1, 1], shape)).astype(np.float32)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("const_shape", CONST_SHAPES)
@pytest.mark.parametrize("op", BINARY)
@pytest.mark.parametrize("const_first", [False, True])
def test_binary_with_constant(tmp_path: Path, rng, kind: str, const_shape: str, op: str, const_first: bool) -> None:
    b = GraphBuilder()
    x = source(b, kind, (1, 3, 5, 4))
    c = b.const("c", _signed(rng, CONST_SHAPES[const_shape]))
    y = b.op(op, [c, x] if const_first else [x, c])
    xv = _signed(rng, (1, 3, 5, 4))
    (out,) = b.run(tmp_path, [y], {"x": xv})
    cv = b.values["c"]
    close(out, BINARY[op](cv, xv) if const_first else BINARY[op](xv, cv))


@pytest.mark.parametrize("kind", KINDS)
def test_bias_add(tmp_path: Path, rng, kind: str) -> None:
    b = GraphBuilder()
    y = b.op("BiasAdd", [source(b, kind, (1, 3, 5, 4)), b.const("bias", rng.normal(size=4))], data_format="NHWC")
    xv = rng.normal(size=(1, 3, 5, 4)).astype(np.float32)
    (out,) = b.run(tmp_path, [y], {"x": xv})
    close(out, xv + b.values["bias"])


@pytest.mark.parametrize("quant", QUANTS)
def test_binary_quantised_constant(tmp_path: Path, rng, quant: str) -> None:
    b = GraphBuilder()
    x = source(b, "conv", (1, 3, 5, 4))
    y = b.op("Mul", [b.op("AddV2", [x, b.const("shift", rng.normal(size=4), quant)]),
                     b.const("gain", rng.normal(size=(1, 1, 1, 4)), quant)])
    xv = rng.normal(size=(1, 3, 5, 4)).astype(np.float32)
    (out,) = b.run(tmp_path, [y], {"x": xv})
    close(out, (xv + b.values["shift"]) * b.values["gain"])


@pytest.mark.parametrize("other", ["conv", "plain_full", "plain_channels"])
@pytest.mark.parametrize("op", ["AddV2", "Sub", "Mul", "RealDiv", "Maximum", "SquaredDifference"])
def test_binary_two_tensors(tmp_path: Path, rng, other: str, op: str) -> None:
    """A channel-first conv output against another conv output, a full NHWC tensor or a broadcast [C] tensor."""
    b = GraphBuilder()
    x = source(b, "conv", (1, 3, 5, 4))
    shape = (4,) if other == "plain_channels" else (1, 3, 5, 4)
    z = source(b, "conv" if other == "conv" else "plain", shape, name="z")
    y = b.op(op, [z, x])
    xv, zv = _signed(rng, (1, 3, 5, 4)), _signed(rng, shape)
    (out,) = b.run(tmp_path, [y], {"x": xv, "z": zv})
    close(out, BINARY[op](zv, xv))


UNARY = {
    "Relu": lambda v: np.maximum(v, 0), "Relu6": lambda v: np.clip(v, 0, 6),
    "LeakyRelu": lambda v: np.where(v > 0, v, 0.3 * v), "Sigmoid": lambda v: 1 / (1 + np.exp(-v.astype(np.float64))),
    "Sqrt": np.sqrt, "Exp": np.exp, "Abs": np.abs, "Reciprocal": np.reciprocal,
}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("op", UNARY)
def test_unary(tmp_path: Path, rng, kind: str, op: str) -> None:
    b = GraphBuilder()
    x = source(b, kind, (1, 3, 4, 5))
    y = b.op(op, [x], alpha=0.3)
    xv = rng.uniform(-8, 8, (1, 3, 4, 5)).astype(np.float32)
    if op in ("Sqrt", "Reciprocal", "Exp"):
        xv = np.abs(xv) + 0.1 if op != "Exp" else xv / 4
    (out,) = b.run(tmp_path, [y], {"x": xv})
    close(out, UNARY[op](xv))


@pytest.mark.parametrize("kind", KINDS)
def test_add_n(tmp_path: Path, rng, kind: str) -> None:
    b = GraphBuilder()
    xs = [source(b, kind, (1, 2, 3, 4), name=f"x{i}") for i in range(3)]
    y = b.op("AddN", xs, N=3)
    values = {f"x{i}": rng.normal(size=(1, 2, 3, 4)).astype(np.float32) for i in range(3)}
    (out,) = b.run(tmp_path, [y], values)
    close(out, sum(values.values()))


# -- shapes and data movement -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(("kinds", "axis"), [(("conv", "conv"), 3), (("conv", "conv"), -1), (("conv", "conv"), 1),
                                             (("conv", "plain"), 3), (("plain", "plain"), 2), (("conv", "const"), 3),
                                             (("plain", "plain"), 0)])
def test_concat(tmp_path: Path, rng, kinds: tuple[str, str], axis: int) -> None:
    b = GraphBuilder()
    shape = (1, 3, 4, 2)
    a = source(b, kinds[0], shape, name="a")
    values = {"a": rng.normal(size=shape).astype(np.float32)}
    if kinds[1] == "const":
        c = b.const("c", rng.normal(size=shape))
        cv = b.values["c"]
    else:
        c = source(b, kinds[1], shape, name="c")
        values["c"] = cv = rng.normal(size=shape).astype(np.float32)
    y = b.op("ConcatV2", [a, c, b.const("axis", np.int32(axis))], N=2, Tidx=INT32)
    (out,) = b.run(tmp_path, [y], values)
    close(out, np.concatenate([values["a"], cv], axis=axis))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("shape", [[1, -1], [3, 10], [1, 5, 6]])
def test_reshape(tmp_path: Path, rng, kind: str, shape: list[int]) -> None:
    """Reshape flattens in NHWC order even when the input is held channel-first."""
    b = GraphBuilder()
    x = source(b, kind, (1, 3, 5, 2))
    y = b.op("Reshape", [x, b.const("shape", shape)], Tshape=INT32)
    xv = rng.normal(size=(1, 3, 5, 2)).astype(np.float32)
    (out,) = b.run(tmp_path, [y], {"x": xv})
    close(out, xv.reshape(shape))


@pytest.mark.parametrize("kind", KINDS)
def test_depth_to_space(tmp_path: Path, rng, kind: str) -> None:
    b = GraphBuilder()
    x = source(b, kind, (1, 3, 4, 8))
    y = b.op("DepthToSpace", [x], block_size=2, data_format="NHWC")
    xv = rng.normal(size=(1, 3, 4, 8)).astype(np.float32)
    (out,) = b.run(tmp_path, [y], {"x": xv})
    close(out, ref_depth_to_space(xv, 2))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("perm", [[0, 3, 1, 2], [0, 2, 1, 3], [3, 1, 2, 0]])
def test_transpose(tmp_path: Path, rng, kind: str, perm: list[int]) -> None:
    b = GraphBuilder()
    x = source(b, kind, (1, 3, 4, 2))
    y = b.op("Transpose", [x, b.const("perm", perm)], Tperm=INT32)
    xv = rng.normal(size=(1, 3, 4, 2)).astype(np.float32)
    (out,) = b.run(tmp_path, [y], {"x": xv})
    close(out, xv.transpose(perm))


REDUCE = {"Mean": np.mean, "Sum": np.sum, "Max": np.max}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("op", REDUCE)
@pytest.mark.parametrize("axes", [[1, 2], [3], [-1], [1], 2, [0, 3]])
@pytest.mark.parametrize("keep", [True, False])
def test_reduce(tmp_path: Path, rng, kind: str, op: str, axes, keep: bool) -> None:
    b = GraphBuilder()
    x = source(b, kind, (2, 3, 4, 5))
    y = b.op(op, [x, b.const("axes", axes)], keep_dims=keep, Tidx=INT32)
    xv = rng.normal(size=(2, 3, 4, 5)).astype(np.float32)
    (out,) = b.run(tmp_path, [y], {"x": xv})
    close(out, REDUCE[op](xv, axis=tuple(np.atleast_1d(axes)), keepdims=keep))


SLICES = [  # (begin, end, strides, begin_mask, end_mask, shrink_axis_mask, new_axis_mask)
    ([0, 1, 0, 0], [0, 4, 6, 2], [1, 1, 2, 1], 0b1001, 0b0001, 0, 0),
    ([0, -1, 0, 1], [0, 0, 0, 3], [1, -1, 1, 1], 0b0101, 0b0111, 0, 0),  # reverse rows
    ([0, 0, 0, -1], [1, 0, 0, 0], [1, 1, 1, 1], 0b0110, 0b0110, 0b1001, 0),  # shrink batch and the last channel
    ([0, 0, 1], [1, 0, 3], [1, 1, 1], 0, 0, 0b001, 0b010),  # shrink, new axis, then a slice of the rows
    ([0, 2], [0, 5], [1, 2], 0b01, 0b01, 0, 0),  # fewer entries than the rank
    ([1, 1, 1, 0], [-1, -1, -1, 0], [1, 1, 1, 1], 0, 0b1000, 0, 0),  # negative ends
]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("spec", SLICES)
def test_strided_slice(tmp_path: Path, rng, kind: str, spec) -> None:
    begin, end, strides, begin_mask, end_mask, shrink, new_axis = spec
    b = GraphBuilder()
    x = source(b, kind, (2, 5, 6, 4))
    y = b.op("StridedSlice", [x, b.const("begin", begin), b.const("end", end), b.const("strides", strides)],
             begin_mask=begin_mask, end_mask=end_mask, shrink_axis_mask=shrink, new_axis_mask=new_axis,
             ellipsis_mask=0, Index=INT32)
    xv = rng.normal(size=(2, 5, 6, 4)).astype(np.float32)
    (out,) = b.run(tmp_path, [y], {"x": xv})
    close(out, ref_strided_slice(xv, begin, end, strides, begin_mask, end_mask, shrink, new_axis))


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_pack(tmp_path: Path, rng, axis: int) -> None:
    b = GraphBuilder()
    xs = [b.placeholder(f"x{i}", (2, 3)) for i in range(3)]
    y = b.op("Pack", xs, N=3, axis=axis)
    values = {f"x{i}": rng.normal(size=(2, 3)).astype(np.float32) for i in range(3)}
    (out,) = b.run(tmp_path, [y], values)
    close(out, np.stack(list(values.values()), axis=axis))


@pytest.mark.parametrize(("kind", "axis"), [("plain", 1), ("plain", 0), ("conv", 3)])
def test_unpack(tmp_path: Path, rng, kind: str, axis: int) -> None:
    b = GraphBuilder()
    shape = (3, 2, 4, 3)
    x = source(b, kind, shape)
    y = b.op("Unpack", [x], num=shape[axis], axis=axis)
    xv = rng.normal(size=shape).astype(np.float32)
    outs = b.run(tmp_path, [f"{y}:{i}" for i in range(shape[axis])], {"x": xv})
    for i, out in enumerate(outs):
        close(out, np.take(xv, i, axis=axis))


def test_shape_of_conv_output_is_nhwc(tmp_path: Path, rng) -> None:
    b = GraphBuilder()
    x = b.placeholder("x", (1, 7, 9, 3))
    conv = b.op("Conv2D", [x, b.const("w", rng.normal(size=(3, 3, 3, 5)))], **conv_attrs(stride=2))
    y = b.op("Shape", [conv], out_type=INT32)
    (out,) = b.run(tmp_path, [y], {"x": np.zeros((1, 7, 9, 3), np.float32)})
    same(out, np.array([1, 4, 5, 5], np.int32))


def test_an_intermediate_tensor_can_be_fed_instead_of_computed(tmp_path: Path) -> None:
    """input_shapes naming a non-placeholder node: that node's output becomes the graph input (its inputs and
    everything only they need are left out)."""
    b = GraphBuilder()
    x = b.placeholder("x", (1, 2, 2, 3))
    mid = b.op("Mul", [x, b.const("two", np.float32(2.0))], name="mid")
    y = b.op("Add", [mid, b.const("one", np.float32(1.0))])
    model = emit_onnx(load_tfjs(b.write(tmp_path, [f"{y}:0"])), [f"{y}:0"], {"mid": [None, 2, 2, 3]})
    assert [i.name for i in model.graph.input] == ["mid:0"]
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    fed = np.arange(24, dtype=np.float32).reshape(2, 2, 2, 3)  # a batch of 2 where x had 1
    (out,) = session.run(None, {"mid:0": fed})
    close(out, fed + 1)


def test_nchw_outputs_come_channel_first(tmp_path: Path, rng) -> None:
    """A convolution's output (held channel-first inside) and a plain NHWC value, both asked for channel-first."""
    b = GraphBuilder()
    x = b.placeholder("x", (1, 7, 9, 3))
    conv = b.op("Conv2D", [x, b.const("w", rng.normal(size=(3, 3, 3, 5)))], **conv_attrs(stride=1))
    plain = b.op("Identity", [x])
    xv = rng.normal(size=(1, 7, 9, 3)).astype(np.float32)
    nhwc = b.run(tmp_path / "tf", [f"{conv}:0", f"{plain}:0"], {"x": xv})
    nchw = b.run(tmp_path / "cf", [f"{conv}:0", f"{plain}:0"], {"x": xv}, nchw_outputs=[f"{conv}:0", f"{plain}:0"])
    for tf_layout, channel_first in zip(nhwc, nchw):
        assert channel_first.shape == tf_layout.transpose(0, 3, 1, 2).shape
        close(channel_first, tf_layout.transpose(0, 3, 1, 2))
    close(nchw[1], xv.transpose(0, 3, 1, 2))


@pytest.mark.parametrize(("kind", "axis"), [("plain", 2), ("plain", 1), ("conv", 3), ("conv", -1)])
def test_arg_max(tmp_path: Path, rng, kind: str, axis: int) -> None:
    b = GraphBuilder()
    x = source(b, kind, (2, 3, 4, 5))
    y = b.op("ArgMax", [x, b.const("dim", np.int32(axis))], output_type=INT32, Tidx=INT32)
    xv = rng.normal(size=(2, 3, 4, 5)).astype(np.float32)
    (out,) = b.run(tmp_path, [y], {"x": xv})
    same(out, np.argmax(xv, axis=axis).astype(np.int32))


@pytest.mark.parametrize("indices_from", ["const", "input"])
def test_gather_nd(tmp_path: Path, rng, indices_from: str) -> None:
    b = GraphBuilder()
    params = source(b, "conv", (3, 4, 2, 5), name="p")
    idx = np.array([[0, 1], [2, 3], [1, 0]], np.int32)
    indices = b.const("idx", idx) if indices_from == "const" else b.placeholder("idx", (3, 2), "DT_INT32")
    y = b.op("GatherNd", [params, indices], Tparams=TfType("DT_FLOAT"), Tindices=INT32)
    pv = rng.normal(size=(3, 4, 2, 5)).astype(np.float32)
    feeds = {"p": pv} | ({"idx": idx} if indices_from == "input" else {})
    (out,) = b.run(tmp_path, [y], feeds)
    close(out, pv[idx[:, 0], idx[:, 1]])


@pytest.mark.parametrize(("axis", "indices_from"), [(1, "const"), (0, "input"), (2, "const")])
def test_gather_v2(tmp_path: Path, rng, axis: int, indices_from: str) -> None:
    b = GraphBuilder()
    params = b.placeholder("p", (4, 5, 3))
    idx = np.array([3, 0, 2, 2], np.int32)[: (3 if axis == 2 else 4)] % (4, 5, 3)[axis]
    indices = b.const("idx", idx) if indices_from == "const" else b.placeholder("idx", idx.shape, "DT_INT32")
    y = b.op("GatherV2", [params, indices, b.const("axis", np.int32(axis))], batch_dims=0, Taxis=INT32)
    pv = rng.normal(size=(4, 5, 3)).astype(np.float32)
    feeds = {"p": pv} | ({"idx": idx} if indices_from == "input" else {})
    (out,) = b.run(tmp_path, [y], feeds)
    close(out, np.take(pv, idx, axis=axis))


def test_top_k(tmp_path: Path, rng) -> None:
    b = GraphBuilder()
    x = b.placeholder("x", (2, 10))
    y = b.op("TopKV2", [x, b.const("k", np.int32(3))], sorted=True)
    xv = rng.permutation(20).reshape(2, 10).astype(np.float32)
    values, indices = b.run(tmp_path, [f"{y}:0", f"{y}:1"], {"x": xv})
    order = np.argsort(-xv, axis=1)[:, :3].astype(np.int32)
    same(indices, order)
    close(values, np.take_along_axis(xv, order, axis=1))


@pytest.mark.parametrize("dtype", ["int", "float"])
@pytest.mark.parametrize("op", ["FloorDiv", "FloorMod"])
def test_floor_div_mod(tmp_path: Path, op: str, dtype: str) -> None:
    """Floor semantics: the quotient rounds down, the remainder takes the divisor's sign."""
    a = np.array([-7, 7, -7, 7, -6, 0, 5, -1], np.int32)
    d = np.array([2, -2, -2, 2, 3, -3, 5, 4], np.int32)
    if dtype == "float":
        a, d = a.astype(np.float32) * 0.75, d.astype(np.float32) * 0.5
    tf_type = TfType("DT_INT32" if dtype == "int" else "DT_FLOAT")
    b = GraphBuilder()
    y = b.op(op, [b.placeholder("a", (8,), tf_type), b.placeholder("d", (8,), tf_type)], T=tf_type)
    (out,) = b.run(tmp_path, [y], {"a": a, "d": d})
    expected = np.floor_divide(a, d) if op == "FloorDiv" else np.mod(a, d)
    if dtype == "int":
        same(out, expected)
    else:
        close(out, expected)


def test_floor_div_by_constant(tmp_path: Path) -> None:
    """The MoveNet pattern: an int32 flat index divided by the row length."""
    b = GraphBuilder()
    y = b.op("FloorDiv", [b.placeholder("i", (5,), "DT_INT32"), b.const("n", np.int32(48))], T=INT32)
    i = np.array([0, 47, 48, 2303, -1], np.int32)
    (out,) = b.run(tmp_path, [y], {"i": i})
    same(out, i // 48)


@pytest.mark.parametrize(("src", "dst", "np_dst"), [("DT_FLOAT", "DT_INT32", np.int32), ("DT_INT32", "DT_FLOAT",
                                                    np.float32), ("DT_FLOAT", "DT_BOOL", np.bool_)])
def test_cast(tmp_path: Path, src: str, dst: str, np_dst) -> None:
    b = GraphBuilder()
    y = b.op("Cast", [b.placeholder("x", (6,), src)], SrcT=TfType(src), DstT=TfType(dst), Truncate=False)
    xv = np.array([-2.7, -1.0, -0.4, 0.0, 0.6, 3.9], np.float32)
    xv = xv.astype(np.int32) if src == "DT_INT32" else xv
    (out,) = b.run(tmp_path, [y], {"x": xv})
    same(out, xv.astype(np_dst))  # float -> int truncates toward zero, as TF


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("axis", [0, -1, 2])
def test_expand_dims(tmp_path: Path, rng, kind: str, axis: int) -> None:
    b = GraphBuilder()
    x = source(b, kind, (1, 3, 4, 2))
    y = b.op("ExpandDims", [x, b.const("axis", np.int32(axis))], Tdim=INT32)
    xv = rng.normal(size=(1, 3, 4, 2)).astype(np.float32)
    (out,) = b.run(tmp_path, [y], {"x": xv})
    close(out, np.expand_dims(xv, axis))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dims", [[0], [0, 2], []])
def test_squeeze(tmp_path: Path, rng, kind: str, dims: list[int]) -> None:
    b = GraphBuilder()
    x = source(b, kind, (1, 3, 1, 2))
    y = b.op("Squeeze", [x], squeeze_dims=dims)
    xv = rng.normal(size=(1, 3, 1, 2)).astype(np.float32)
    (out,) = b.run(tmp_path, [y], {"x": xv})
    close(out, np.squeeze(xv, axis=tuple(dims) or None))


@pytest.mark.parametrize(("kind", "axis"), [("conv", 3), ("plain", 1), ("conv", -3)])
def test_split(tmp_path: Path, rng, kind: str, axis: int) -> None:
    b = GraphBuilder()
    x = source(b, kind, (1, 4, 2, 6))
    y = b.op("Split", [b.const("axis", np.int32(axis)), x], num_split=2)
    xv = rng.normal(size=(1, 4, 2, 6)).astype(np.float32)
    outs = b.run(tmp_path, [f"{y}:0", f"{y}:1"], {"x": xv})
    for out, expected in zip(outs, np.split(xv, 2, axis=axis)):
        close(out, expected)


@pytest.mark.parametrize("kind", KINDS)
def test_split_v(tmp_path: Path, rng, kind: str) -> None:
    b = GraphBuilder()
    x = source(b, kind, (1, 2, 3, 6))
    y = b.op("SplitV", [x, b.const("sizes", [1, 3, 2]), b.const("axis", np.int32(-1))], num_split=3, Tlen=INT32)
    xv = rng.normal(size=(1, 2, 3, 6)).astype(np.float32)
    outs = b.run(tmp_path, [f"{y}:{i}" for i in range(3)], {"x": xv})
    for out, expected in zip(outs, np.split(xv, [1, 4], axis=-1)):
        close(out, expected)


@pytest.mark.parametrize("kind", KINDS)
def test_tile(tmp_path: Path, rng, kind: str) -> None:
    b = GraphBuilder()
    x = source(b, kind, (1, 2, 3, 2))
    y = b.op("Tile", [x, b.const("multiples", [2, 1, 3, 2])], Tmultiples=INT32)
    xv = rng.normal(size=(1, 2, 3, 2)).astype(np.float32)
    (out,) = b.run(tmp_path, [y], {"x": xv})
    close(out, np.tile(xv, (2, 1, 3, 2)))


def test_fill_with_computed_dims(tmp_path: Path) -> None:
    b = GraphBuilder()
    dims = b.op("Shape", [b.placeholder("x", (None, 3))], out_type=INT32)
    y = b.op("Fill", [dims, b.const("value", np.float32(2.5))], index_type=INT32)
    (out,) = b.run(tmp_path, [y], {"x": np.zeros((4, 3), np.float32)})
    close(out, np.full((4, 3), 2.5, np.float32))


def test_range(tmp_path: Path) -> None:
    b = GraphBuilder()
    ints = b.op("Range", [b.const("start", np.int32(2)), b.placeholder("n", (), "DT_INT32"), b.const("d", np.int32(3))],
                Tidx=INT32)
    floats = b.op("Range", [b.const("fs", np.float32(0.5)), b.const("fl", np.float32(2.75)), b.placeholder("fd", ())],
                  Tidx=TfType("DT_FLOAT"))
    out_i, out_f = b.run(tmp_path, [ints, floats], {"n": np.array(13, np.int32), "fd": np.array(0.5, np.float32)})
    same(out_i, np.arange(2, 13, 3, dtype=np.int32))
    close(out_f, np.arange(0.5, 2.75, 0.5, dtype=np.float32))


@pytest.mark.parametrize("op", ["Select", "SelectV2"])
def test_select(tmp_path: Path, rng, op: str) -> None:
    b = GraphBuilder()
    a, c = b.placeholder("a", (3, 4)), b.placeholder("c", (3, 4))
    cond = b.op("Greater", [a, b.const("t", np.float32(0.2))])
    y = b.op(op, [cond, a, c])
    av, cv = rng.normal(size=(3, 4)).astype(np.float32), rng.normal(size=(3, 4)).astype(np.float32)
    (out,) = b.run(tmp_path, [y], {"a": av, "c": cv})
    close(out, np.where(av > 0.2, av, cv))


@pytest.mark.parametrize("indices", [[[0, 1], [2, 3]], [1, 3]])
def test_sparse_to_dense(tmp_path: Path, rng, indices) -> None:
    b = GraphBuilder()
    shape = [3, 4] if np.ndim(indices) == 2 else [5]
    dense = b.op("SparseToDense", [b.const("idx", indices), b.const("shape", shape), b.const("v", [5.0, -7.0]),
                                   b.const("default", np.float32(0.5))], Tindices=INT32, validate_indices=True)
    y = b.op("AddV2", [b.placeholder("x", shape), dense])
    xv = rng.normal(size=shape).astype(np.float32)
    (out,) = b.run(tmp_path, [y], {"x": xv})
    expected = np.full(shape, 0.5, np.float32)
    idx = np.array(indices)
    expected[tuple(idx.T) if idx.ndim == 2 else idx] = [5.0, -7.0]
    close(out, xv + expected)


# -- weights, graph plumbing and errors -------------------------------------------------------------------------------
@pytest.mark.parametrize("quant", QUANTS)
def test_decode_weights_split_across_shards(rng, quant: str) -> None:
    """Every storage format decodes to what TF.js decodes, also when a group's bytes span two shard files."""
    weights = {"a": rng.normal(size=(3, 5)).astype(np.float32), "b": rng.uniform(-3, 9, 7).astype(np.float32),
               "c": np.arange(-4, 5, dtype=np.int32), "d": np.array([0, 3, 250, 1000], np.int32)}
    specs, blobs, expected = [], [], {}
    for name, array in weights.items():
        q = "uint8" if name == "d" else "float32" if name == "c" else quant
        blob, quantization, expected[name] = quantize(array, q)
        specs.append({"name": name, "shape": list(array.shape), "dtype": str(array.dtype)}
                     | ({"quantization": quantization} if quantization else {}))
        blobs.append(blob)
    data = b"".join(blobs)
    shards = {"s1": data[: len(data) // 2], "s2": data[len(data) // 2:]}
    decoded = decode_weights([{"paths": ["s1", "s2"], "weights": specs}], shards.__getitem__)
    for name, value in expected.items():
        assert decoded[name].dtype == value.dtype and decoded[name].shape == weights[name].shape
        np.testing.assert_allclose(decoded[name], value, rtol=1e-6, atol=1e-7)
    if quant != "float32":  # quantised, so not the original values, yet close to them
        assert not np.array_equal(decoded["a"], weights["a"])
    np.testing.assert_allclose(decoded["a"], weights["a"], atol=float(np.ptp(weights["a"])) / 200)
    same(decoded["d"], np.round(np.round(weights["d"] / (1000 / 255)) * (1000 / 255)).astype(np.int32))


def _chain(rng) -> tuple[GraphBuilder, str, str]:
    """x -> conv -> relu -> an op the importer does not know."""
    b = GraphBuilder()
    x = b.placeholder("x", (1, 4, 4, 2))
    conv = b.op("Conv2D", [x, b.const("w", rng.normal(size=(3, 3, 2, 3)))], name="conv", **conv_attrs())
    relu = b.op("Relu", [conv], name="relu")
    b.op("Erfinv", [relu], name="mystery")
    return b, conv, relu


def test_cut_at_intermediate_node(tmp_path: Path, rng) -> None:
    b, conv, relu = _chain(rng)
    xv = rng.normal(size=(1, 4, 4, 2)).astype(np.float32)
    conv_out, relu_out = b.run(tmp_path, [conv, f"{relu}:0"], {"x": xv})
    expected = ref_conv(xv, b.values["w"])
    close(conv_out, expected)
    close(relu_out, np.maximum(expected, 0))


def test_unsupported_op_is_named(tmp_path: Path, rng) -> None:
    b, _, _ = _chain(rng)
    graph = load_tfjs(b.write(tmp_path, ["mystery:0"]))
    with pytest.raises(UnsupportedOp, match="Erfinv") as info:
        emit_onnx(graph)
    assert isinstance(info.value, PosekitError)


def test_truncated_weights_are_reported(tmp_path: Path, rng) -> None:
    b, _, relu = _chain(rng)
    path = b.write(tmp_path, [relu])
    shard = tmp_path / SHARD
    shard.write_bytes(shard.read_bytes()[:-10])
    with pytest.raises(PosekitError, match="too short"):
        load_tfjs(path)
    shard.unlink()
    with pytest.raises(PosekitError, match="missing"):
        load_tfjs(path)


def test_control_inputs_are_ignored(tmp_path: Path, rng) -> None:
    b = GraphBuilder()
    x = b.placeholder("x", (2, 3))
    b.op("Erfinv", [x], name="side_effect")
    y = b.op("Mul", [x, b.const("two", np.float32(2)), "^side_effect", "^x"])
    graph = load_tfjs(b.write(tmp_path, [y]))
    assert graph.nodes[y].inputs == ["x:0", "two:0"]
    xv = rng.normal(size=(2, 3)).astype(np.float32)
    (out,) = b.run(tmp_path, [y], {"x": xv})
    close(out, xv * 2)


def test_written_model_uses_tfjs_encoding(tmp_path: Path) -> None:
    """The builder writes attributes the way the TF.js converter does (guards the fixtures themselves)."""
    b = GraphBuilder()
    b.op("Conv2D", [b.placeholder("x", (1, None, None, 3)), b.const("w", np.ones((1, 1, 3, 1)), "float16")],
         **conv_attrs(stride=2))
    model = json.loads(b.write(tmp_path).read_text())
    conv = model["modelTopology"]["node"][-1]
    assert conv["attr"]["padding"] == {"s": "U0FNRQ=="}
    assert conv["attr"]["strides"] == {"list": {"i": ["1", "2", "2", "1"]}}
    assert model["modelTopology"]["node"][0]["attr"]["shape"]["shape"]["dim"][1] == {"size": "-1"}
    assert model["weightsManifest"][0]["weights"][0]["quantization"]["dtype"] == "float16"
    assert load_tfjs(tmp_path / "model.json").input_shapes["x"] == [1, None, None, 3]
