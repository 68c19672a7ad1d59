"""Pose accuracy metrics as small pure numpy functions: OKS, OKS-NMS, greedy matching, PCK, PCKh (MPII).

Coordinates are image pixels; a pose is a (K, 2+) array whose first two columns are x, y.  Ground truth is (K, 3)
with COCO visibility in column 2 (0 = not labelled, 1 = labelled but hidden, 2 = visible); "labelled" means v > 0.
"""

from __future__ import annotations

import math

import numpy as np

from posekit.decode.detection import greedy_match, oks_matrix  # noqa: F401 - the metrics vocabulary, defined once
from posekit.skeleton import MPII16_NAMES

#: COCO-17 torso diagonals (left_shoulder, right_hip) and (right_shoulder, left_hip), as keypoint indices.
COCO17_TORSO_DIAGONALS: tuple[tuple[int, int], ...] = ((5, 12), (6, 11))


def oks(pred: np.ndarray, gt: np.ndarray, area: float, sigmas: np.ndarray) -> float:
    """OKS of one prediction (K, 2+) against one ground truth (K, 3) of the given area (pixels^2)."""
    return float(oks_matrix(np.asarray(pred)[None], np.asarray(gt)[None], np.array([area]), sigmas)[0, 0])


def oks_nms(poses: np.ndarray, scores: np.ndarray, areas: np.ndarray, sigmas: np.ndarray, thr: float) -> np.ndarray:
    """Greedy non-maximum suppression by OKS: drop a pose whose OKS with a better-scored kept pose exceeds thr.

    poses (N, K, 2+) pixels (every keypoint counts); scores (N,); areas (N,) pixels^2 (e.g. box areas), used as the
    kept pose's area.  Returns the kept indices, best score first.
    """
    poses = np.asarray(poses, dtype=np.float64)
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    as_gt = np.concatenate([poses[..., :2], np.ones(poses.shape[:2] + (1,))], axis=-1) if len(poses) else poses
    keep: list[int] = []
    while order.size:
        best, rest = order[0], order[1:]
        keep.append(int(best))
        sim = oks_matrix(poses[rest], as_gt[best][None], np.asarray(areas)[[best]], sigmas)[:, 0]
        order = rest[sim <= thr]
    return np.array(keep, dtype=np.int64)


def torso_sizes(gts: np.ndarray, diagonals: tuple[tuple[int, int], ...] = COCO17_TORSO_DIAGONALS) -> np.ndarray:
    """Torso size of each ground truth (N, K, 3): the longest labelled torso diagonal in pixels, NaN if none is."""
    gts = np.asarray(gts, dtype=np.float64)
    lengths = []
    for a, b in diagonals:
        length = np.linalg.norm(gts[:, a, :2] - gts[:, b, :2], axis=-1)
        lengths.append(np.where((gts[:, a, 2] > 0) & (gts[:, b, 2] > 0), length, np.nan))
    return np.fmax.reduce(np.stack(lengths, axis=-1), axis=-1)


def pck_hits(pred: np.ndarray, gt: np.ndarray, norm: np.ndarray, alpha: float = 0.2) -> np.ndarray:
    """(N, K) bool: keypoint within alpha * norm pixels of the ground truth.  pred, gt (N, K, 2+); norm (N,)."""
    dist = np.linalg.norm(np.asarray(pred, np.float64)[..., :2] - np.asarray(gt, np.float64)[..., :2], axis=-1)
    return dist <= alpha * np.asarray(norm, dtype=np.float64)[:, None]


def _scored(vis: np.ndarray, norm: np.ndarray) -> np.ndarray:
    """Keypoints that count: labelled (vis (N, K) bool) on a person whose normaliser is finite."""
    return np.asarray(vis, dtype=bool) & np.isfinite(np.asarray(norm, dtype=np.float64))[:, None]


