"""Augmentation: one affine moves image content and keypoints together; flips swap left/right labels."""

from __future__ import annotations

import numpy as np
import pytest

from posekit.data.augment import AugmentConfig, half_body_box, jitter_colors, lower_body_mask, topdown_sample
from posekit.skeleton import COCO17
from posekit.transforms import apply_affine


def _dots(h: int, w: int, pts: np.ndarray) -> np.ndarray:
    """Black image with a distinct bright Gaussian dot per point (channel 0 = dot brightness by index)."""
    ys, xs = np.mgrid[0:h, 0:w] + 0.5
    img = np.zeros((h, w, 3), np.float64)
    for i, (x, y) in enumerate(pts):
        img[..., i % 3] += 250 * np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * 2.0**2))
    return np.clip(img, 0, 255).astype(np.uint8)


def _centroid(channel: np.ndarray) -> np.ndarray:
    g = channel.astype(np.float64)
    ys, xs = np.mgrid[0:g.shape[0], 0:g.shape[1]] + 0.5
    return np.array([(g * xs).sum(), (g * ys).sum()]) / g.sum()


PTS = np.array([[40.0, 30.0], [70.0, 35.0], [55.0, 80.0]])
KPS = np.concatenate([PTS, np.full((3, 1), 2.0)], axis=1).astype(np.float32)
BOX = np.array([30.0, 20.0, 80.0, 90.0])


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_keypoints_follow_the_image(seed):
    cfg = AugmentConfig(scale=0.2, rotation=40, rotation_prob=1.0, flip=0.5, half_body=0.0, color=0.0)
    perm = np.array([1, 0, 2])  # points 0 and 1 are a left/right pair
    crop, kps, m = topdown_sample(_dots(120, 100, PTS), BOX, KPS, (64, 48), 1.25, perm, np.zeros(3, bool), cfg,
                                  np.random.default_rng(seed))
    assert crop.shape == (64, 48, 3)
    source = perm if np.linalg.det(m[:, :2]) < 0 else np.arange(3)  # a flip swaps the labels of the pair
    np.testing.assert_allclose(kps[:, :2], apply_affine(PTS[source], m), atol=1e-4)
    for i in range(3):  # and the dot drawn for point i is where the affine sends point i (if not cut by the edge)
        expected = apply_affine(PTS[i][None], m)[0]
        if 6 < expected[0] < 42 and 6 < expected[1] < 58:
            np.testing.assert_allclose(_centroid(crop[..., i]), expected, atol=0.15)


def test_flip_swaps_pairs_and_mirrors():
    cfg = AugmentConfig(scale=0.0, rotation=0, flip=1.0, half_body=0.0, color=0.0)
    plain, kp0, _ = topdown_sample(_dots(120, 100, PTS), BOX, KPS, (64, 64), 1.25, np.array([1, 0, 2]),
                                   np.zeros(3, bool), None, None)
    flipped, kp1, m = topdown_sample(_dots(120, 100, PTS), BOX, KPS, (64, 64), 1.25, np.array([1, 0, 2]),
                                     np.zeros(3, bool), cfg, np.random.default_rng(0))
    np.testing.assert_array_equal(flipped, plain[:, ::-1])
    np.testing.assert_allclose(kp1[0, :2], [64 - kp0[1, 0], kp0[1, 1]], atol=1e-4)  # new "left" = old right mirrored
    assert np.linalg.det(m[:, :2]) < 0


def test_keypoints_leaving_the_crop_become_unlabelled():
    kps = KPS.copy()
    kps[2] = [5.0, 110.0, 2]  # far outside the box
    _, out, _ = topdown_sample(np.zeros((120, 100, 3), np.uint8), BOX, kps, (64, 64), 1.0, np.arange(3),
                               np.zeros(3, bool), None, None)
    np.testing.assert_array_equal(out[:, 2], [2, 2, 0])


def test_half_body_box_picks_a_half():
    lower = lower_body_mask(COCO17.keypoints)
    assert lower.sum() == 6 and lower[COCO17.index("left_hip")] and not lower[COCO17.index("nose")]
    kps = np.zeros((17, 3), np.float32)
    kps[:, 0] = np.arange(17) * 10
    kps[:, 1] = np.arange(17) * 10
    kps[:, 2] = 2
    box = half_body_box(kps, lower, np.random.default_rng(0))
    pts = kps[lower, :2] if box[1] > 100 else kps[~lower, :2]
    centre, half = (pts.min(0) + pts.max(0)) / 2, (pts.max(0) - pts.min(0)) / 2 * 1.5
    np.testing.assert_allclose(box, np.concatenate([centre - half, centre + half]))
    kps[:, 2] = 0
    assert half_body_box(kps, lower, np.random.default_rng(0)) is None


def test_colour_jitter_keeps_shape_and_changes_pixels():
    img = np.random.default_rng(0).integers(0, 255, (8, 8, 3)).astype(np.uint8)
    out = jitter_colors(img, 0.4, np.random.default_rng(1))
    assert out.shape == img.shape and out.dtype == np.uint8 and not np.array_equal(out, img)
    np.testing.assert_array_equal(jitter_colors(img, 0.0, np.random.default_rng(1)), img)


def test_same_rng_same_sample():
    cfg = AugmentConfig()
    args = (_dots(120, 100, PTS), BOX, KPS, (64, 64), 1.25, np.arange(3), np.zeros(3, bool), cfg)
    a = topdown_sample(*args, np.random.default_rng([0, 3, 7]))
    b = topdown_sample(*args, np.random.default_rng([0, 3, 7]))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
