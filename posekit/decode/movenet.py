"""MoveNet SinglePose (Lightning 192 / Thunder 256) pre-processing and the graph's own post-processing in numpy.

The TF.js graph ends in a CenterNet-style decoder, reproduced by ``decode_single_heads`` from the four raw heads
(the registry's ``heads`` of movenet-lightning/-thunder, batch axis removed; the argument names match, so
``decode_single_heads(**{k: out[t][0] for k, t in spec.heads.items()})``), on an (H, W) grid of input/4 cells:

1. centre = sigmoid(center logits) * fp16(1 / (distance to the grid centre (H/2, W/2) + 1.8)); argmax -> (cy, cx).
2. coarse joints = (cy, cx) + regress[cy, cx] (channels interleaved: 2k = dy, 2k+1 = dx, in cells).
3. heat = sigmoid(heatmap logits) / (distance to the coarse joint + fp16(1.8)); per-joint argmax -> (ky, kx).
4. joint = ((ky, kx) + offset[ky, kx, (2k, 2k+1)]) * fp16(1/H, 1/W); score = sigmoid(heatmap)[ky, kx, k].

The graph stores its constants as float16 (``_fp16`` reproduces that rounding). Output, like the graph's
``Identity:0``: (17, 3) y, x normalised to the input, score.
"""

from __future__ import annotations

import functools

import numpy as np

from posekit.decode import sigmoid
from posekit.io import as_rgb
from posekit.transforms import Affine, apply_affine, crop_box, invert_affine, letterbox

#: Added to distances before dividing (1.8 in the graph; stored there as float16).
DISTANCE_BIAS = 1.8


def _fp16(x: np.ndarray | float) -> np.ndarray:
    """Round float32 values to float16 and back, as the graph's float16-quantised constants are."""
    return np.asarray(x, dtype=np.float32).astype(np.float16).astype(np.float32)


@functools.cache
def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """(h, w) float32 row and column indices (cached: decoding runs per frame)."""
    gy, gx = np.mgrid[0:h, 0:w].astype(np.float32)
    gy.setflags(write=False)
    gx.setflags(write=False)
    return gy, gx


@functools.cache
def center_weight(h: int, w: int) -> np.ndarray:
    """(h, w) float32 prior favouring the frame centre: fp16(1 / (distance of cell to (h/2, w/2) + 1.8)).

    Equals the graph's folded constant on all Lightning cells; on Thunder 8 of 4096 cells, whose value falls on
    a float16 rounding tie, are one float16 step (6e-4 relative) lower.
    """
    gy, gx = _grid(h, w)
    dist = np.sqrt((gy - np.float32(h / 2)) ** 2 + (gx - np.float32(w / 2)) ** 2)
    weight = _fp16(np.float32(1.0) / (dist + np.float32(DISTANCE_BIAS)))
    weight.setflags(write=False)
    return weight


def decode_single_heads(
    heatmap: np.ndarray, center: np.ndarray, regress: np.ndarray, offset: np.ndarray
) -> np.ndarray:
    """The graph's post-processing (see module docstring). heatmap (H, W, 17) logits, center (H, W, 1) logits,
    regress and offset (H, W, 34). Returns (17, 3) float32 y, x (normalised 0..1 to the input), score."""
    h, w, k = heatmap.shape
    if center.shape != (h, w, 1) or regress.shape != (h, w, 2 * k) or offset.shape != (h, w, 2 * k):
        raise ValueError(f"head shapes disagree: heatmap {heatmap.shape}, center {center.shape}, "
                         f"regress {regress.shape}, offset {offset.shape}")
    centre = sigmoid(center[..., 0]) * center_weight(h, w)
    cy, cx = np.divmod(int(centre.argmax()), w)
    coarse = np.float32([cy, cx]) + regress[cy, cx].reshape(k, 2).astype(np.float32)  # (k, 2) y, x in cells
    ky, kx, score = refine_joints(heatmap, coarse)
    fine = offset.reshape(h, w, k, 2)[ky, kx, np.arange(k)].astype(np.float32)
    yx = (np.stack([ky, kx], axis=-1).astype(np.float32) + fine) * _fp16(np.float32([1 / h, 1 / w]))
    return np.column_stack([yx, score]).astype(np.float32)


#: `refine_joints` first searches (2 r + 1)^2 cells around each coarse joint, r = this many cells.
WINDOW_RADIUS = 3


