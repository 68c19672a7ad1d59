"""Decoding of trained heads' raw outputs into keypoints in network-input pixels (pure numpy).

* regression: normalised coordinates + visibility logits;
* SimpleBaseline: Gaussian heatmaps, argmax refined by a quarter-cell shift or DARK (Zhang et al., 2020);
* G-RMI (Papandreou et al., 2017): disk heatmap logits + offsets, fused by Hough voting into a score map.

Outputs are (N, K, 3) arrays of x, y (input pixels) and a score in [0, 1]; map cells follow the grid convention of
`posekit.data.targets` (cell i centred at input pixel (i + 0.5) * stride).
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from posekit.decode import sigmoid
from posekit.transforms import from_grid


def argmax_2d(maps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Peak of each map.  maps (..., h, w) -> (xy (..., 2) int cell indices, peak values (...))."""
    maps = np.asarray(maps)
    h, w = maps.shape[-2:]
    flat = maps.reshape(*maps.shape[:-2], h * w)
    idx = flat.argmax(-1)
    return np.stack([idx % w, idx // w], axis=-1), np.take_along_axis(flat, idx[..., None], -1)[..., 0]


def _peaks(maps: np.ndarray, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(maps as (M, h, w) float32, integer peaks as (M, 2), a float32 copy of the peaks to refine)."""
    maps = np.asarray(maps, dtype=np.float32)
    pts = np.asarray(xy).reshape(-1, 2)
    return maps.reshape(-1, *maps.shape[-2:]), pts, pts.astype(np.float32)


def quarter_offset(maps: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Shift each integer peak ``xy`` (..., 2) a quarter cell towards its higher neighbour (SimpleBaseline's
    refinement); peaks on the border stay put along that axis.  maps (..., h, w).  Returns float (..., 2)."""
    flat, pts, out = _peaks(maps, xy)
    h, w = flat.shape[-2:]
    for i, (x, y) in enumerate(pts):
        if 0 < x < w - 1:
            out[i, 0] += 0.25 * np.sign(flat[i, y, x + 1] - flat[i, y, x - 1])
        if 0 < y < h - 1:
            out[i, 1] += 0.25 * np.sign(flat[i, y + 1, x] - flat[i, y - 1, x])
    return out.reshape(np.shape(xy))


def dark_refine(maps: np.ndarray, xy: np.ndarray, sigma: float) -> np.ndarray:
    """DARK sub-cell refinement: smooth each map with the training Gaussian (``sigma`` cells), take its log and move
    the integer peak ``xy`` (..., 2) by one Newton step, -H^-1 grad (a Gaussian's log is quadratic, so this recovers
    the exact centre of a clean Gaussian).  Peaks on the border or without a proper maximum stay put; within about
    3 sigma of the border the smoothing sees the zero outside the map and pulls the estimate inwards (as in DARK).
    Returns float (..., 2)."""
    flat, pts, out = _peaks(maps, xy)
    h, w = flat.shape[-2:]
    for i, (x, y) in enumerate(pts):
        if not (0 < x < w - 1 and 0 < y < h - 1):
            continue
        peak = flat[i].max()
        smooth = cv2.GaussianBlur(flat[i], (0, 0), sigma, borderType=cv2.BORDER_CONSTANT)
        smooth *= peak / max(float(smooth.max()), 1e-12)
        lg = np.log(np.maximum(smooth, 1e-10)).astype(np.float64)
        grad = np.array([lg[y, x + 1] - lg[y, x - 1], lg[y + 1, x] - lg[y - 1, x]]) / 2
        dxx = lg[y, x + 1] - 2 * lg[y, x] + lg[y, x - 1]
        dyy = lg[y + 1, x] - 2 * lg[y, x] + lg[y - 1, x]
        dxy = (lg[y + 1, x + 1] - lg[y + 1, x - 1] - lg[y - 1, x + 1] + lg[y - 1, x - 1]) / 4
        hess = np.array([[dxx, dxy], [dxy, dyy]])
        if dxx < 0 and np.linalg.det(hess) > 1e-12:  # negative definite: a maximum
            out[i] += np.clip(-np.linalg.solve(hess, grad), -1.0, 1.0)
    return out.reshape(np.shape(xy))


def decode_heatmaps(maps: np.ndarray, stride: float, refine: str = "dark", sigma: float = 2.0) -> np.ndarray:
    """SimpleBaseline decoding: maps (N, K, h, w) -> (N, K, 3) x, y in input pixels and the peak value clipped
    to [0, 1] as score.  ``refine``: "dark", "quarter" or "none"; ``sigma``: the training Gaussian in cells."""
    xy, peak = argmax_2d(maps)
    if refine == "dark":
        sub = dark_refine(maps, xy, sigma)
    elif refine == "quarter":
        sub = quarter_offset(maps, xy)
    elif refine == "none":
        sub = xy.astype(np.float32)
    else:
        raise ValueError(f"unknown heatmap refinement {refine!r}; use 'dark', 'quarter' or 'none'")
    return np.concatenate([from_grid(sub, stride), np.clip(peak, 0, 1)[..., None]], axis=-1).astype(np.float32)


def hough_scores(probs: np.ndarray, votes: np.ndarray, out_hw: tuple[int, int], bin_size: float) -> np.ndarray:
    """Hough score maps: every cell casts its vote (input pixels) weighted by its probability, splatted
    bilinearly into bins of ``bin_size`` input pixels.  probs (M, h, w); votes (M, 2, h, w) x, y.
    Returns (M, H, W) with H, W = out_hw; votes outside the bins are dropped."""
    m = probs.shape[0]
    bh, bw = out_hw
    g = votes.reshape(m, 2, -1) / bin_size - 0.5  # bin coordinates, bin centres at integers
    p = probs.reshape(m, -1)
    x0, y0 = np.floor(g[:, 0]), np.floor(g[:, 1])
    fx, fy = g[:, 0] - x0, g[:, 1] - y0
    scores = np.zeros((m, bh * bw), np.float64)
    rows = np.broadcast_to(np.arange(m)[:, None], p.shape)
    for dx, dy, wt in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)), (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):
        xi, yi = (x0 + dx).astype(np.int64), (y0 + dy).astype(np.int64)
        ok = (xi >= 0) & (xi < bw) & (yi >= 0) & (yi < bh)
        np.add.at(scores, (rows[ok], (yi * bw + xi)[ok]), (p * wt)[ok])
    return scores.reshape(m, bh, bw)


def decode_grmi(logits: np.ndarray, offsets: np.ndarray, stride: float, radius: float,
                size_hw: tuple[int, int], bin_size: float = 1.0) -> np.ndarray:
    """G-RMI decoding: logits (N, K, h, w) of "within ``radius`` of the keypoint"; offsets (N, 2K, h, w) laid out
    as (K, 2) pairs (dx, dy) in units of ``radius``.  Each cell votes for its centre + offset; the keypoint is the
    mean of the votes within radius / 2 of the Hough peak.  Returns (N, K, 3) input pixels + max probability."""
    n, k, h, w = logits.shape
    probs = sigmoid(logits).reshape(n * k, h, w)
    cx = from_grid(np.arange(w), stride)[None, :]
    cy = from_grid(np.arange(h), stride)[:, None]
    off = np.asarray(offsets, np.float32).reshape(n * k, 2, h, w) * radius
    votes = np.stack([off[:, 0] + cx, off[:, 1] + cy], axis=1)  # (M, 2, h, w)
    bins = (int(np.ceil(size_hw[0] / bin_size)), int(np.ceil(size_hw[1] / bin_size)))
    peak_bin, _ = argmax_2d(hough_scores(probs, votes, bins, bin_size))
    peak = (peak_bin + 0.5) * bin_size  # (M, 2) input pixels
    v = votes.reshape(n * k, 2, -1)
    p = probs.reshape(n * k, -1)
    near = ((v - peak[:, :, None]) ** 2).sum(1) <= (radius / 2) ** 2
    wts = p * near
    total = wts.sum(-1, keepdims=True)
    mean = np.where(total > 0, (v * wts[:, None]).sum(-1) / np.maximum(total, 1e-12), peak)
    score = p.max(-1, keepdims=True)
    return np.concatenate([mean, score], axis=-1).reshape(n, k, 3).astype(np.float32)


def decode_regression(coords: np.ndarray, visibility: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    """Regression decoding: coords (N, K, 2) as 2x / W - 1, 2y / H - 1 (-1..1 across the input) and visibility
    logits (N, K) -> (N, K, 3)."""
    h, w = size_hw
    xy = (np.asarray(coords, np.float32) + 1) / 2 * np.array([w, h], np.float32)
    return np.concatenate([xy, sigmoid(visibility)[..., None]], axis=-1)


#: Output names of each head type, in the order the network returns them.
HEAD_OUTPUTS: dict[str, tuple[str, ...]] = {
    "regression": ("coords", "visibility"),
    "simplebaseline": ("heatmaps",),
    "grmi": ("heatmaps", "offsets"),
}


def decode_outputs(head: dict[str, Any], outputs: dict[str, np.ndarray], size_hw: tuple[int, int]) -> np.ndarray:
    """Keypoints (N, K, 3) in input pixels from a head's named outputs.

    ``head`` is the head description stored with a trained model: {"type": ..., "stride": ..., and "sigma" and
    "refine" for simplebaseline, "radius" for grmi}.
    """
    kind = head["type"]
    if kind == "regression":
        return decode_regression(outputs["coords"], outputs["visibility"], size_hw)
    if kind == "simplebaseline":
        return decode_heatmaps(outputs["heatmaps"], head["stride"], head.get("refine", "dark"), head["sigma"])
    if kind == "grmi":
        return decode_grmi(outputs["heatmaps"], outputs["offsets"], head["stride"], head["radius"], size_hw)
    raise ValueError(f"unknown head type {kind!r}; known: {', '.join(HEAD_OUTPUTS)}")
