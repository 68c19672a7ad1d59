"""Keypoint schemas as data: names, limb edges, left/right flip pairs, OKS sigmas, and mappings to COCO-17."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Skeleton:
    """A keypoint schema.

    ``edges`` are index pairs drawn as limbs; ``flip_pairs`` are (left, right) index pairs swapped by a
    horizontal flip; ``sigmas`` are COCO OKS per-keypoint constants (None when the schema has none);
    ``to_coco`` maps COCO-17 index -> this schema's index (None when the schema cannot be scored on COCO).
    """

    name: str
    keypoints: tuple[str, ...]
    edges: tuple[tuple[int, int], ...]
    flip_pairs: tuple[tuple[int, int], ...]
    sigmas: tuple[float, ...] | None = None
    to_coco: tuple[int, ...] | None = None
    colors: tuple[tuple[int, int, int], ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        k = len(self.keypoints)
        for a, b in (*self.edges, *self.flip_pairs):
            if not (0 <= a < k and 0 <= b < k):
                raise ValueError(f"skeleton {self.name}: index pair ({a}, {b}) out of range for {k} keypoints")
        if self.sigmas is not None and len(self.sigmas) != k:
            raise ValueError(f"skeleton {self.name}: {len(self.sigmas)} sigmas for {k} keypoints")

    @property
    def num_keypoints(self) -> int:
        return len(self.keypoints)

    def index(self, name: str) -> int:
        return self.keypoints.index(name)

    def flip_permutation(self) -> np.ndarray:
        """Index array p such that ``pose[p]`` swaps every left/right pair (for mirrored inputs)."""
        perm = np.arange(self.num_keypoints)
        for a, b in self.flip_pairs:
            perm[a], perm[b] = b, a
        return perm

    def map_to_coco(self, pose: np.ndarray) -> np.ndarray:
        """(K, C) array in this schema -> (17, C) in COCO-17 order. Raises if the schema has no mapping."""
        if self.to_coco is None:
            raise ValueError(f"skeleton {self.name} has no mapping to COCO-17")
        return np.asarray(pose)[list(self.to_coco)]


def _pairs(names: tuple[str, ...], pairs: list[tuple[str, str]]) -> tuple[tuple[int, int], ...]:
    return tuple((names.index(a), names.index(b)) for a, b in pairs)


def lr_pairs(names: tuple[str, ...]) -> tuple[tuple[int, int], ...]:
    """Pairs (left_x, right_x) found by name."""
    return tuple(
        (i, names.index("right_" + n[len("left_"):]))
        for i, n in enumerate(names)
        if n.startswith("left_") and "right_" + n[len("left_"):] in names
    )


COCO17_NAMES = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
)

COCO17 = Skeleton(
    name="coco17",
    keypoints=COCO17_NAMES,
    edges=_pairs(COCO17_NAMES, [
        ("nose", "left_eye"), ("nose", "right_eye"), ("left_eye", "left_ear"), ("right_eye", "right_ear"),
        ("left_shoulder", "right_shoulder"), ("left_shoulder", "left_elbow"), ("left_elbow", "left_wrist"),
        ("right_shoulder", "right_elbow"), ("right_elbow", "right_wrist"),
        ("left_shoulder", "left_hip"), ("right_shoulder", "right_hip"), ("left_hip", "right_hip"),
        ("left_hip", "left_knee"), ("left_knee", "left_ankle"),
        ("right_hip", "right_knee"), ("right_knee", "right_ankle"),
    ]),
    flip_pairs=lr_pairs(COCO17_NAMES),
    sigmas=(0.026, 0.025, 0.025, 0.035, 0.035, 0.079, 0.079, 0.072, 0.072, 0.062, 0.062,
            0.107, 0.107, 0.087, 0.087, 0.089, 0.089),
    to_coco=tuple(range(17)),
)

BLAZEPOSE33_NAMES = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye", "right_eye_outer",
    "left_ear", "right_ear", "mouth_left", "mouth_right",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_pinky", "right_pinky", "left_index", "right_index", "left_thumb", "right_thumb",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
    "left_heel", "right_heel", "left_foot_index", "right_foot_index",
)

BLAZEPOSE33 = Skeleton(
    name="blazepose33",
    keypoints=BLAZEPOSE33_NAMES,
    edges=_pairs(BLAZEPOSE33_NAMES, [
        ("nose", "left_eye_inner"), ("left_eye_inner", "left_eye"), ("left_eye", "left_eye_outer"),
        ("left_eye_outer", "left_ear"), ("nose", "right_eye_inner"), ("right_eye_inner", "right_eye"),
        ("right_eye", "right_eye_outer"), ("right_eye_outer", "right_ear"), ("mouth_left", "mouth_right"),
        ("left_shoulder", "right_shoulder"), ("left_shoulder", "left_elbow"), ("left_elbow", "left_wrist"),
        ("left_wrist", "left_pinky"), ("left_wrist", "left_index"), ("left_wrist", "left_thumb"),
        ("left_pinky", "left_index"), ("right_shoulder", "right_elbow"), ("right_elbow", "right_wrist"),
        ("right_wrist", "right_pinky"), ("right_wrist", "right_index"), ("right_wrist", "right_thumb"),
        ("right_pinky", "right_index"), ("left_shoulder", "left_hip"), ("right_shoulder", "right_hip"),
        ("left_hip", "right_hip"), ("left_hip", "left_knee"), ("left_knee", "left_ankle"),
        ("left_ankle", "left_heel"), ("left_heel", "left_foot_index"), ("left_ankle", "left_foot_index"),
        ("right_hip", "right_knee"), ("right_knee", "right_ankle"), ("right_ankle", "right_heel"),
        ("right_heel", "right_foot_index"), ("right_ankle", "right_foot_index"),
    ]),
    flip_pairs=lr_pairs(BLAZEPOSE33_NAMES)
    + _pairs(BLAZEPOSE33_NAMES, [("mouth_left", "mouth_right")]),
    to_coco=tuple(BLAZEPOSE33_NAMES.index(n) for n in COCO17_NAMES),
)

MPII16_NAMES = (
    "right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle",
    "pelvis", "thorax", "upper_neck", "head_top",
    "right_wrist", "right_elbow", "right_shoulder", "left_shoulder", "left_elbow", "left_wrist",
)

MPII16 = Skeleton(
    name="mpii16",
    keypoints=MPII16_NAMES,
    edges=_pairs(MPII16_NAMES, [
        ("right_ankle", "right_knee"), ("right_knee", "right_hip"), ("right_hip", "pelvis"),
        ("left_hip", "pelvis"), ("left_knee", "left_hip"), ("left_ankle", "left_knee"),
        ("pelvis", "thorax"), ("thorax", "upper_neck"), ("upper_neck", "head_top"),
        ("right_wrist", "right_elbow"), ("right_elbow", "right_shoulder"), ("right_shoulder", "thorax"),
        ("left_shoulder", "thorax"), ("left_elbow", "left_shoulder"), ("left_wrist", "left_elbow"),
    ]),
    flip_pairs=lr_pairs(MPII16_NAMES),
)

#: MPII-16 has no face points, so it maps only partly onto COCO-17: COCO index -> MPII index.
MPII16_TO_COCO17: dict[int, int] = {
    COCO17_NAMES.index(n): MPII16_NAMES.index(n) for n in COCO17_NAMES if n in MPII16_NAMES
}

SKELETONS: dict[str, Skeleton] = {s.name: s for s in (COCO17, BLAZEPOSE33, MPII16)}


def get_skeleton(name: str) -> Skeleton:
    """Look a skeleton up by name ('coco17', 'blazepose33', 'mpii16')."""
    try:
        return SKELETONS[name]
    except KeyError:
        raise KeyError(f"unknown skeleton {name!r}; known: {', '.join(SKELETONS)}") from None
