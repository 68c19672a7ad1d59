"""BlazePose decoding: the 224x224 person detector (SSD anchors, box/keypoint regression, weighted NMS),
the detection -> rotated region of interest (ROI) step, and the 256x256 landmark model outputs.

Constants follow MediaPipe's pose graphs (``modules/pose_detection/pose_detection_cpu.pbtxt``,
``modules/pose_landmark/pose_detection_to_roi.pbtxt``, ``pose_landmarks_to_roi.pbtxt`` and
``tensors_to_pose_landmarks_and_segmentation.pbtxt``), which these models were trained with.

Rotation convention (MediaPipe's): a crop turned by ``rotation`` radians has its x axis along
(cos r, sin r) and its y axis along (-sin r, cos r) in image pixels (y pointing down); an upright
person gives r = 0, a person lying with the head to the right gives r = +pi/2.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from posekit.decode import sigmoid
from posekit.decode.detection import weighted_nms
from posekit.io import as_rgb
from posekit.skeleton import BLAZEPOSE33
from posekit.transforms import Affine, crop_box, invert_affine, letterbox

DETECTOR_INPUT_SIZE = 224
LANDMARK_INPUT_SIZE = 256
#: SSD feature-map strides of the detector; equal neighbours share one map (8: 28x28, 16: 14x14, 32: 7x7).
ANCHOR_STRIDES = (8, 16, 32, 32, 32)
#: Anchors per cell per layer: one per aspect ratio (1.0) plus MediaPipe's interpolated-scale anchor.
ANCHORS_PER_LAYER = 2
#: Output tensor names of the zoo graphs (TF.js names, as ``Network.run`` keys them).
DETECTOR_OUTPUT = "Identity:0"
LANDMARK_OUTPUTS = {"ld_3d": "Identity_2:0", "world_3d": "Identity_4:0", "poseflag": "Identity_3:0",
                    "heatmap": "Identity:0"}
#: Columns of the detector output [N, 13]: score logit, box (dx, dy, w, h), 4 keypoints (x, y).
DETECTOR_COLUMNS = 13
#: Detection keypoints: 0 hip centre, 1 full-body size/rotation point, 2 shoulder centre, 3 upper-body point.
NUM_DETECTION_KEYPOINTS = 4
#: ROI side = 2 x |kp1 - kp0| x ROI_SCALE (both for detections and for tracking from auxiliary landmarks).
ROI_SCALE = 1.25
#: The landmark model predicts 33 body points + 2 auxiliary ROI points (hip centre, scale point) + 4 unused.
NUM_MODEL_LANDMARKS = 39
NUM_LANDMARKS = BLAZEPOSE33.num_keypoints
AUX_SLICE = slice(33, 35)
#: Heatmap refinement (MediaPipe RefineLandmarksFromHeatmapCalculator): window and minimum peak.
REFINE_KERNEL = 7
REFINE_MIN_CONFIDENCE = 0.5


@dataclass
class Detection:
    """One BlazePose detector hit. box: (4,) x1, y1, x2, y2 and keypoints: (4, 2) x, y, both in
    detector-input pixels; keypoint order as ``NUM_DETECTION_KEYPOINTS`` describes. The box covers the face
    (as in MediaPipe); the body is located by the keypoints, see ``detection_to_roi``."""

    box: np.ndarray
    score: float
    keypoints: np.ndarray


class Roi(NamedTuple):
    """A square, rotated region: center (2,) and size (side) in pixels, rotation in radians
    (``preprocess_landmarks`` crops it)."""

    center: np.ndarray
    size: float
    rotation: float

    @property
    def box(self) -> np.ndarray:
        """The unrotated square (4,) x1, y1, x2, y2 with this centre and side."""
        half = self.size / 2
        return np.array([self.center[0] - half, self.center[1] - half, self.center[0] + half,
                         self.center[1] + half], dtype=np.float32)


@dataclass
class BlazePoseLandmarks:
    """Landmark-model result in crop pixels.

    keypoints: (33, 3) x, y (crop pixels), score = sigmoid(visibility logit).
    presence: (33,) probability that each point lies inside the crop.
    world: (33, 3) metres, origin between the hips, axes of the crop (``landmarks_to_image`` turns them).
    aux: (2, 2) crop pixels: hip centre and scale/rotation point, for the next frame's ROI.
    pose_score: probability that the crop holds a pose (MediaPipe drops the pose below 0.5).
    """

    keypoints: np.ndarray
    presence: np.ndarray
    world: np.ndarray
    aux: np.ndarray
    pose_score: float


def generate_anchors(
    input_size: int = DETECTOR_INPUT_SIZE,
    strides: tuple[int, ...] = ANCHOR_STRIDES,
    anchors_per_layer: int = ANCHORS_PER_LAYER,
    offset: float = 0.5,
) -> np.ndarray:
    """SSD anchor centres, (N, 2) x, y normalised to [0, 1], in the detector's output order.

    MediaPipe SsdAnchorsCalculator with ``fixed_anchor_size: true`` (every anchor is 1 x 1, so only
    centres matter): consecutive layers with the same stride share one ceil(input/stride)^2 grid,
    ordered row, column, then anchor. 2254 anchors for the 224 detector.
    """
    centres = []
    first = 0
    while first < len(strides):
        last = first
        while last < len(strides) and strides[last] == strides[first]:
            last += 1
        side = math.ceil(input_size / strides[first])
        ys, xs = np.meshgrid(np.arange(side), np.arange(side), indexing="ij")
        grid = np.stack([(xs + offset) / side, (ys + offset) / side], axis=-1).reshape(-1, 2)
        centres.append(np.repeat(grid, anchors_per_layer * (last - first), axis=0))
        first = last
    return np.concatenate(centres).astype(np.float32)


@functools.cache
def _box_decoding(input_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Matrices D (12, 12), O (2, 12) with ``rows @ D + anchors @ O`` = x1, y1, x2, y2, then the 4 keypoints' x, y
    (input pixels), for detector rows (box dx, dy, w, h, then keypoints) and normalised anchor centres."""
    d = np.eye(DETECTOR_COLUMNS - 1)
    d[:, :4] = 0.0
    d[0, [0, 2]] = d[1, [1, 3]] = 1.0  # corners = centre -+ size / 2
    d[2, [0, 2]] = d[3, [1, 3]] = -0.5, 0.5
    o = np.zeros((2, DETECTOR_COLUMNS - 1))
    o[0, 0::2] = o[1, 1::2] = input_size
    d.setflags(write=False)
    o.setflags(write=False)
    return d, o


