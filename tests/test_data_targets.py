"""Training targets and their decoders: encode -> decode round trips land on the keypoints, and each refinement
does what it claims on maps with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from posekit.data.targets import (
    disk_offset_targets,
    encode_targets,
    from_grid,
    gaussian_targets,
    regression_targets,
    to_grid,
)
from posekit.decode import sigmoid
from posekit.decode.heatmap import (
    argmax_2d,
    dark_refine,
    decode_grmi,
    decode_heatmaps,
    decode_outputs,
    hough_scores,
    quarter_offset,
)

# interior keypoints (x, y, v) of a 64 x 64 input, plus one unlabelled
KPS = np.array([[21.3, 30.7, 2], [40.1, 25.2, 1], [33.0, 44.6, 2], [0.0, 0.0, 0]], np.float32)


def test_grid_convention():
    # cell 0 of a stride-4 map covers input pixels [0, 4): its centre is x = 2
    np.testing.assert_allclose(from_grid(np.array([0.0, 1.0]), 4), [2.0, 6.0])
    np.testing.assert_allclose(to_grid(from_grid(np.array([3.7]), 8), 8), [3.7], atol=1e-6)


def test_regression_targets_and_decode_round_trip():
    t = regression_targets(KPS, (64, 32))
    np.testing.assert_allclose(t["coords"][0], [2 * 21.3 / 32 - 1, 2 * 30.7 / 64 - 1], rtol=1e-6)
    np.testing.assert_array_equal(t["coord_weight"], [1, 1, 1, 0])
    np.testing.assert_array_equal(t["visible"], [1, 0, 1, 0])  # v == 1 is labelled but hidden
    logits = np.where(t["visible"] > 0, 10.0, -10.0)[None]
    out = decode_outputs({"type": "regression"}, {"coords": t["coords"][None], "visibility": logits}, (64, 32))
    np.testing.assert_allclose(out[0, :3, :2], KPS[:3, :2], atol=1e-4)
    assert out[0, 0, 2] > 0.99 and out[0, 1, 2] < 0.01


def test_gaussian_targets_peak_and_weights():
    t = gaussian_targets(KPS, (16, 16), 4.0, 2.0)
    assert t["heatmaps"].shape == (4, 16, 16)
    np.testing.assert_array_equal(t["heatmap_weight"], [1, 1, 1, 0])
    assert t["heatmaps"][3].max() == 0
    xy, peak = argmax_2d(t["heatmaps"][:3])
    np.testing.assert_array_equal(xy, np.round(to_grid(KPS[:3, :2], 4.0)).astype(int))
    assert (peak > 0.9).all()


@pytest.mark.parametrize("refine,tol", [("dark", 0.05), ("quarter", 1.0), ("none", 2.0)])
def test_heatmap_decoding_refinements(refine, tol):
    t = gaussian_targets(KPS, (16, 16), 4.0, 2.0)
    out = decode_heatmaps(t["heatmaps"][None, :3], 4.0, refine, 2.0)
    err = np.abs(out[0, :, :2] - KPS[:3, :2]).max()
    assert err <= tol, f"{refine}: {err:.3f} px"


def test_dark_recovers_exact_centre_of_a_gaussian():
    ys, xs = np.mgrid[0:15, 0:15]
    m = np.exp(-((xs - 7.3) ** 2 + (ys - 6.8) ** 2) / (2 * 1.5**2))[None]
    np.testing.assert_allclose(dark_refine(m, np.array([[7, 7]]), 1.5), [[7.3, 6.8]], atol=0.02)


def test_quarter_offset_moves_towards_higher_neighbour_and_not_on_border():
    m = np.zeros((1, 5, 5), np.float32)
    m[0, 2, 2], m[0, 2, 3], m[0, 1, 2] = 1.0, 0.5, 0.2
    np.testing.assert_allclose(quarter_offset(m, np.array([[2, 2]])), [[2.25, 1.75]])
    np.testing.assert_allclose(quarter_offset(m, np.array([[0, 4]])), [[0.0, 4.0]])


def test_disk_targets_radius_and_offsets():
    t = disk_offset_targets(KPS, (8, 8), 8.0, 10.0)
    assert t["disks"].shape == (4, 8, 8) and t["offsets"].shape == (4, 2, 8, 8)
    assert t["disks"][3].sum() == 0
    cx, cy = from_grid(np.arange(8), 8.0)[None, :], from_grid(np.arange(8), 8.0)[:, None]
    inside = (cx - KPS[0, 0]) ** 2 + (cy - KPS[0, 1]) ** 2 <= 100
    np.testing.assert_array_equal(t["disks"][0] > 0, inside)
    # centre + offset * radius is the keypoint, at every cell
    np.testing.assert_allclose(cx + t["offsets"][0, 0] * 10, np.full((8, 8), KPS[0, 0]), atol=1e-4)


def test_grmi_decoding_exact_offsets_recover_keypoints():
    t = disk_offset_targets(KPS, (8, 8), 8.0, 10.0)
    logits = np.where(t["disks"] > 0, 6.0, -6.0)[None]
    out = decode_grmi(logits, t["offsets"].reshape(1, 8, 8, 8), 8.0, 10.0, (64, 64))
    np.testing.assert_allclose(out[0, :3, :2], KPS[:3, :2], atol=1e-3)
    assert (out[0, :3, 2] > 0.99).all() and out[0, 3, 2] < 0.01


def test_hough_votes_split_bilinearly():
    probs = np.array([[[1.0]]])
    votes = np.array([[[[3.0]], [[2.5]]]])  # x = 3.0 -> halfway between bins 2 and 3 (centres 2.5, 3.5)
    s = hough_scores(probs, votes, (4, 5), 1.0)
    np.testing.assert_allclose(s[0, 2, 2:4], [0.5, 0.5])
    assert s.sum() == pytest.approx(1.0)


def test_encode_targets_dispatch_and_sigmoid():
    t = encode_targets({"type": "grmi", "stride": 8.0, "radius": 8.0}, KPS, (64, 64))
    assert set(t) == {"disks", "offsets"} and t["disks"].shape == (4, 8, 8)
    with pytest.raises(ValueError, match="unknown head"):
        encode_targets({"type": "nope"}, KPS, (64, 64))
    with np.errstate(over="raise"):  # no overflow on large inputs; below -88 it gives under 1e-38
        np.testing.assert_allclose(sigmoid(np.array([-1000.0, 0.0, 1000.0])), [0, 0.5, 1], atol=1e-38)
