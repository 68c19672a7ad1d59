"""What travels with a trained model (checkpoint or exported ONNX) so it can be used without its config:
skeleton, input size, crop margin, normalisation and the head description.  Plain JSON-able dicts, no torch."""

from __future__ import annotations

from typing import Any

from posekit.data.topdown import InputSpec
from posekit.errors import PosekitError
from posekit.skeleton import Skeleton

FORMAT = "posekit-topdown-1"


def skeleton_to_dict(s: Skeleton) -> dict[str, Any]:
    return {
        "name": s.name, "keypoints": list(s.keypoints), "edges": [list(e) for e in s.edges],
        "flip_pairs": [list(p) for p in s.flip_pairs], "sigmas": None if s.sigmas is None else list(s.sigmas),
        "to_coco": None if s.to_coco is None else list(s.to_coco),
    }


def skeleton_from_dict(d: dict[str, Any]) -> Skeleton:
    return Skeleton(
        name=d["name"], keypoints=tuple(d["keypoints"]), edges=tuple(tuple(e) for e in d["edges"]),
        flip_pairs=tuple(tuple(p) for p in d["flip_pairs"]),
        sigmas=None if d.get("sigmas") is None else tuple(d["sigmas"]),
        to_coco=None if d.get("to_coco") is None else tuple(d["to_coco"]),
    )


def model_metadata(skeleton: Skeleton, spec: InputSpec, head: dict[str, Any]) -> dict[str, Any]:
    """The description of a trained top-down model: {"format", "skeleton", "input", "head"}.

    input: {"size": [H, W], "margin", "mean", "std", "layout": "NCHW", "color": "RGB"}: the network takes
    (rgb - mean) / std of a box crop made with `posekit.transforms.crop_box(image, box, size, margin)`.
    """
    return {
        "format": FORMAT,
        "skeleton": skeleton_to_dict(skeleton),
        "input": {"size": list(spec.size_hw), "margin": spec.margin, "mean": list(spec.mean), "std": list(spec.std),
                  "layout": "NCHW", "color": "RGB"},
        "head": dict(head),
    }


def input_spec(meta: dict[str, Any]) -> InputSpec:
    """The `InputSpec` a model description names."""
    if meta.get("format") != FORMAT:
        raise PosekitError(f"not a posekit trained-model description (format {meta.get('format')!r}, "
                           f"expected {FORMAT!r}); export it with posekit export")
    i = meta["input"]
    return InputSpec(tuple(i["size"]), i["margin"], tuple(i["mean"]), tuple(i["std"]))
