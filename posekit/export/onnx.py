"""Export a training checkpoint to ONNX.  The file's ``metadata_props`` carry, under the key "posekit", the JSON of
`posekit.export.metadata.model_metadata` (skeleton, input size, margin, mean / std, head description), so the file
alone is enough to run it (`posekit.export.runtime`)."""

from __future__ import annotations

import io
import json
import os
import warnings
from pathlib import Path

from posekit.decode.heatmap import HEAD_OUTPUTS
from posekit.errors import PosekitError

METADATA_KEY = "posekit"
OPSET = 17


def export_bytes(checkpoint: str | os.PathLike, opset: int = OPSET) -> bytes:
    """The ONNX model (serialised, metadata included) of a checkpoint: input "image" (N, 3, H, W) float32,
    outputs named as `HEAD_OUTPUTS[head type]`, batch dimension dynamic."""
    import onnx

    from posekit.train import require_train_extra

    require_train_extra()
    import torch

    from posekit.train.checkpoint import load_checkpoint
    from posekit.train.config import config_from_dict
    from posekit.train.model import build_model

    ckpt = load_checkpoint(checkpoint)
    meta = ckpt.info["model"]
    model, head = build_model(config_from_dict(ckpt.info["config"]), meta["head"]["num_keypoints"])
    model.load_state_dict(ckpt.model_state())
    model.eval()
    names = list(HEAD_OUTPUTS[head["type"]])
    h, w = meta["input"]["size"]
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice; it needs no onnxscript
        torch.onnx.export(model, (torch.zeros(1, 3, h, w),), buf, input_names=["image"], output_names=names,
                          dynamic_axes={n: {0: "batch"} for n in ["image", *names]}, opset_version=opset,
                          dynamo=False)
    proto = onnx.load_from_string(buf.getvalue())
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(meta)
    proto.producer_name = "posekit"
    return proto.SerializeToString()


def export_onnx(checkpoint: str | os.PathLike, out: str | os.PathLike, opset: int = OPSET) -> Path:
    """Write the ONNX export of ``checkpoint`` to ``out`` atomically; returns the path."""
    out = Path(out)
    if out.suffix.lower() != ".onnx":
        raise PosekitError(f"the export file name must end in .onnx, got {out}")
    data = export_bytes(checkpoint, opset)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, out)
    return out