def _proximity(scores: np.ndarray, rows: np.ndarray, cols: np.ndarray, y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """scores / (distance of cell (rows, cols) to (y, x) + fp16(1.8)), float32, broadcast, written over a new
    array.  Every search window goes through it, so values agree to the last bit whatever the window."""
    weight = (rows - y) ** 2 + (cols - x) ** 2
    np.sqrt(weight, out=weight)
    weight += _fp16(DISTANCE_BIAS)
    return np.divide(scores, weight, out=weight)


def _window_search(heatmap: np.ndarray, coarse: np.ndarray, joints: np.ndarray, radius: int
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Best cell of each of ``joints`` in the (2 radius + 1)^2 window centred on the cell nearest its coarse
    point (K', 2), shifted inside the grid (the whole grid when it is smaller).  Returns rows, columns, sigmoid
    scores and `_proximity` values there, each (K',)."""
    h, w, _ = heatmap.shape
    side = np.minimum(2 * radius + 1, (h, w))  # window rows, columns
    start = np.clip(np.floor(coarse + np.float32(0.5)).astype(np.int64) - radius, 0, (h, w) - side)
    rows = start[:, :1] + np.arange(side[0])  # (K', sy)
    cols = start[:, 1:] + np.arange(side[1])  # (K', sx)
    scores = sigmoid(heatmap[rows[:, :, None], cols[:, None, :], joints[:, None, None]]).reshape(len(joints), -1)
    value = _proximity(scores.reshape(-1, side[0], side[1]), rows[:, :, None].astype(np.float32),
                       cols[:, None, :].astype(np.float32), coarse[:, 0, None, None], coarse[:, 1, None, None])
    value = value.reshape(len(joints), -1)
    flat = value.argmax(axis=1)
    ky, kx = np.divmod(flat, side[1])
    n = np.arange(len(joints))
    return ky + start[:, 0], kx + start[:, 1], scores[n, flat], value[n, flat]


def refine_joints(heatmap: np.ndarray, coarse: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per joint, the cell maximising sigmoid(heatmap) / (distance to the coarse joint + 1.8) (first in row-major
    order on ties, like a full argmax).  heatmap (H, W, K) logits, coarse (K, 2) y, x cells.  Returns rows (K,),
    columns (K,) and sigmoid scores (K,) there.

    Exact, at a fraction of the cost of scoring all H x W x K cells: a window of radius r (`WINDOW_RADIUS`) around
    each coarse joint is searched first (`_window_search`).  Every cell outside it is at least r + 0.5 cells from
    the coarse joint, so it scores at most sigmoid(the joint's peak logit) / (r + 0.5 + 1.8); where the window's
    best is below that bound, the joint is searched again in a window wide enough for the bound to hold.
    """
    h, w, k = heatmap.shape
    joints = np.arange(k)
    ky, kx, score, value = _window_search(heatmap, coarse, joints, WINDOW_RADIUS)
    # per-joint peak logit; blocks of whole cells keep the reduction's rows long (one axis-0 max of (h*w, k) is slow)
    cells = h * w
    block = max(d for d in range(1, 33) if cells % d == 0)
    peak = sigmoid(heatmap.reshape(cells // block, block * k).max(axis=0).reshape(block, k).max(axis=0))
    peak *= np.float32(1 + 1e-5)  # margin for float rounding of the values
    bias = np.float32(0.5) + _fp16(DISTANCE_BIAS)
    unsure = np.flatnonzero(peak / (WINDOW_RADIUS + bias) >= value)
    if len(unsure):  # the radius beyond which no cell can beat the window's best: peak / (r + bias) < value
        radius = int(np.ceil((peak[unsure] / value[unsure] - bias).max())) + 1 if value[unsure].min() > 0 else h + w
        ky[unsure], kx[unsure], score[unsure], _ = _window_search(heatmap, coarse[unsure], unsure, min(radius, h + w))
    return ky, kx, score


def preprocess(
    image_rgb: np.ndarray, size: int, box_xyxy: np.ndarray | None = None, margin: float = 1.25
) -> tuple[np.ndarray, Affine]:
    """RGB image (H, W, 3) uint8 (anything ``io.as_rgb`` takes) -> (int32 [1, size, size, 3] raw 0..255,
    M input px -> image px).

    Without a box the whole image is letterboxed (zero padding, centred); with ``box_xyxy`` (image pixels) a
    square crop of side ``margin * max(box w, h)`` around it is taken instead.
    """
    image = as_rgb(image_rgb)
    if box_xyxy is None:
        resized, m = letterbox(image, (size, size))
    else:
        resized, m = crop_box(image, box_xyxy, (size, size), margin=margin)
    return resized.astype(np.int32)[None], invert_affine(m)


def to_image(pose_norm: np.ndarray, affine: Affine, input_size: int | tuple[int, int]) -> np.ndarray:
    """(17, 3) y, x normalised to the input, score -> (17, 3) float32 x, y image pixels, score.

    ``affine`` maps input pixels to image pixels (as returned by ``preprocess``); ``input_size`` is the input
    side (or (h, w)).
    """
    ih, iw = (input_size, input_size) if isinstance(input_size, int) else input_size
    p = np.asarray(pose_norm, dtype=np.float32)
    xy_input = np.column_stack([p[:, 1] * iw, p[:, 0] * ih, p[:, 2]])
    return apply_affine(xy_input, affine).astype(np.float32)
