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

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from posekit.decode import sigmoid
from posekit.decode.detection import weighted_nms
from posekit.io import as_rgb
from posekit.skeleton import BLAZEPOSE33
from posekit.transforms import Affine, apply_affine, crop_box, invert_affine, letterbox

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
    world: (33, 3) metres, origin between the hips, axes of the crop (see ``rotate_world``).
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


def decode_detections(
    raw: np.ndarray | Mapping[str, np.ndarray],
    anchors: np.ndarray,
    score_thr: float = 0.5,
    input_size: int = DETECTOR_INPUT_SIZE,
    iou_thr: float = 0.3,
) -> list[Detection]:
    """Detector output ``Identity:0`` ([1,] N, 13; or the outputs dict) -> detections in detector-input pixels,
    best first.

    Score = sigmoid(logit) (MediaPipe clips logits to +-100 first, which changes no float32 score); kept when
    >= ``score_thr``. Box centre and keypoints are offsets in input pixels from the anchor centre, box
    width/height are in input pixels (MediaPipe: x/y/w/h scale = input size, anchor size 1). Boxes with negative
    size are dropped, the rest merged by weighted NMS (IoU > ``iou_thr``).
    """
    raw = np.asarray(raw[DETECTOR_OUTPUT] if isinstance(raw, Mapping) else raw, dtype=np.float32)
    anchors = np.asarray(anchors, dtype=np.float32).reshape(-1, 2)
    if raw.shape[-1] != DETECTOR_COLUMNS or raw.size // DETECTOR_COLUMNS != len(anchors):
        raise ValueError(f"expected detector output of shape [1, {len(anchors)}, {DETECTOR_COLUMNS}], got {raw.shape}")
    raw = raw.reshape(-1, DETECTOR_COLUMNS)
    # score only the anchors whose logit comes near the threshold's (the margin covers float32 rounding)
    p = min(max(score_thr, 1e-6), 1 - 1e-6)
    index = np.flatnonzero(raw[:, 0] >= math.log(p / (1 - p)) - 0.1)
    scores = sigmoid(raw[index, 0])
    index, scores = index[scores >= score_thr], scores[scores >= score_thr]
    reg = raw[index, 1:]
    keep = (reg[:, 2] >= 0) & (reg[:, 3] >= 0)
    index, scores, reg = index[keep], scores[keep], reg[keep]
    origin = anchors[index] * input_size
    centre, size = origin + reg[:, 0:2], reg[:, 2:4]
    boxes = np.concatenate([centre - size / 2, centre + size / 2], axis=1)
    keypoints = origin[:, None, :] + reg[:, 4:].reshape(-1, NUM_DETECTION_KEYPOINTS, 2)
    boxes, merged_scores, keypoints = weighted_nms(boxes, scores, keypoints, iou_thr=iou_thr)
    return [Detection(b, float(s), k) for b, s, k in zip(boxes, merged_scores, keypoints)]


def normalize_radians(angle: float) -> float:
    """Angle wrapped into [-pi, pi)."""
    return float(angle - 2 * math.pi * math.floor((angle + math.pi) / (2 * math.pi)))


def alignment_roi(center: np.ndarray, scale_point: np.ndarray, scale: float = ROI_SCALE) -> Roi:
    """Square ROI from two alignment points (pixels): centred on ``center``, side
    2 x |scale_point - center| x ``scale``, rotated so that ``scale_point`` lies straight above the centre
    (MediaPipe AlignmentPointsRectsCalculator, target angle 90 deg, + RectTransformation)."""
    (x0, y0), (x1, y1) = np.asarray(center, dtype=np.float64), np.asarray(scale_point, dtype=np.float64)
    size = 2.0 * math.hypot(x1 - x0, y1 - y0) * scale
    rotation = normalize_radians(math.pi / 2 - math.atan2(-(y1 - y0), x1 - x0))
    return Roi(np.array([x0, y0], dtype=np.float32), float(size), rotation)


