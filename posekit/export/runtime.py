"""Run a trained top-down model with ONNX Runtime (no torch): an exported .onnx file, or a training checkpoint
(exported in memory first, which needs the [train] extra).  Coordinates out are original-image pixels."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from posekit.decode.heatmap import decode_outputs
from posekit.errors import PosekitError
from posekit.export.metadata import input_spec, skeleton_from_dict
from posekit.export.onnx import METADATA_KEY
from posekit.transforms import apply_affine, crop_box, invert_affine, whole_image
from posekit.types import Person


def load_exported(path: str | os.PathLike) -> tuple[Any, dict[str, Any]]:
    """(onnxruntime.InferenceSession, model description dict) of an exported .onnx file or of a checkpoint
    (.safetensors).  PosekitError when the file is missing or carries no posekit metadata."""
    import onnxruntime as ort

    path = Path(path)
    if not path.is_file():
        raise PosekitError(f"model file {path} not found")
    if path.suffix == ".safetensors":
        from posekit.export.onnx import export_bytes

        source: bytes | str = export_bytes(path)
    else:
        source = str(path)
    try:
        session = ort.InferenceSession(source, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types for unreadable models
        raise PosekitError(f"cannot load {path} with ONNX Runtime ({exc})") from None
    props = session.get_modelmeta().custom_metadata_map
    if METADATA_KEY not in props:
        raise PosekitError(f"{path} has no posekit metadata; it is not a model exported by posekit export")
    meta = json.loads(props[METADATA_KEY])
    input_spec(meta)  # checks the format
    return session, meta


def run_crops(session: Any, meta: dict[str, Any], crops: np.ndarray) -> np.ndarray:
    """Keypoints (N, K, 3) in input pixels for crops (N, H, W, 3) uint8 RGB of the model's input size."""
    spec = input_spec(meta)
    names = [o.name for o in session.get_outputs()]
    values = session.run(names, {session.get_inputs()[0].name: spec.normalize(crops)})
    return decode_outputs(meta["head"], dict(zip(names, values)), spec.size_hw)


def estimate(session: Any, meta: dict[str, Any], image: np.ndarray, boxes: np.ndarray | None = None) -> list[Person]:
    """One `Person` per box (N, 4) x1, y1, x2, y2 in image pixels (the whole image when None), keypoints in image
    pixels; a person's score is the mean of its keypoint scores."""
    spec = input_spec(meta)
    boxes = whole_image(image)[None] if boxes is None else np.asarray(boxes, np.float32).reshape(-1, 4)
    if not len(boxes):
        return []
    crops, affines = zip(*(crop_box(image, box, spec.size_hw, spec.margin) for box in boxes))
    kps = run_crops(session, meta, np.stack(crops))
    skeleton = skeleton_from_dict(meta["skeleton"])
    people = []
    for k, m, box in zip(kps, affines, boxes):
        pts = apply_affine(k, invert_affine(m))
        people.append(Person(pts, box=box, score=float(pts[:, 2].mean()), skeleton=skeleton))
    return people
