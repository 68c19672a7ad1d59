"""Run a zoo network: fetch its TF.js graph, import it to ONNX once (cached by content hash), run ONNX Runtime.

``net = load_network("movenet-thunder"); outputs = net.run(x)`` with outputs keyed by TF.js tensor names.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from posekit.errors import PosekitError
from posekit.hub.registry import ModelSpec, get_spec


@dataclass(frozen=True)
class TensorInfo:
    """Name, shape (None = dynamic) and numpy dtype of a network input or output."""

    name: str
    shape: tuple[int | None, ...]
    dtype: np.dtype


class Network:
    """An ONNX Runtime session over an imported zoo graph.

    ``run`` takes one array (for single-input networks) or a dict keyed by input name, and returns every
    output keyed by its TF.js tensor name (e.g. ``"Identity:0"``).  spin: whether ONNX Runtime's idle threads
    busy-wait for the next operator during a run (default: `default_spin`).
    """

    def __init__(self, onnx_path: Path, spec: ModelSpec | None = None, threads: int | None = None,
                 providers: Sequence[str] | None = None, spin: bool | None = None) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads or default_threads()
        options.inter_op_num_threads = 1
        spin = default_spin() if spin is None else spin
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
        # spinning threads stop when a run returns: they never hold the cores between runs (the other network of
        # a two-stage model, video decoding, other processes)
        options.add_session_config_entry("session.force_spinning_stop", "1")
        options.log_severity_level = 3
        self.providers = list(providers or default_providers())
        try:
            self.session = ort.InferenceSession(str(onnx_path), options, providers=self.providers)
        except Exception as exc:  # onnxruntime raises its own classes (InvalidProtobuf, Fail, ...) for bad files
            if not Path(onnx_path).is_file():
                raise PosekitError(f"ONNX file {onnx_path} not found") from None
            raise PosekitError(f"cannot load {onnx_path}: not a valid ONNX model ({type(exc).__name__}); the file "
                               "is damaged or truncated: export or copy it again") from None
        self.spec = spec
        self.path = onnx_path
        self.inputs = [_info(i) for i in self.session.get_inputs()]
        self.outputs = [_info(o) for o in self.session.get_outputs()]

    @property
    def name(self) -> str:
        return self.spec.name if self.spec else self.path.stem

    def run(self, x: np.ndarray | Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run the network; ``x`` is cast to the input's dtype.  Returns {tensor name: array}."""
        if isinstance(x, Mapping):
            feeds = dict(x)
        elif len(self.inputs) == 1:
            feeds = {self.inputs[0].name: x}
        else:
            raise PosekitError(f"{self.name} has {len(self.inputs)} inputs; pass a dict keyed by input name")
        expected = {i.name: i for i in self.inputs}
        prepared = {}
        for key, value in feeds.items():
            info = expected.get(key) or expected.get(f"{key}:0")
            if info is None:
                raise PosekitError(f"{self.name} has no input {key!r}; inputs: {', '.join(expected)}")
            arr = np.asarray(value)
            if info.dtype == np.uint8 and arr.dtype != np.uint8:
                raise PosekitError(f"{self.name} input {info.name} takes uint8 pixels 0..255, got {arr.dtype} "
                                   "(load it without pixels=True to feed normalised values)")
            if arr.ndim != len(info.shape) or any(
                d is not None and d != a for d, a in zip(info.shape, arr.shape)
            ):
                raise PosekitError(
                    f"{self.name} input {info.name} expects shape {_fmt_shape(info.shape)}, got {list(arr.shape)}"
                )
            prepared[info.name] = np.ascontiguousarray(arr, dtype=info.dtype)
        values = self.session.run(None, prepared)
        return {o.name: v for o, v in zip(self.outputs, values)}


def stack_batch(inputs: Sequence[np.ndarray]) -> np.ndarray:
    """Inputs of shape [1, ...] -> one [N, ...] batch (the single input itself, uncopied, when N = 1)."""
    return inputs[0] if len(inputs) == 1 else np.concatenate(inputs)