def detection_to_roi(det: Detection, scale: float = ROI_SCALE) -> Roi:
    """Full-body ROI of a detection (hip centre and scale point), in the detection's pixel frame."""
    return alignment_roi(det.keypoints[0], det.keypoints[1], scale)


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
    """
    hm = np.asarray(heatmap, dtype=np.float32)
    hm = hm.reshape(hm.shape[-3:])
    rows, cols, k = hm.shape
    out = np.array(xy, dtype=np.float32, copy=True)
    if out.shape != (k, 2):
        raise ValueError(f"expected ({k}, 2) points for a heatmap with {k} channels, got {out.shape}")
    half = (kernel_size - 1) // 2
    col = np.floor(out[:, 0] / input_size * cols).astype(np.int64)
    row = np.floor(out[:, 1] / input_size * rows).astype(np.int64)
    inside = (col >= 0) & (col < cols) & (row >= 0) & (row < rows)
    offsets = np.arange(kernel_size) - half
    # np.minimum/np.maximum, not np.clip: clip's Python wrapper costs several times more (this runs per crop)
    rr = np.minimum(np.maximum(row, 0), rows - 1)[:, None] + offsets  # (K, ks) window rows, some off the heatmap
    cc = np.minimum(np.maximum(col, 0), cols - 1)[:, None] + offsets
    # cells off the heatmap count as zero: they add nothing to a window's sum and (min_confidence > 0) cannot
    # raise its peak
    on_map = ((rr >= 0) & (rr < rows))[:, :, None] & ((cc >= 0) & (cc < cols))[:, None, :]
    r_in, c_in = np.minimum(np.maximum(rr, 0), rows - 1), np.minimum(np.maximum(cc, 0), cols - 1)
    windows = hm[r_in[:, :, None], c_in[:, None, :], np.arange(k)[:, None, None]] * on_map  # (K, ks, ks)
    windows = windows.astype(np.float64)
    total = windows.sum(axis=(1, 2))
    use = inside & (windows.max(axis=(1, 2)) >= min_confidence) & (total > 0)
    safe = np.where(total > 0, total, 1.0)
    mean_col = (windows.sum(axis=1) * cc).sum(axis=1) / safe
    mean_row = (windows.sum(axis=2) * rr).sum(axis=1) / safe
    out[use, 0] = (mean_col / cols * input_size)[use]
    out[use, 1] = (mean_row / rows * input_size)[use]
    return out


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
    world = np.asarray(world_3d, dtype=np.float32).reshape(NUM_MODEL_LANDMARKS, 3)
    xy = ld[:, :2] if heatmap is None else refine_with_heatmap(ld[:, :2], heatmap, input_size)
    probs = sigmoid(ld[:NUM_LANDMARKS, 3:5])  # visibility, presence
    keypoints = np.empty((NUM_LANDMARKS, 3), np.float32)
    keypoints[:, :2], keypoints[:, 2] = xy[:NUM_LANDMARKS], probs[:, 0]
    return BlazePoseLandmarks(
        keypoints=keypoints,
        presence=probs[:, 1].copy(),
        world=world[:NUM_LANDMARKS].copy(),
        aux=np.array(xy[AUX_SLICE], dtype=np.float32),
        pose_score=float(np.asarray(poseflag).reshape(-1)[0]),
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


def affine_rotation(back: Affine) -> float:
    """Rotation (radians, this module's convention) of a crop, from its input px -> image px map."""
    m = np.asarray(back, dtype=np.float64)
    return float(math.atan2(m[1, 0], m[0, 0]))


def rotate_world(world: np.ndarray, rotation: float) -> np.ndarray:
    """World landmarks (K, 3) metres turned from the crop's axes into the image's axes (x, y rotated
    by the ROI ``rotation``, z kept), as MediaPipe WorldLandmarkProjectionCalculator does."""
    c, s = math.cos(rotation), math.sin(rotation)
    out = np.array(world, dtype=np.float32, copy=True)
    x, y = out[:, 0].copy(), out[:, 1].copy()
    out[:, 0], out[:, 1] = c * x - s * y, s * x + c * y
    return out


def detection_to_image(det: Detection, back: Affine) -> Detection:
    """A detection in detector-input pixels -> image pixels; ``back`` maps input px -> image px
    (``preprocess_detector``'s, a letterbox: no rotation, so the box stays axis-aligned)."""
    corners = apply_affine(det.box.reshape(2, 2), back).reshape(4).astype(np.float32)
    return Detection(corners, det.score, apply_affine(det.keypoints, back).astype(np.float32))


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
    (``preprocess_landmarks``'s, the inverse of the crop affine). Keypoints and aux points are back-projected,
    world landmarks turned by the crop's rotation; scores are kept."""
    return BlazePoseLandmarks(
        keypoints=apply_affine(lm.keypoints, back).astype(np.float32),
        presence=lm.presence.copy(),
        world=rotate_world(lm.world, affine_rotation(back)),
        aux=apply_affine(lm.aux, back).astype(np.float32),
        pose_score=lm.pose_score,
    )
