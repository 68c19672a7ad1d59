"""Person boxes from the zoo's CenterNet object detector (MobileNetV3 backbone, 80 COCO classes).

The graph decodes itself: ``tower_0/detections`` [1, 100, 6] is built in-graph from the 128x128 class
heatmap (``tower_0/keypoints``, sigmoid, 3x3 max-pool peak suppression, top 100 over cells x classes)
and the box-side regression (``tower_0/wh`` x 16 = distances left, top, right, bottom in input pixels):
each row is x1 = 4 * col - left, y1 = 4 * row - top, x2 = 4 * col + right, y2 = 4 * row + bottom
(input pixels of the 512x512 image), peak score, class id (0 = person), best first.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from posekit.decode.detection import nms

CENTERNET_INPUT_SIZE = 512
DETECTIONS_OUTPUT = "tower_0/detections:0"
PERSON_CLASS = 0


def decode_centernet(outputs: Mapping[str, np.ndarray] | np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CenterNet outputs (or the ``tower_0/detections`` array itself, [1,] 100, 6) ->
    (boxes (N, 4) x1, y1, x2, y2 in input pixels, scores (N,), class ids (N,) int64), best first."""
    det = outputs[DETECTIONS_OUTPUT] if isinstance(outputs, Mapping) else outputs
    det = np.asarray(det, dtype=np.float32)
    if det.shape[-1] != 6:
        raise ValueError(f"expected CenterNet detections of shape [1, N, 6], got {det.shape}")
    det = det.reshape(-1, 6)
    order = np.argsort(-det[:, 4], kind="stable")
    det = det[order]
    return det[:, :4].copy(), det[:, 4].copy(), np.rint(det[:, 5]).astype(np.int64)


def persons(
    boxes: np.ndarray,
    scores: np.ndarray,
    classes: np.ndarray,
    score_thr: float = 0.3,
    iou_thr: float = 0.6,
    max_det: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Keep class-0 (person) boxes scoring >= ``score_thr``, de-duplicated by NMS at ``iou_thr``.
    Returns (boxes (M, 4), scores (M,)), best first, in the boxes' unit."""
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float32).reshape(-1)
    sel = (np.asarray(classes).reshape(-1) == PERSON_CLASS) & (scores >= score_thr)
    boxes, scores = boxes[sel], scores[sel]
    keep = nms(boxes, scores, iou_thr=iou_thr, max_det=max_det)
    return boxes[keep], scores[keep]