def default_threads() -> int:
    """Threads for ONNX Runtime: $POSEKIT_THREADS, else the CPUs this process may use."""
    env = os.environ.get("POSEKIT_THREADS")
    if env:
        try:
            return max(1, int(env))
        except ValueError:
            raise PosekitError(f"POSEKIT_THREADS={env!r} is not a number; set it to e.g. 2") from None
    return usable_cores()


def usable_cores() -> int:
    """The CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def default_spin() -> bool:
    """Whether ONNX Runtime's threads busy-wait between the operators of a run (they stop when it returns).

    $POSEKIT_SPIN=1/0 decides; otherwise spinning is on only while the machine is mostly idle when the session is
    made (1-minute load average below half the usable cores): spinning threads speed a model up on idle cores but
    fight for shared ones, where they end slower than a single thread (`benchmarks/threads.py`, BENCHMARKS.md).
    """
    env = os.environ.get("POSEKIT_SPIN")
    if env is not None:
        return env not in ("", "0")
    try:
        return os.getloadavg()[0] < 0.5 * usable_cores()
    except (AttributeError, OSError):  # no load average (Windows)
        return False


def default_providers() -> list[str]:
    """CUDA first when this onnxruntime build has it, then CPU."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    return [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]


def _info(arg) -> TensorInfo:
    dtype = {"tensor(float)": np.float32, "tensor(int32)": np.int32, "tensor(int64)": np.int64,
             "tensor(bool)": np.bool_, "tensor(uint8)": np.uint8}.get(arg.type, np.float32)
    return TensorInfo(arg.name, tuple(d if isinstance(d, int) else None for d in arg.shape), np.dtype(dtype))


def _fmt_shape(shape: Sequence[int | None]) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


def _resolve_heads(spec: ModelSpec, heads: Sequence[str] | None) -> list[str] | None:
    """Friendly head names or tensor names -> tensor names (None = the graph's own outputs)."""
    if not heads:
        return None
    out = []
    for head in heads:
        if head in spec.heads:
            out.append(spec.heads[head])
        elif ":" in head or "/" in head:
            out.append(head)
        else:
            raise PosekitError(
                f"{spec.name} has no head {head!r}; named heads: {', '.join(spec.heads) or 'none'} "
                "(or pass a TF.js tensor name such as 'StatefulPartitionedCall/.../BiasAdd:0')"
            )
    return out


#: The modules that turn a TF.js graph into ONNX: a cached import is rebuilt when one of them changes (the
#: training-only torch emitter beside them is not among them).
IMPORTER_MODULES = ("tfjs.py", "tfjs_ops.py", "onnx_emit.py", "onnx_input.py")


@functools.cache
def converter_digest() -> str:
    """Hash of the importer's sources: cached ONNX files are rebuilt whenever the importer changes."""
    import posekit.convert as convert

    h = hashlib.sha256()
    for name in IMPORTER_MODULES:
        h.update(name.encode() + (Path(convert.__file__).parent / name).read_bytes())
    return h.hexdigest()[:16]