def decode_detections(
    raw: np.ndarray | Mapping[str, np.ndarray],
    anchors: np.ndarray,
    score_thr: float = 0.5,
    input_size: int = DETECTOR_INPUT_SIZE,
    iou_thr: float = 0.3,
    back: Affine | None = None,
) -> list[Detection]:
    """Detector output ``Identity:0`` ([1,] N, 13; or the outputs dict) -> detections, best first, in
    detector-input pixels, or in image pixels through ``back`` (input px -> image px, a letterbox or an upright
    crop: no rotation, so boxes stay axis-aligned).

    Score = sigmoid(logit) (MediaPipe clips logits to +-100 first, which changes no score); kept when
    >= ``score_thr``. Box centre and keypoints are offsets in input pixels from the anchor centre, box
    width/height are in input pixels (MediaPipe: x/y/w/h scale = input size, anchor size 1). Boxes with negative
    size are dropped, the rest merged by weighted NMS (IoU > ``iou_thr``).
    """
    raw = np.asarray(raw[DETECTOR_OUTPUT] if isinstance(raw, Mapping) else raw, dtype=np.float32)
    if raw.shape[-1] != DETECTOR_COLUMNS or raw.size // DETECTOR_COLUMNS != len(anchors):
        raise ValueError(f"expected detector output of shape [1, {len(anchors)}, {DETECTOR_COLUMNS}], got {raw.shape}")
    raw = raw.reshape(-1, DETECTOR_COLUMNS)
    p = min(max(score_thr, 1e-6), 1 - 1e-6)
    index = np.flatnonzero(raw[:, 0] >= math.log(p / (1 - p)) - 1e-3)  # the margin covers rounding
    rows = raw[index]
    keep, scores = [], []  # the few hits: scores in Python floats
    for i, (logit, w, h) in enumerate(rows[:, [0, 3, 4]].tolist()):
        score = 1.0 / (1.0 + math.exp(-logit))
        if score >= score_thr and w >= 0 and h >= 0:
            keep.append(i)
            scores.append(score)
    d, o = _box_decoding(input_size)
    values = rows[keep, 1:] @ d + np.reshape(anchors, (-1, 2))[index[keep]] @ o
    merged, merged_scores = weighted_nms(values, scores, iou_thr)
    points = merged.reshape(len(merged), DETECTOR_COLUMNS // 2, 2)  # 2 corners, then the keypoints
    if back is not None:
        m = np.asarray(back, dtype=np.float64)
        points = points @ m[:, :2].T + m[:, 2]
    points = points.astype(np.float32)
    return [Detection(p[:2].reshape(4), score, p[2:]) for p, score in zip(points, merged_scores)]


def normalize_radians(angle: float) -> float:
    """Angle wrapped into [-pi, pi)."""
    return float(angle - 2 * math.pi * math.floor((angle + math.pi) / (2 * math.pi)))


def alignment_roi(center: np.ndarray, scale_point: np.ndarray, scale: float = ROI_SCALE) -> Roi:
    """Square ROI from two alignment points (pixels): centred on ``center``, side
    2 x |scale_point - center| x ``scale``, rotated so that ``scale_point`` lies straight above the centre
    (MediaPipe AlignmentPointsRectsCalculator, target angle 90 deg, + RectTransformation)."""
    x0, y0, x1, y1 = np.concatenate([np.reshape(center, 2), np.reshape(scale_point, 2)]).tolist()
    size = 2.0 * math.hypot(x1 - x0, y1 - y0) * scale
    rotation = normalize_radians(math.pi / 2 - math.atan2(-(y1 - y0), x1 - x0))
    return Roi(np.array([x0, y0], dtype=np.float32), float(size), rotation)


def detection_to_roi(det: Detection, scale: float = ROI_SCALE) -> Roi:
    """Full-body ROI of a detection (hip centre and scale point), in the detection's pixel frame."""
    return alignment_roi(det.keypoints[0], det.keypoints[1], scale)


@functools.cache
def _refine_window(kernel_size: int) -> tuple[np.ndarray, np.ndarray]:
    """A ``kernel_size`` square window as (2, ks * ks) col, row offsets (int64) and (ks * ks, 3) float64 columns
    col offset, row offset, 1 (weights @ them = the weighted offset sums and the total)."""
    d = np.arange(kernel_size) - (kernel_size - 1) // 2
    offsets = np.stack([np.tile(d, kernel_size), np.repeat(d, kernel_size)])
    sums = np.column_stack([offsets.T, np.ones(kernel_size * kernel_size)]).astype(np.float64)
    offsets.setflags(write=False)
    sums.setflags(write=False)
    return offsets, sums


def refine_with_heatmap(
    xy: np.ndarray,
    heatmap: np.ndarray,
    input_size: int = LANDMARK_INPUT_SIZE,
    kernel_size: int = REFINE_KERNEL,
    min_confidence: float = REFINE_MIN_CONFIDENCE,
) -> np.ndarray:
    """Replace each point by the heatmap-weighted mean cell of the ``kernel_size`` window around it,
    where the window's peak is >= ``min_confidence`` (MediaPipe RefineLandmarksFromHeatmapCalculator).

    xy: (K, 2) input pixels. heatmap: ([1,] H, W, K) probabilities (the zoo graphs apply the sigmoid).
    Cell (row, col) maps to (col, row) x input_size / W, as in MediaPipe. Points outside stay as they are.
    Few numpy calls on small arrays (this runs per crop, right after the network): one gather of every window,
    one matrix product for the sums.
    """
    hm = np.asarray(heatmap, dtype=np.float32)
    rows, cols, k = hm.shape[-3:]
    xy = np.asarray(xy, dtype=np.float32)
    if xy.shape != (k, 2):
        raise ValueError(f"expected ({k}, 2) points for a heatmap with {k} channels, got {xy.shape}")
    offsets, sums = _refine_window(kernel_size)
    grid = np.array([[cols], [rows]])
    cell = np.floor(xy * np.float32(1 / input_size) * grid.T).astype(np.int64)  # (K, 2) col, row
    window = cell[:, :, None] + offsets  # (K, 2, ks * ks) cols, rows
    # cells off the heatmap (negative ones wrap to huge unsigned values) count as zero: they add nothing to a
    # window's sum and (min_confidence > 0) cannot raise its peak; "clip" only keeps their gather in bounds
    on_map = (window.view(np.uint64) < grid.astype(np.uint64)).all(axis=1)  # (K, ks * ks)
    flat = (window[:, 1] * cols + window[:, 0]) * k + np.arange(k)[:, None]
    weights = hm.reshape(-1).take(flat, mode="clip") * on_map
    found = weights @ sums  # (K, 3): weighted col and row offsets, total
    centre = (kernel_size * kernel_size) // 2
    use = on_map[:, centre] & (weights.max(axis=1) >= min_confidence) & (found[:, 2] > 0)
    refined = (cell + found[:, :2] / np.where(use, found[:, 2], 1.0)[:, None]) * (input_size / grid.T)
    return np.where(use[:, None], refined, xy).astype(np.float32)


def decode_landmarks(
    ld_3d: np.ndarray,
    world_3d: np.ndarray,
    poseflag: np.ndarray | float,
    heatmap: np.ndarray | None = None,
    input_size: int = LANDMARK_INPUT_SIZE,
) -> BlazePoseLandmarks:
    """Landmark-model outputs -> ``BlazePoseLandmarks`` in crop (model-input) pixels.

    ld_3d: [1, 195] = 39 x (x, y, z, visibility logit, presence logit), x, y in input pixels.
    world_3d: [1, 117] = 39 x (x, y, z) metres. poseflag: [1, 1] pose probability.
    heatmap: optional [1, 64, 64, 39] probabilities; when given, x, y are refined with it.
    """
    ld = np.asarray(ld_3d, dtype=np.float32).reshape(NUM_MODEL_LANDMARKS, 5)
    xy = ld[:, :2] if heatmap is None else refine_with_heatmap(ld[:, :2], heatmap, input_size)
    probs = sigmoid(ld[:NUM_LANDMARKS, 3:5])  # visibility, presence
    return BlazePoseLandmarks(
        keypoints=np.concatenate([xy[:NUM_LANDMARKS], probs[:, :1]], axis=1),
        presence=probs[:, 1],
        world=np.array(np.reshape(world_3d, (NUM_MODEL_LANDMARKS, 3))[:NUM_LANDMARKS], dtype=np.float32),
        aux=np.array(xy[AUX_SLICE], dtype=np.float32),
        pose_score=float(np.reshape(poseflag, -1)[0]),
    )


def decode_landmark_outputs(
    outputs: Mapping[str, np.ndarray], refine: bool = True, input_size: int = LANDMARK_INPUT_SIZE
) -> BlazePoseLandmarks:
    """``decode_landmarks`` on a landmark network's outputs dict (lite, full and heavy share the names);
    ``refine`` uses the heatmap as MediaPipe does."""
    names = LANDMARK_OUTPUTS
    heatmap = outputs[names["heatmap"]] if refine else None
    return decode_landmarks(outputs[names["ld_3d"]], outputs[names["world_3d"]], outputs[names["poseflag"]],
                            heatmap, input_size)


def preprocess_detector(image_rgb: np.ndarray, size: int = DETECTOR_INPUT_SIZE) -> tuple[np.ndarray, Affine]:
    """RGB image (anything ``io.as_rgb`` takes) -> (uint8 [1, size, size, 3] pixels, letterboxed with zero padding
    as MediaPipe does, for the detector loaded with ``pixels=True`` (which feeds x / 127.5 - 1); M input px ->
    image px)."""
    resized, m = letterbox(as_rgb(image_rgb), (size, size))
    return resized[None], invert_affine(m)


def preprocess_landmarks(image_rgb: np.ndarray, roi: Roi, size: int = LANDMARK_INPUT_SIZE) -> tuple[np.ndarray, Affine]:
    """RGB image + ROI (image pixels) -> (uint8 [1, size, size, 3] pixels of the rotated ROI crop, zero outside
    the image, for the landmark model loaded with ``pixels=True`` (which feeds x / 255); M input px -> image px)."""
    crop, m = crop_box(as_rgb(image_rgb), roi.box, (size, size), margin=1.0, rotation=roi.rotation)
    return crop[None], invert_affine(m)


def mirror_landmarks(lm: BlazePoseLandmarks, width: float = LANDMARK_INPUT_SIZE) -> BlazePoseLandmarks:
    """Landmarks decoded from a left-right mirrored crop (``width`` pixels wide) -> the same in the crop itself:
    x -> width - x, left/right points swapped, world x negated, aux points mirrored."""
    perm = BLAZEPOSE33.flip_permutation()
    keypoints, world, aux = lm.keypoints[perm].copy(), lm.world[perm].copy(), lm.aux.copy()
    keypoints[:, 0] = width - keypoints[:, 0]
    aux[:, 0] = width - aux[:, 0]
    world[:, 0] = -world[:, 0]
    return BlazePoseLandmarks(keypoints=keypoints, presence=lm.presence[perm].copy(), world=world, aux=aux,
                              pose_score=lm.pose_score)


def landmarks_to_image(lm: BlazePoseLandmarks, back: Affine) -> BlazePoseLandmarks:
    """Landmarks decoded from a (rotated) crop -> image pixels; ``back`` maps crop px -> image px
    (``preprocess_landmarks``'s, the inverse of the crop affine: a rotation and a uniform scale). Keypoints and aux
    points are back-projected, world landmarks turned by the crop's rotation (x, y; z kept: MediaPipe's
    WorldLandmarkProjectionCalculator); scores are kept."""
    m = np.asarray(back, dtype=np.float64)
    turn = m[:, :2].T  # row vectors @ turn: the crop's axes -> the image's, times the crop's scale
    points = np.concatenate([lm.keypoints[:, :2], lm.aux]) @ turn + m[:, 2]
    world_xy = lm.world[:, :2] @ (turn / math.hypot(m[0, 0], m[1, 0]))
    return BlazePoseLandmarks(
        keypoints=np.concatenate([points[:NUM_LANDMARKS], lm.keypoints[:, 2:]], axis=1).astype(np.float32),
        presence=lm.presence,
        world=np.concatenate([world_xy, lm.world[:, 2:]], axis=1).astype(np.float32),
        aux=points[NUM_LANDMARKS:].astype(np.float32),
        pose_score=lm.pose_score,
    )
