"""Box utilities shared by the detectors: IoU, greedy NMS and MediaPipe's score-weighted NMS.

Boxes are (N, 4) arrays of x1, y1, x2, y2 in any one unit (pixels or normalised); scores are (N,).
"""

from __future__ import annotations

import numpy as np

#: COCO-80 class index of "person" (CenterNet, NanoDet).
PERSON_CLASS = 0


def iou(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """Intersection over union of every pair: (N, 4) x (M, 4) -> (N, M). Empty boxes give 0."""
    a = np.asarray(boxes_a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(boxes_b, dtype=np.float64).reshape(-1, 4)
    w = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    h = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    # np.maximum, not np.clip: clip's Python wrapper costs several times more, and this runs per frame
    inter = np.maximum(w, 0) * np.maximum(h, 0)
    area_a = np.maximum(a[:, 2] - a[:, 0], 0) * np.maximum(a[:, 3] - a[:, 1], 0)
    area_b = np.maximum(b[:, 2] - b[:, 0], 0) * np.maximum(b[:, 3] - b[:, 1], 0)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def _order(scores: np.ndarray) -> np.ndarray:
    """Indices by decreasing score; ties keep input order."""
    return np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")


def nms(boxes: np.ndarray, scores: np.ndarray, iou_thr: float = 0.5, max_det: int | None = None) -> np.ndarray:
    """Greedy non-maximum suppression.

    A box is dropped when its IoU with an already kept, higher-scoring box exceeds ``iou_thr``.
    Returns the kept indices into ``boxes``, by decreasing score, at most ``max_det`` of them.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    order = _order(scores)
    overlaps = iou(boxes[order], boxes[order]) > iou_thr
    suppressed = np.zeros(len(order), dtype=bool)
    keep: list[int] = []
    for i in range(len(order)):
        if suppressed[i]:
            continue
        keep.append(int(order[i]))
        if max_det is not None and len(keep) >= max_det:
            break
        suppressed |= overlaps[i]
    return np.asarray(keep, dtype=np.int64)


def weighted_nms(
    boxes: np.ndarray,
    scores: np.ndarray,
    keypoints: np.ndarray | None = None,
    iou_thr: float = 0.3,
    max_det: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Score-weighted NMS (MediaPipe's ``WEIGHTED`` algorithm, used by the BlazePose detector).

    Repeatedly takes the best remaining box; every remaining box overlapping it by IoU > ``iou_thr``
    (itself included) is merged into one detection whose corners and ``keypoints`` ((N, K, 2), optional)
    are the score-weighted means of the group, and whose score is the best box's score.
    Returns (boxes (M, 4), scores (M,), keypoints (M, K, 2) or None), by decreasing score.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    # corners and keypoints side by side: one weighted mean per group; IoUs once, in score order
    order = _order(scores)
    values = boxes if keypoints is None else np.concatenate(
        [boxes, np.asarray(keypoints, dtype=np.float64).reshape(len(boxes), 2 * np.shape(keypoints)[1])], axis=1)
    values, k = values[order], (values.shape[1] - 4) // 2
    scores = scores[order]
    overlaps = iou(boxes[order], boxes[order]) > iou_thr
    remaining = np.arange(len(order))
    merged, out_scores = [], []
    while len(remaining) and (max_det is None or len(out_scores) < max_det):
        best = remaining[0]
        group = overlaps[best, remaining]
        group[0] = True  # a degenerate (zero-area) best box still forms its own group
        members = remaining[group]
        weights = scores[members]
        total = weights.sum()
        if total <= 0:  # all-zero scores: plain means
            weights, total = np.ones_like(weights), float(len(members))
        merged.append(weights @ values[members] / total)
        out_scores.append(scores[best])
        remaining = remaining[~group]
    merged = np.asarray(merged, dtype=np.float32).reshape(-1, 4 + 2 * k)
    return (merged[:, :4], np.asarray(out_scores, dtype=np.float32),
            None if keypoints is None else merged[:, 4:].reshape(-1, k, 2))


def persons(
    boxes: np.ndarray,
    scores: np.ndarray,
    classes: np.ndarray,
    score_thr: float = 0.3,
    iou_thr: float = 0.6,
    max_det: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Keep class-0 (person) boxes of a COCO detector scoring >= ``score_thr``, de-duplicated by NMS at
    ``iou_thr``. Returns (boxes (M, 4), scores (M,)), best first, in the boxes' unit."""
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float32).reshape(-1)
    sel = (np.asarray(classes).reshape(-1) == PERSON_CLASS) & (scores >= score_thr)
    boxes, scores = boxes[sel], scores[sel]
    keep = nms(boxes, scores, iou_thr=iou_thr, max_det=max_det)
    return boxes[keep], scores[keep]
