"""Box utilities shared by the detectors: IoU, greedy NMS and MediaPipe's score-weighted NMS.

Boxes are (N, 4) arrays of x1, y1, x2, y2 in any one unit (pixels or normalised); scores are (N,).
"""

from __future__ import annotations

import numpy as np

#: COCO-80 class index of "person" (CenterNet, NanoDet).
PERSON_CLASS = 0


def box_iou(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """IoU of x1, y1, x2, y2 boxes (..., 4) and (..., 4), broadcast: ``box_iou(a[:, None], b[None])`` is (N, M).
    Empty or inverted boxes give 0."""
    a = np.asarray(boxes_a, dtype=np.float64)
    b = np.asarray(boxes_b, dtype=np.float64)
    # np.maximum, not np.clip: clip's Python wrapper costs several times more, and this runs per frame
    inter = np.maximum(np.minimum(a[..., 2:], b[..., 2:]) - np.maximum(a[..., :2], b[..., :2]), 0).prod(axis=-1)
    union = (np.maximum(a[..., 2:] - a[..., :2], 0).prod(axis=-1) + np.maximum(b[..., 2:] - b[..., :2], 0).prod(axis=-1)
             - inter)
    return inter / np.maximum(union, np.finfo(np.float64).tiny)  # union 0 means inter 0: IoU 0


def iou(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """Intersection over union of every pair: (N, 4) x (M, 4) -> (N, M). Empty boxes give 0."""
    return box_iou(np.reshape(boxes_a, (-1, 1, 4)), np.reshape(boxes_b, (1, -1, 4)))


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


def weighted_nms(values: np.ndarray, scores: list[float], iou_thr: float = 0.3, max_det: int | None = None
                 ) -> tuple[np.ndarray, list[float]]:
    """Score-weighted NMS (MediaPipe's ``WEIGHTED`` algorithm, used by the BlazePose detector) on rows ``values``
    (N, C): a box x1, y1, x2, y2, then any columns (e.g. keypoints) averaged alike; ``scores`` as Python floats.

    Repeatedly takes the best remaining box; every remaining box overlapping it by IoU > ``iou_thr`` (itself
    included) is merged into one row, the score-weighted mean of the group's rows, scored as the best box.
    Returns (merged rows (M, C) float64, their scores), by decreasing score, at most ``max_det`` of them.

    The grouping runs on Python floats (N boxes x M groups IoUs): a detector's hits above its threshold are few,
    and right after a network run each numpy call costs more than a Python IoU; the means are one matrix product.
    """
    boxes = np.asarray(values, dtype=np.float64)[:, :4].tolist()
    remaining = sorted(range(len(boxes)), key=scores.__getitem__, reverse=True)  # stable: ties keep input order
    weights: list[list[float]] = []
    kept: list[float] = []
    while remaining and (max_det is None or len(kept) < max_det):
        first = remaining[0]
        group = [i for i in remaining if i == first or _iou(boxes[first], boxes[i]) > iou_thr]
        row = [0.0] * len(boxes)
        for i in group:
            row[i] = scores[i]
        if sum(row) <= 0:  # all-zero scores: plain means
            for i in group:
                row[i] = 1.0
        weights.append(row)
        kept.append(scores[first])
        grouped = set(group)
        remaining = [i for i in remaining if i not in grouped]
    w = np.array(weights, dtype=np.float64).reshape(len(kept), len(boxes))
    return w @ np.asarray(values, dtype=np.float64) / w.sum(axis=1, keepdims=True), kept


def _iou(a: list[float], b: list[float]) -> float:
    """`box_iou` of two boxes given as Python floats (x1, y1, x2, y2 first)."""
    w, h = min(a[2], b[2]) - max(a[0], b[0]), min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    union = max(a[2] - a[0], 0) * max(a[3] - a[1], 0) + max(b[2] - b[0], 0) * max(b[3] - b[1], 0) - w * h
    return w * h / union


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


def greedy_match(similarity: np.ndarray, scores: np.ndarray, min_similarity: float) -> list[tuple[int, int]]:
    """Match predictions to ground truths as COCO does: best-scored prediction first takes its most similar free one.

    similarity (N, M) e.g. from `oks_matrix`; scores (N,).  Pairs need similarity >= min_similarity.
    Returns (prediction index, ground-truth index) pairs.
    """
    similarity = np.asarray(similarity, dtype=np.float64)
    free = np.ones(similarity.shape[1], dtype=bool)
    pairs: list[tuple[int, int]] = []
    for i in np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable"):
        if not free.any():
            break
        row = np.where(free, similarity[i], -np.inf)
        j = int(np.argmax(row))
        if row[j] >= min_similarity:
            free[j] = False
            pairs.append((int(i), j))
    return pairs


def oks_matrix(preds: np.ndarray, gts: np.ndarray, areas: np.ndarray, sigmas: np.ndarray,
               min_score: float | None = None) -> np.ndarray:
    """Object keypoint similarity of every prediction against every ground truth (or reference pose), as COCO
    defines it.

    preds (N, K, 2+) pixels; gts (M, K, 3) pixels + visibility (or score); areas (M,) the references' areas in
    pixels^2; sigmas (K,) per-keypoint constants.  Returns (N, M): the mean over the counted keypoints of
    exp(-d^2 / (2 area (2 sigma)^2)); 0 where none counts.  A keypoint counts when labelled in the reference
    (v > 0), or, with ``min_score``, when it scores above min_score in both poses (pose against pose, as tracking
    compares them).
    """
    preds = np.asarray(preds, dtype=np.float64)
    gts = np.asarray(gts, dtype=np.float64)
    if len(preds) == 0 or len(gts) == 0:
        return np.zeros((len(preds), len(gts)))
    variances = (2.0 * np.asarray(sigmas, dtype=np.float64)) ** 2  # (K,)
    d2 = ((preds[:, None, :, :2] - gts[None, :, :, :2]) ** 2).sum(-1)  # (N, M, K)
    e = d2 / variances / (np.asarray(areas, dtype=np.float64)[None, :, None] + np.spacing(1)) / 2.0
    if min_score is None:
        counted = gts[None, :, :, 2] > 0  # (1, M, K)
    else:
        counted = (preds[:, None, :, 2] > min_score) & (gts[None, :, :, 2] > min_score)
    count = counted.sum(-1)
    total = np.where(counted, np.exp(-e), 0.0).sum(-1)
    return np.where(count > 0, total / np.maximum(count, 1), 0.0)
