"""PoseNet (MobileNetV1) pre-processing and decoding: single pose by per-joint argmax, multi-pose by PersonLab's
greedy part-based decoding along a 16-edge tree.

Network outputs (batch axis removed): heatmap (H, W, 17) logits; offsets (H, W, 34) = 17 y then 17 x (pixels);
displacements fwd/bwd (H, W, 32) = 16 edges y then 16 edges x (pixels). Keypoints come out as (17, 3) x, y, score
in input-tensor pixels; map them to the image with ``transforms.apply_affine`` and the affine from ``preprocess``.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from posekit.decode import sigmoid
from posekit.errors import PosekitError
from posekit.io import as_rgb
from posekit.skeleton import COCO17_NAMES
from posekit.transforms import Affine, invert_affine, letterbox

OUTPUT_STRIDE = 16

#: (parent, child) COCO-17 indices of the tree PoseNet's displacement channels follow, in channel order
#: (PersonLab, Papandreou et al. 2018; the nose is the root).
TREE_EDGES: tuple[tuple[int, int], ...] = tuple(
    (COCO17_NAMES.index(a), COCO17_NAMES.index(b))
    for a, b in (
        ("nose", "left_eye"), ("left_eye", "left_ear"), ("nose", "right_eye"), ("right_eye", "right_ear"),
        ("nose", "left_shoulder"), ("left_shoulder", "left_elbow"), ("left_elbow", "left_wrist"),
        ("left_shoulder", "left_hip"), ("left_hip", "left_knee"), ("left_knee", "left_ankle"),
        ("nose", "right_shoulder"), ("right_shoulder", "right_elbow"), ("right_elbow", "right_wrist"),
        ("right_shoulder", "right_hip"), ("right_hip", "right_knee"), ("right_knee", "right_ankle"),
    )
)


def input_size_ok(size: int, stride: int = OUTPUT_STRIDE) -> bool:
    """PoseNet input sides must be ``k * stride + 1`` so output cells land on input pixels."""
    return size > 1 and (size - 1) % stride == 0


def preprocess(
    image_rgb: np.ndarray, size: int | tuple[int, int] = 385, output_stride: int = OUTPUT_STRIDE
) -> tuple[np.ndarray, Affine]:
    """RGB image (H, W, 3) uint8 (anything ``io.as_rgb`` takes) -> (uint8 [1, h, w, 3] pixels, for the network
    loaded with ``pixels=True`` (which feeds x / 127.5 - 1); M input px -> image px).

    The image is letterboxed (zero padding, centred) to ``size`` (an int for square, or (h, w)).
    """
    h, w = (size, size) if isinstance(size, int) else size
    if not (input_size_ok(h, output_stride) and input_size_ok(w, output_stride)):
        raise PosekitError(
            f"PoseNet input size {h}x{w} does not fit output stride {output_stride}; "
            f"use sides of the form k*{output_stride}+1 such as 257, 385 or 513"
        )
    resized, m = letterbox(as_rgb(image_rgb), (h, w))
    return resized[None], invert_affine(m)


def _check(heatmap: np.ndarray, offsets: np.ndarray) -> tuple[int, int, int]:
    if heatmap.ndim != 3 or offsets.shape != (*heatmap.shape[:2], 2 * heatmap.shape[2]):
        raise ValueError(f"expected heatmap (H, W, K) and offsets (H, W, 2K), got {heatmap.shape} and {offsets.shape}")
    return heatmap.shape


def _xy_pairs(field: np.ndarray) -> np.ndarray:
    """(H, W, 2N) laid out as N y channels then N x channels -> (H, W, N, 2) as (x, y)."""
    n = field.shape[2] // 2
    return np.stack([field[..., n:], field[..., :n]], axis=-1).astype(np.float32)


def decode_single(heatmap: np.ndarray, offsets: np.ndarray, output_stride: int = OUTPUT_STRIDE) -> np.ndarray:
    """One pose: each joint at its heatmap argmax cell, ``cell * stride + offset``; score = sigmoid(logit).

    heatmap (H, W, K) logits, offsets (H, W, 2K). Returns (K, 3) float32 x, y (input pixels), score.
    """
    h, w, k = _check(heatmap, offsets)
    scores = sigmoid(heatmap).reshape(h * w, k)
    best = scores.argmax(axis=0)
    iy, ix = np.divmod(best, w)
    joints = np.arange(k)
    xy = np.stack([ix, iy], axis=-1) * output_stride + _xy_pairs(offsets)[iy, ix, joints]
    return np.column_stack([xy, scores[best, joints]]).astype(np.float32)


def local_maxima(scores: np.ndarray, threshold: float, radius: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cells (y, x, k) with ``scores >= threshold`` and no larger score within ``radius`` cells (a square window).

    scores (H, W, K). Returns index arrays iy, ix, k sorted by decreasing score (stable).
    """
    side = 2 * int(radius) + 1
    scores = np.asarray(scores, dtype=np.float32)
    # grey dilation = the window maximum; cv2 treats outside the map as -inf, as the window test needs
    window_max = cv2.dilate(scores, np.ones((side, side), np.uint8)).reshape(scores.shape)
    iy, ix, k = np.nonzero((scores >= threshold) & (scores >= window_max))
    order = np.argsort(-scores[iy, ix, k], kind="stable")
    return iy[order], ix[order], k[order]


def _cell(x: float, y: float, stride: int, h: int, w: int) -> tuple[int, int]:
    """Nearest output cell (iy, ix) of an input-pixel point, rounding halves up like JS Math.round."""
    return min(max(math.floor(y / stride + 0.5), 0), h - 1), min(max(math.floor(x / stride + 0.5), 0), w - 1)


