"""Image geometry shared by every model: letterbox, box crops, and 2x3 affine maps between image and input pixels.

Convention: an affine ``M`` is a (2, 3) float64 array acting on continuous pixel coordinates, where pixel ``i``
covers ``[i, i + 1)`` (its centre is ``i + 0.5``); ``apply_affine(p, M) = p @ M[:, :2].T + M[:, 2]``.
``letterbox`` and ``crop_box`` return the forward map image -> network input; ``invert_affine`` gives the way back.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from posekit.defaults import DEFAULTS

Affine = np.ndarray  # (2, 3) float64: continuous pixel coordinates in -> out

def _as3x3(m: Affine) -> np.ndarray:
    return np.vstack([np.asarray(m, dtype=np.float64).reshape(2, 3), [0.0, 0.0, 1.0]])


def compose_affine(a: Affine, b: Affine) -> Affine:
    """The affine ``a`` after ``b`` (apply ``b`` first)."""
    return (_as3x3(a) @ _as3x3(b))[:2]


def whole_image(image: np.ndarray) -> np.ndarray:
    """(4,) x1, y1, x2, y2 box of the whole image, in pixels (``crop_box`` of it with margin 1 = letterbox)."""
    return np.array([0.0, 0.0, image.shape[1], image.shape[0]])


def invert_affine(m: Affine) -> Affine:
    """Inverse of a (2, 3) affine map, in closed form (cheaper than LAPACK's general inverse, whose code is out
    of cache after each network run)."""
    (a, b, tx), (c, d, ty) = np.asarray(m, dtype=np.float64).reshape(2, 3).tolist()
    det = a * d - b * c
    if det == 0:
        raise ValueError(f"affine map is not invertible: {m}")
    ia, ib, ic, id_ = d / det, -b / det, -c / det, a / det
    return np.array([[ia, ib, -(ia * tx + ib * ty)], [ic, id_, -(ic * tx + id_ * ty)]])


def apply_affine(points: np.ndarray, m: Affine) -> np.ndarray:
    """Map points (N, D>=2) whose first two columns are x, y; other columns (e.g. scores) are kept as they are."""
    pts = np.asarray(points)
    out = pts.astype(np.result_type(pts.dtype, np.float32), copy=True)
    m = np.asarray(m, dtype=np.float64)
    out[..., :2] = pts[..., :2] @ m[:, :2].T + m[:, 2]
    return out


def letterbox(image: np.ndarray, size_hw: tuple[int, int], pad_value: float = 0) -> tuple[np.ndarray, Affine]:
    """Resize ``image`` (H, W[, C]) to fit ``size_hw`` keeping its aspect (cv2 INTER_LINEAR), centred, the rest
    filled with ``pad_value``, in the image's dtype. Returns (resized, M image -> resized).

    Resizing before padding costs the same for a 4000 px photo as for a small one; pixels differ from the
    pad-then-resize recipe of the golden vectors only in the row or column touching the padding.
    """
    h, w = image.shape[:2]
    th, tw = (int(v) for v in size_hw)
    if h < 1 or w < 1 or th < 1 or tw < 1:
        raise ValueError(f"letterbox needs non-empty image and target size, got image {h}x{w}, target {th}x{tw}")
    scale = min(tw / w, th / h)
    nw, nh = min(tw, max(1, round(w * scale))), min(th, max(1, round(h * scale)))
    left, top = (tw - nw) // 2, (th - nh) // 2
    resized = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR)
    # one cv2 call pads (cheaper than a numpy canvas + copy right after a network run)
    out = cv2.copyMakeBorder(resized, top, th - nh - top, left, tw - nw - left, cv2.BORDER_CONSTANT,
                             value=(pad_value,) * 4)
    if out.ndim < image.ndim:  # cv2 drops a trailing channel axis of size 1
        out = out[..., None]
    sx, sy = nw / w, nh / h
    return out, np.array([[sx, 0.0, float(left)], [0.0, sy, float(top)]])


def crop_box(
    image: np.ndarray,
    box_xyxy: np.ndarray,
    size_hw: tuple[int, int],
    margin: float = DEFAULTS.crop_margin,
    rotation: float = 0.0,
    pad_value: float = 0,
) -> tuple[np.ndarray, Affine]:
    """Crop the region around ``box_xyxy`` (image pixels) into a ``size_hw`` image with bilinear warping.

    The region is centred on the box, ``margin`` times its size, widened on one side to the aspect of
    ``size_hw`` (so a square output gets a square crop of side ``margin * max(w, h)``) and rotated by
    ``rotation`` radians clockwise as displayed (MediaPipe's convention: the crop's x axis points along
    (cos r, sin r) in the image). Outside the image is ``pad_value``. Returns (crop, M image -> crop).
    """
    x1, y1, x2, y2 = np.asarray(box_xyxy, dtype=np.float64).reshape(4).tolist()
    th, tw = (int(v) for v in size_hw)
    cw, ch = margin * (x2 - x1), margin * (y2 - y1)
    if cw <= 0 or ch <= 0:
        raise ValueError(f"crop_box needs a box with positive width and height, got {box_xyxy}")
    if cw * th < ch * tw:
        cw = ch * tw / th
    else:
        ch = cw * th / tw
    c, s = math.cos(rotation), math.sin(rotation)
    # crop = S @ R(-rotation) @ (image - centre) + crop centre, in scalars (numpy's small-matrix calls cost more)
    a, b, d, e = tw / cw * c, tw / cw * s, -th / ch * s, th / ch * c
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    tx, ty = tw / 2 - (a * cx + b * cy), th / 2 - (d * cx + e * cy)
    # cv2 indexes pixel centres at integers: index' = M(index + 0.5) - 0.5, so its translation gains
    # (A - I) @ (0.5, 0.5)
    indexed = np.array([[a, b, tx + 0.5 * (a + b - 1.0)], [d, e, ty + 0.5 * (d + e - 1.0)]])
    crop = cv2.warpAffine(image, indexed, (tw, th), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                          borderValue=(pad_value,) * 4)
    if crop.ndim < image.ndim:
        crop = crop[..., None]
    return crop, np.array([[a, b, tx], [d, e, ty]])


def to_grid(xy: np.ndarray, stride: float) -> np.ndarray:
    """Input pixels -> output-map cell coordinates (cell centres at integers): a map of stride ``s`` has cell (j, i)
    covering input pixels [i s, (i + 1) s) x [j s, (j + 1) s)."""
    return np.asarray(xy, dtype=np.float32) / stride - 0.5


def from_grid(g: np.ndarray, stride: float) -> np.ndarray:
    """Output-map cell coordinates -> input pixels (inverse of `to_grid`)."""
    return (np.asarray(g, dtype=np.float32) + 0.5) * stride