def onnx_for(spec: ModelSpec, heads: Sequence[str] | None = None,
             input_shape: Sequence[int | None] | None = None, pixels: bool = False,
             nchw_outputs: Sequence[str] = (), batch: bool = False) -> Path:
    """Path of the ONNX import of ``spec`` (cut at ``heads``; with a pixel input when ``pixels``; ``nchw_outputs``
    channel-first; fed at ``spec.batch_input`` when ``batch``; see `load_network`), converting and caching it on
    first use."""
    from filelock import FileLock

    from posekit.hub.cache import mark_verified, onnx_dir, prune_onnx
    from posekit.hub.fetch import model_files
    from posekit.io import write_atomic

    outputs = sorted(_resolve_heads(spec, heads) or []) or None  # outputs are keyed by name: order is moot
    shape = list(input_shape if input_shape is not None else spec.input_shape)
    node, dtype, scale, offset = spec.input_node, spec.input_dtype, spec.input_scale, spec.input_offset
    if batch:
        if spec.batch_input is None:
            raise PosekitError(f"{spec.name} has no batch input; run it one image at a time")
        node, dtype, scale, offset, shape[0] = spec.batch_input, "float32", 1.0, 0.0, None  # raw float pixels
    files = model_files(spec.name)
    nchw = sorted(_resolve_heads(spec, nchw_outputs) or [])
    options = (["pixels"] if pixels else []) + ([["nchw", nchw]] if nchw else []) + (["batch"] if batch else [])
    key = json.dumps([converter_digest(), sorted(spec.files.items()), outputs, shape] + options, sort_keys=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    importer = converter_digest()[:8]
    target = onnx_dir() / f"{spec.name}-{importer}-{digest}.onnx"
    if onnx_intact(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if onnx_intact(target):
            return target
        if target.exists():
            print(f"posekit: the cached ONNX import of {spec.name} is damaged ({target.name}); rebuilding it",
                  file=sys.stderr)
        from posekit.convert.onnx_emit import emit_onnx
        from posekit.convert.tfjs import load_tfjs

        graph = load_tfjs(files[spec.graph_file])
        model = emit_onnx(graph, outputs, {node.rpartition(":")[0] or node: shape}, model_name=spec.name,
                          nchw_outputs=nchw)
        if pixels:
            from posekit.convert.onnx_input import with_pixel_input

            with_pixel_input(model, scale, offset, dtype, bgr=spec.channels == "BGR", nchw=spec.layout == "NCHW")
        data = model.SerializeToString()
        write_atomic(target, data)
        mark_verified(target, hashlib.sha256(data).hexdigest())  # sha256 recorded beside it, checked on each load
        prune_onnx(target.parent, spec.name, importer)  # imports by an older posekit are never read again
    return target


def onnx_intact(path: Path) -> bool:
    """True when the cached import ``path`` exists and matches the sha256 recorded beside it when it was written
    (a cheap check while size and mtime are unchanged; a file without a record counts as damaged)."""
    from posekit.hub.cache import file_ok, recorded_sha256

    sha = recorded_sha256(path)
    return sha is not None and file_ok(path, sha)


def load_network(name: str, heads: Sequence[str] | None = None, input_shape: Sequence[int | None] | None = None,
                 threads: int | None = None, pixels: bool = False, nchw_outputs: Sequence[str] = (),
                 batch: bool = False) -> Network:
    """Load zoo network ``name`` (see ``posekit models list``).

    heads: cut the graph at these tensors instead of its own outputs — names from the registry's ``heads``
    (e.g. MoveNet's ``heatmap``, ``center``, ``regress``, ``offset``) or TF.js tensor names; outputs are keyed
    by tensor name.  input_shape: override the input shape (e.g. PoseNet at 257x257: ``[1, 257, 257, 3]``;
    None entries stay dynamic).  threads: ONNX Runtime intra-op threads (default: all usable CPUs).
    pixels: the network takes RGB uint8 pixels [1, H, W, 3] (H, W as ``input_shape``'s, in NHWC even for NCHW
    models) and applies the registry's normalisation itself (channel order, ``input_scale``/``input_offset``,
    dtype, layout), so callers skip a float copy of every input.  nchw_outputs: 4-D outputs (head names or tensor
    names) to return channel-first, (N, C, H, W), as the importer computes them (per-channel work on big maps is
    then contiguous, and the graph skips a final transpose).  batch: a network whose graph takes one image gets a
    batch input instead ([N, H, W, 3], fed at the registry's ``batch_input``; raw 0..255 pixels as float32, or
    uint8 with ``pixels``), for top-down pipelines to run all person crops at once.
    """
    spec = get_spec(name)
    return Network(onnx_for(spec, heads, input_shape, pixels, nchw_outputs, batch), spec, threads=threads)
