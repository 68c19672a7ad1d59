"""The result vocabulary: a `Pose` is a (K, 3) float array (x, y, score) in original-image pixels;
a `Person` bundles a pose with its box, score, optional 3-D keypoints and track id."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from posekit.skeleton import COCO17, Skeleton

Pose = np.ndarray  # (K, 3) float32: x, y in image pixels, score in [0, 1]


@dataclass
class Person:
    """One detected person.

    keypoints: (K, 3) x, y (image pixels), score.  box: (4,) x1, y1, x2, y2 in image pixels.
    keypoints_3d: (K, 3) metres, hip-centred (BlazePose world landmarks) or None.
    """

    keypoints: np.ndarray
    box: np.ndarray | None = None
    score: float = 0.0
    skeleton: Skeleton = COCO17
    keypoints_3d: np.ndarray | None = None
    track_id: int | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.keypoints = np.asarray(self.keypoints, dtype=np.float32)
        if self.keypoints.ndim != 2 or self.keypoints.shape[1] != 3:
            raise ValueError(f"keypoints must be (K, 3), got {self.keypoints.shape}")
        if self.box is None:
            self.box = box_from_keypoints(self.keypoints)
        self.box = np.asarray(self.box, dtype=np.float32).reshape(4)

    def to_coco(self) -> np.ndarray:
        """Keypoints as (17, 3) in COCO-17 order (raises for schemas without a mapping)."""
        return self.skeleton.map_to_coco(self.keypoints)

    def coco_record(self, image_id: int, category_id: int = 1) -> dict[str, Any]:
        """One COCO keypoint results entry: COCO-17 [x, y, score] * 17 in pixels, the person's score."""
        flat = [v for x, y, s in self.to_coco() for v in (round(float(x), 2), round(float(y), 2), round(float(s), 4))]
        return {"image_id": int(image_id), "category_id": int(category_id), "keypoints": flat,
                "score": round(float(self.score), 5)}

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly view: named keypoints, box, score, 3-D keypoints and track id when present."""
        out: dict[str, Any] = {
            "score": round(float(self.score), 5),
            "box": [round(float(v), 2) for v in self.box],
            "keypoints": {
                name: [round(float(x), 2), round(float(y), 2), round(float(s), 4)]
                for name, (x, y, s) in zip(self.skeleton.keypoints, self.keypoints)
            },
        }
        if self.keypoints_3d is not None:
            out["keypoints_3d"] = {
                name: [round(float(v), 4) for v in p] for name, p in zip(self.skeleton.keypoints, self.keypoints_3d)
            }
        if self.track_id is not None:
            out["track_id"] = int(self.track_id)
        return out


def box_from_keypoints(keypoints: np.ndarray, min_score: float = 0.0) -> np.ndarray:
    """Tight (x1, y1, x2, y2) box around keypoints scoring above min_score (all if none do)."""
    kp = np.asarray(keypoints, dtype=np.float32)
    sel = kp[kp[:, 2] > min_score] if np.any(kp[:, 2] > min_score) else kp
    return np.array([sel[:, 0].min(), sel[:, 1].min(), sel[:, 0].max(), sel[:, 1].max()], dtype=np.float32)