def _traverse(
    x: float, y: float, edge: int, target: int, disp_xy: np.ndarray, scores: np.ndarray, off_xy: np.ndarray,
    stride: int, refine_steps: int,
) -> tuple[float, float, float]:
    """Follow displacement ``edge`` from a known joint at (x, y) to joint ``target``; refine with its short-range
    offsets.  Python floats: a handful of values per step, where numpy's per-call cost would dominate.

    Returns x, y, score of the target joint.
    """
    h, w = scores.shape[:2]
    iy, ix = _cell(x, y, stride, h, w)
    x, y = x + disp_xy.item(iy, ix, edge, 0), y + disp_xy.item(iy, ix, edge, 1)
    for _ in range(refine_steps):
        iy, ix = _cell(x, y, stride, h, w)
        x, y = ix * stride + off_xy.item(iy, ix, target, 0), iy * stride + off_xy.item(iy, ix, target, 1)
    iy, ix = _cell(x, y, stride, h, w)
    return x, y, scores.item(iy, ix, target)


def _grow(
    root: int, root_pose: tuple[float, float, float], scores: np.ndarray, off_xy: np.ndarray, fwd_xy: np.ndarray,
    bwd_xy: np.ndarray, stride: int, refine_steps: int,
) -> np.ndarray:
    """Whole pose (K, 3) from one root joint: up the tree with backward displacements, then down with forward."""
    pose: list[tuple[float, float, float] | None] = [None] * scores.shape[2]
    pose[root] = root_pose
    for edge in reversed(range(len(TREE_EDGES))):
        parent, child = TREE_EDGES[edge]
        if pose[child] is not None and pose[parent] is None:
            pose[parent] = _traverse(*pose[child][:2], edge, parent, bwd_xy, scores, off_xy, stride, refine_steps)
    for edge, (parent, child) in enumerate(TREE_EDGES):
        if pose[parent] is not None and pose[child] is None:
            pose[child] = _traverse(*pose[parent][:2], edge, child, fwd_xy, scores, off_xy, stride, refine_steps)
    return np.array(pose, dtype=np.float32)


def _near(points: list[tuple[float, float]], x: float, y: float, radius_sq: float) -> bool:
    """Is (x, y) within sqrt(radius_sq) of any of ``points`` (input pixels)?"""
    return any((px - x) ** 2 + (py - y) ** 2 <= radius_sq for px, py in points)


def decode_multi(
    heatmap: np.ndarray,
    offsets: np.ndarray,
    disp_fwd: np.ndarray,
    disp_bwd: np.ndarray,
    output_stride: int = OUTPUT_STRIDE,
    max_people: int = 10,
    score_threshold: float = 0.5,
    nms_radius: float = 20,
    local_max_radius: int = 1,
    refine_steps: int = 2,
) -> list[tuple[np.ndarray, float]]:
    """PersonLab greedy decoding of several poses.

    Root candidates are heatmap local maxima (square window of ``local_max_radius`` cells) scoring at least
    ``score_threshold``, taken in decreasing score order; a root within ``nms_radius`` input pixels of the same
    joint of an already decoded person is skipped. Each pose is grown along ``TREE_EDGES`` with the
    displacements and refined ``refine_steps`` times with the short-range offsets. A pose's score is the sum
    of its joint scores not within ``nms_radius`` of the same joint of an earlier pose, divided by K.

    Inputs as in the module docstring. Returns up to ``max_people`` (pose (K, 3) x, y, score in input pixels,
    score) in decoding order.
    """
    h, w, k = _check(heatmap, offsets)
    num_edges = len(TREE_EDGES)
    if k != num_edges + 1 or disp_fwd.shape != (h, w, 2 * num_edges) or disp_bwd.shape != disp_fwd.shape:
        raise ValueError(f"expected 17 joints and (H, W, 32) displacements, got heatmap {heatmap.shape}, "
                         f"displacements {disp_fwd.shape} / {disp_bwd.shape}")
    scores = sigmoid(heatmap)
    off_xy, fwd_xy, bwd_xy = _xy_pairs(offsets), _xy_pairs(disp_fwd), _xy_pairs(disp_bwd)
    iy, ix, kk = local_maxima(scores, score_threshold, local_max_radius)
    roots_xy = np.stack([ix, iy], axis=-1).astype(np.float32) * output_stride + off_xy[iy, ix, kk]
    # decoded joints by joint index, (x, y) in input pixels: the NMS tests compare a handful of points, in Python
    found: list[list[tuple[float, float]]] = [[] for _ in range(k)]
    radius_sq = float(nms_radius) ** 2
    people: list[tuple[np.ndarray, float]] = []
    for y, x, joint, (root_x, root_y) in zip(iy.tolist(), ix.tolist(), kk.tolist(), roots_xy.tolist()):
        if len(people) >= max_people:
            break
        if _near(found[joint], root_x, root_y, radius_sq):
            continue
        pose = _grow(joint, (root_x, root_y, float(scores[y, x, joint])), scores, off_xy, fwd_xy, bwd_xy,
                     output_stride, refine_steps)
        joints_xy = pose[:, :2].tolist()
        unclaimed = [not _near(found[j], px, py, radius_sq) for j, (px, py) in enumerate(joints_xy)]
        for j, point in enumerate(joints_xy):
            found[j].append(tuple(point))
        people.append((pose, float(pose[unclaimed, 2].sum() / k)))
    return people
