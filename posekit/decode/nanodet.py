"""Boxes from the zoo's NanoDet object detector (GFL head, 80 COCO classes, 416x416 NCHW input).

Per stride s in (8, 16, 32) the graph gives class probabilities [1, n, 80] (sigmoid in-graph) and box-side
distributions [1, n, 44] (logits) over the n = (416 / s)^2 cells, row-major. Each cell's 44 values are
4 sides (left, top, right, bottom) x 11 bins; a side's distance is the softmax expectation over bins 0..10,
in strides, measured from the cell centre ((col + 0.5) s, (row + 0.5) s) (Generalized Focal Loss decoding,
RangiLyu/nanodet v0.x ``GFLHead``). The model expects BGR pixels normalised with NanoDet's mean / std
(the registry's ``input_scale``/``input_offset``; ``load_network(..., pixels=True)`` applies them in the graph).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

NANODET_INPUT_SIZE = 416
#: (class-score output, box-distribution output, stride) per pyramid level.
LEVELS = (("Identity:0", "Identity_3:0", 8), ("Identity_1:0", "Identity_4:0", 16), ("Identity_2:0", "Identity_5:0", 32))
NUM_BINS = 11  # reg_max 10


def expected_distance(logits: np.ndarray) -> np.ndarray:
    """(..., NUM_BINS) bin logits -> (...) softmax expectation of the bin index."""
    z = np.asarray(logits, dtype=np.float64)
    p = np.exp(z - z.max(axis=-1, keepdims=True))
    return (p * np.arange(z.shape[-1])).sum(-1) / p.sum(-1)


def decode_nanodet(
    outputs: Mapping[str, np.ndarray], score_thr: float = 0.05, input_size: int = NANODET_INPUT_SIZE
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """NanoDet outputs -> (boxes (N, 4) x1, y1, x2, y2 in input pixels, scores (N,), class ids (N,) int64),
    one entry per (cell, class) scoring >= ``score_thr``, best first; not de-duplicated (see ``persons``)."""
    boxes, scores, classes = [], [], []
    for cls_name, reg_name, stride in LEVELS:
        probs = np.asarray(outputs[cls_name], dtype=np.float32).reshape(-1, np.shape(outputs[cls_name])[-1])
        side = -(-input_size // stride)
        if len(probs) != side * side:
            raise ValueError(f"{cls_name}: expected {side * side} cells for a {input_size} input, got {len(probs)}")
        cell, cls = np.nonzero(probs >= score_thr)
        dist = expected_distance(np.asarray(outputs[reg_name], dtype=np.float32).reshape(-1, 4, NUM_BINS)[cell])
        centre = (np.stack([cell % side, cell // side], axis=1) + 0.5) * stride
        boxes.append(np.concatenate([centre - dist[:, :2] * stride, centre + dist[:, 2:] * stride], axis=1))
        scores.append(probs[cell, cls])
        classes.append(cls)
    boxes_all, scores_all, classes_all = np.concatenate(boxes), np.concatenate(scores), np.concatenate(classes)
    order = np.argsort(-scores_all, kind="stable")
    return boxes_all[order].astype(np.float32), scores_all[order], classes_all[order].astype(np.int64)
