"""MoveNet SinglePose (Lightning 192 / Thunder 256) pre-processing and the graph's own post-processing in numpy.

The TF.js graph ends in a CenterNet-style decoder, reproduced by ``decode_single_heads`` from the four heads
(the registry's ``heads`` of movenet-lightning/-thunder, batch axis removed; the argument names match, so
``decode_single_heads(**{k: out[t][0] for k, t in spec.heads.items()})``), on an (H, W) grid of input/4 cells.
The heads are the networks' last convolutions, the heatmap and centre ones with their sigmoid (probabilities):

1. centre = center * fp16(1 / (distance to the grid centre (H/2, W/2) + 1.8)); argmax -> (cy, cx).
2. coarse joints = (cy, cx) + regress[cy, cx] (channels interleaved: 2k = dy, 2k+1 = dx, in cells).
3. heat = heatmap / (distance to the coarse joint + fp16(1.8)); per-joint argmax -> (ky, kx).
4. joint = ((ky, kx) + offset[ky, kx, (2k, 2k+1)]) * fp16(1/H, 1/W); score = heatmap[ky, kx, k].

The graph stores its constants as float16 (``_fp16`` reproduces that rounding). Output, like the graph's
``Identity:0``: (17, 3) y, x normalised to the input, score.
"""

from __future__ import annotations

import functools

import numpy as np

from posekit.defaults import DEFAULTS
from posekit.io import as_rgb
from posekit.transforms import Affine, crop_box, invert_affine, letterbox

#: Added to distances before dividing (1.8 in the graph; stored there as float16).
DISTANCE_BIAS = 1.8


def _fp16(x: np.ndarray | float) -> np.ndarray:
    """Round float32 values to float16 and back, as the graph's float16-quantised constants are."""
    return np.asarray(x, dtype=np.float32).astype(np.float16).astype(np.float32)


_BIAS = _fp16(DISTANCE_BIAS)


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


@functools.cache
def _layout(h: int, w: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row indices (h, 1, 1), column indices (1, w, 1) and the cell size fp16((1/h, 1/w)), float32 (cached)."""
    rows = np.arange(h, dtype=np.float32)[:, None, None]
    cols = np.arange(w, dtype=np.float32)[None, :, None]
    return rows, cols, _fp16(np.float32([1 / h, 1 / w]))


def decode_single_heads(
    heatmap: np.ndarray, center: np.ndarray, regress: np.ndarray, offset: np.ndarray
) -> np.ndarray:
    """The graph's post-processing (see module docstring). heatmap (H, W, 17) and center (H, W, 1) probabilities,
    regress and offset (H, W, 34) cells. Returns (17, 3) float32 y, x (normalised 0..1 to the input), score.

    Few, whole-array numpy calls: this runs right after the network, when little of numpy is still in cache.
    """
    h, w, k = heatmap.shape
    if center.shape != (h, w, 1) or regress.shape != (h, w, 2 * k) or offset.shape != (h, w, 2 * k):
        raise ValueError(f"head shapes disagree: heatmap {heatmap.shape}, center {center.shape}, "
                         f"regress {regress.shape}, offset {offset.shape}")
    rows, cols, cell = _layout(h, w)
    cy, cx = divmod(int(np.multiply(center[..., 0], center_weight(h, w)).argmax()), w)
    coarse = regress[cy, cx].reshape(k, 2) + np.float32([cy, cx])  # (k, 2) y, x in cells
    # separable squares, then in place: the (h, w, k) volume is written three times instead of seven
    weight = (rows - coarse[:, 0]) ** 2 + (cols - coarse[:, 1]) ** 2  # (h, w, k)
    np.sqrt(weight, out=weight)
    weight += _BIAS
    scores = heatmap.reshape(h * w, k)
    best = np.divide(scores, weight.reshape(h * w, k), out=weight.reshape(h * w, k)).argmax(axis=0)
    joints = np.arange(k)
    out = np.empty((k, 3), np.float32)
    out[:, 0], out[:, 1] = np.divmod(best, w)
    out[:, :2] += offset.reshape(h * w, k, 2)[best, joints]
    out[:, :2] *= cell
    out[:, 2] = scores[best, joints]
    return out


def preprocess(
    image_rgb: np.ndarray, size: int, box_xyxy: np.ndarray | None = None, margin: float = DEFAULTS.crop_margin
) -> tuple[np.ndarray, Affine]:
    """RGB image (H, W, 3) uint8 (anything ``io.as_rgb`` takes) -> (uint8 [1, size, size, 3] pixels, for the
    network loaded with ``pixels=True``; M input px -> image px).

    Without a box the whole image is letterboxed (zero padding, centred); with ``box_xyxy`` (image pixels) a
    square crop of side ``margin * max(box w, h)`` around it is taken instead.
    """
    image = as_rgb(image_rgb)
    if box_xyxy is None:
        x, m = letterbox(image, (size, size))
    else:
        x, m = crop_box(image, box_xyxy, (size, size), margin=margin)
    return x[None], invert_affine(m)


def to_image(pose_norm: np.ndarray, affine: Affine, input_size: int | tuple[int, int]) -> np.ndarray:
    """(17, 3) y, x normalised to the input, score -> (17, 3) float32 x, y image pixels, score.

    ``affine`` maps input pixels to image pixels (as returned by ``preprocess``); ``input_size`` is the input
    side (or (h, w)).
    """
    ih, iw = (input_size, input_size) if isinstance(input_size, int) else input_size
    p = np.asarray(pose_norm, dtype=np.float32)
    m = np.asarray(affine, dtype=np.float64)
    out = np.empty(p.shape, np.float32)
    out[:, :2] = p[:, 1::-1] @ (m[:, :2] * [iw, ih]).T + m[:, 2]  # (x, y) normalised -> input px -> image px
    out[:, 2] = p[:, 2]
    return out