def pck(pred: np.ndarray, gt: np.ndarray, vis: np.ndarray, norm: np.ndarray, alpha: float = 0.2) -> float:
    """Fraction of correct keypoints (within alpha * norm) over all labelled keypoints, in [0, 1]; NaN if none.

    pred, gt (N, K, 2+) pixels; vis (N, K) bool labelled; norm (N,) pixels (people with a NaN norm are left out).
    """
    vis = _scored(vis, norm)
    if not vis.any():
        return float("nan")
    return float(pck_hits(pred, gt, norm, alpha)[vis].mean())


def per_joint_pck(
    pred: np.ndarray, gt: np.ndarray, vis: np.ndarray, norm: np.ndarray, alpha: float = 0.2
) -> np.ndarray:
    """(K,) PCK of each joint over the people where it is labelled; NaN for a joint never labelled (as `pck`)."""
    vis = _scored(vis, norm)
    hits = (pck_hits(pred, gt, norm, alpha) & vis).sum(0)
    count = vis.sum(0)
    return np.where(count > 0, hits / np.maximum(count, 1), np.nan)


#: PCKh normaliser: the head size is this factor times the head box diagonal (``SC_BIAS`` in the MPII evaluation).
HEAD_SIZE_FACTOR = 0.6


def head_sizes(headboxes: np.ndarray) -> np.ndarray:
    """(N, 4) x1, y1, x2, y2 head boxes (pixels) -> (N,) MPII head sizes, 0.6 x each box diagonal (pixels)."""
    boxes = np.asarray(headboxes, dtype=np.float64).reshape(-1, 4)
    return HEAD_SIZE_FACTOR * np.linalg.norm(boxes[:, 2:] - boxes[:, :2], axis=1)


#: The MPII PCKh table: row -> the MPII-16 joints it averages (right and left PCKh averaged, as the MPII code does).
PCKH_ROWS: dict[str, tuple[int, ...]] = {
    row: tuple(MPII16_NAMES.index(n) for n in names) for row, names in (
        ("Head", ("head_top",)), ("Shoulder", ("right_shoulder", "left_shoulder")),
        ("Elbow", ("right_elbow", "left_elbow")), ("Wrist", ("right_wrist", "left_wrist")),
        ("Hip", ("right_hip", "left_hip")), ("Knee", ("right_knee", "left_knee")),
        ("Ankle", ("right_ankle", "left_ankle")))
}
#: The conventional PCKh mean (HRNet, MMPose) pools every labelled joint except these two.
PCKH_MEAN_EXCLUDES: tuple[int, ...] = (MPII16_NAMES.index("pelvis"), MPII16_NAMES.index("thorax"))


def pckh(pred: np.ndarray, gt: np.ndarray, vis: np.ndarray, head_size: np.ndarray, alpha: float = 0.5
         ) -> dict[str, float]:
    """PCKh@alpha of MPII-16 poses: a joint is correct within alpha x the person's head size (see `head_sizes`).

    pred, gt (N, 16, 2+) pixels; vis (N, 16) bool labelled (only labelled joints count); head_size (N,) pixels.
    Returns fractions in [0, 1]: the table rows of `PCKH_ROWS` (left/right joint PCKh averaged; a side never
    labelled is left out), "Mean" (all labelled joints pooled except pelvis and thorax, as HRNet and MMPose report
    it) and "Mean (all 16)"; NaN where no joint counts.
    """
    per_joint = per_joint_pck(pred, gt, vis, head_size, alpha)
    keep = [k for k in range(per_joint.size) if k not in PCKH_MEAN_EXCLUDES]
    table = {}
    for row, joints in PCKH_ROWS.items():
        values = per_joint[list(joints)]
        values = values[~np.isnan(values)]
        table[row] = float(values.mean()) if values.size else float("nan")
    return {**table, "Mean": pck(np.asarray(pred)[:, keep], np.asarray(gt)[:, keep], np.asarray(vis)[:, keep],
                                 head_size, alpha),
            "Mean (all 16)": pck(pred, gt, vis, head_size, alpha)}


def finite_or_none(value: float) -> float | None:
    """A metric for JSON reports: None where it is undefined (NaN: nothing to count), else a float."""
    return None if math.isnan(value) else float(value)
