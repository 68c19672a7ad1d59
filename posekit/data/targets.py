"""Training targets for each head type, from keypoints in network-input pixels (pure numpy, per sample).

Grid convention (shared with `posekit.decode.heatmap`): an output map of stride ``s`` has cell (j, i) covering input
pixels [i s, (i + 1) s) x [j s, (j + 1) s), centred at ((i + 0.5) s, (j + 0.5) s); see `posekit.transforms.to_grid`
and `from_grid`.
A keypoint counts as labelled when its COCO visibility v > 0 and as visible when v == 2.
"""

from __future__ import annotations

import numpy as np

from posekit.transforms import from_grid, to_grid


def regression_targets(keypoints: np.ndarray, size_hw: tuple[int, int]) -> dict[str, np.ndarray]:
    """coords (K, 2) 2x / W - 1, 2y / H - 1 (-1..1 across the input, 0 at its centre); coord_weight (K,) 1 for
    labelled keypoints; visible (K,) 1 where v == 2."""
    h, w = size_hw
    kps = np.asarray(keypoints, dtype=np.float32)
    coords = kps[:, :2] / np.array([w, h], np.float32) * 2 - 1
    labelled = kps[:, 2] > 0
    return {
        "coords": np.where(labelled[:, None], coords, 0.0).astype(np.float32),
        "coord_weight": labelled.astype(np.float32),
        "visible": (kps[:, 2] == 2).astype(np.float32),
    }


def _cell_centres(map_hw: tuple[int, int], stride: float) -> tuple[np.ndarray, np.ndarray]:
    """Input-pixel x (1, W) and y (H, 1) of the cell centres of a map."""
    return from_grid(np.arange(map_hw[1]), stride)[None, :], from_grid(np.arange(map_hw[0]), stride)[:, None]


def gaussian_targets(keypoints: np.ndarray, map_hw: tuple[int, int], stride: float,
                     sigma: float) -> dict[str, np.ndarray]:
    """SimpleBaseline targets: heatmaps (K, h, w) exp(-d^2 / 2 sigma^2) with d in cells (peak 1 at the keypoint,
    all zero for unlabelled ones); heatmap_weight (K,) 1 for labelled keypoints."""
    kps = np.asarray(keypoints, dtype=np.float32)
    g = to_grid(kps[:, :2], stride)
    ys, xs = np.arange(map_hw[0], dtype=np.float32), np.arange(map_hw[1], dtype=np.float32)
    dx2 = (xs[None, :] - g[:, :1]) ** 2  # (K, w)
    dy2 = (ys[None, :] - g[:, 1:]) ** 2  # (K, h)
    maps = np.exp(-(dy2[:, :, None] + dx2[:, None, :]) / (2 * sigma**2))
    labelled = kps[:, 2] > 0
    return {
        "heatmaps": np.where(labelled[:, None, None], maps, 0.0).astype(np.float32),
        "heatmap_weight": labelled.astype(np.float32),
    }


def disk_offset_targets(keypoints: np.ndarray, map_hw: tuple[int, int], stride: float,
                        radius: float) -> dict[str, np.ndarray]:
    """G-RMI targets.

    disks (K, h, w): 1 where the cell centre lies within ``radius`` input pixels of a labelled keypoint;
    offsets (K, 2, h, w): (keypoint - cell centre) / radius, i.e. the vector to the keypoint in units of the radius.
    Offsets are only meaningful (and only trained) inside the disk.
    """
    kps = np.asarray(keypoints, dtype=np.float32)
    cx, cy = _cell_centres(map_hw, stride)
    dx = kps[:, 0, None, None] - cx[None]  # (K, 1, w)
    dy = kps[:, 1, None, None] - cy[None]  # (K, h, 1)
    dx, dy = np.broadcast_arrays(dx, dy)
    disks = (dx**2 + dy**2 <= radius**2) & (kps[:, 2, None, None] > 0)
    return {
        "disks": disks.astype(np.float32),
        "offsets": (np.stack([dx, dy], axis=1) / radius).astype(np.float32),
    }


def encode_targets(head: dict, keypoints: np.ndarray, size_hw: tuple[int, int]) -> dict[str, np.ndarray]:
    """Targets of one sample for the head described by ``head`` (as `posekit.decode.heatmap.decode_outputs`
    reads it); keypoints (K, 3) in input pixels of a ``size_hw`` input."""
    kind = head["type"]
    if kind not in ("regression", "simplebaseline", "grmi"):
        raise ValueError(f"unknown head type {kind!r}")
    if kind == "regression":
        return regression_targets(keypoints, size_hw)
    stride = head["stride"]
    map_hw = (int(round(size_hw[0] / stride)), int(round(size_hw[1] / stride)))
    if kind == "simplebaseline":
        return gaussian_targets(keypoints, map_hw, stride, head["sigma"])
    return disk_offset_targets(keypoints, map_hw, stride, head["radius"])
