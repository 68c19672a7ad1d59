"""Geometry: letterbox / crop_box maps agree with the pixels they produce; affine helpers are exact."""

from __future__ import annotations

import numpy as np
import pytest

from posekit.transforms import apply_affine, compose_affine, crop_box, invert_affine, letterbox


def _blob(h: int, w: int, centre_xy: tuple[float, float], sigma: float = 3.0) -> np.ndarray:
    """uint8 (h, w, 3) image with a Gaussian blob centred at continuous pixel coordinates ``centre_xy``."""
    ys, xs = np.mgrid[0:h, 0:w] + 0.5
    g = np.exp(-((xs - centre_xy[0]) ** 2 + (ys - centre_xy[1]) ** 2) / (2 * sigma**2))
    return np.repeat(np.round(g * 250)[..., None], 3, axis=2).astype(np.uint8)


def _centroid(image: np.ndarray) -> np.ndarray:
    """Intensity-weighted centre (x, y) in continuous pixel coordinates."""
    g = image[..., 0].astype(np.float64)
    ys, xs = np.mgrid[0 : g.shape[0], 0 : g.shape[1]] + 0.5
    return np.array([(g * xs).sum(), (g * ys).sum()]) / g.sum()


def test_letterbox_portrait_pads_left_right_centred():
    image = np.full((40, 20, 3), 200, np.uint8)
    out, m = letterbox(image, (32, 32))
    assert out.shape == (32, 32, 3) and out.dtype == np.uint8
    np.testing.assert_allclose(m, [[0.8, 0, 8], [0, 0.8, 0]])
    assert (out[:, :7] == 0).all() and (out[:, 25:] == 0).all()
    assert (out[:, 9:23] == 200).all()
    np.testing.assert_allclose(apply_affine(np.array([[0.0, 0.0], [20.0, 40.0]]), m), [[8, 0], [24, 32]])


def test_letterbox_landscape_pad_value_and_channel_axis_kept():
    image = np.full((10, 30, 1), 50, np.uint8)
    out, m = letterbox(image, (20, 20), pad_value=7)
    assert out.shape == (20, 20, 1)
    # resized to 20 x 7 (rows rounded), placed at row 6: the map is exact for the pixels actually produced
    np.testing.assert_allclose(m, [[2 / 3, 0, 0], [0, 0.7, 6]])
    assert (out[:6] == 7).all() and (out[-7:] == 7).all() and (out[6:13] == 50).all()


def test_letterbox_map_follows_image_content():
    centre = (61.3, 22.8)
    out, m = letterbox(_blob(90, 120, centre), (64, 48))
    np.testing.assert_allclose(_centroid(out), apply_affine(np.array([centre]), m)[0], atol=0.05)


@pytest.mark.parametrize("rotation", [0.0, 0.4, -2.0])
def test_crop_box_map_follows_image_content(rotation):
    centre = (70.2, 40.6)
    image = _blob(100, 140, centre, sigma=4.0)
    crop, m = crop_box(image, [40, 20, 100, 70], (96, 64), margin=1.5, rotation=rotation)
    assert crop.shape == (96, 64, 3)
    np.testing.assert_allclose(_centroid(crop), apply_affine(np.array([centre]), m)[0], atol=0.05)


def test_crop_box_geometry():
    box = np.array([10.0, 20.0, 50.0, 100.0])  # 40 x 80, centre (30, 60)
    _, m = crop_box(np.zeros((120, 80, 3), np.uint8), box, (64, 64), margin=1.25)
    # square crop of side 1.25 * 80 = 100 around the centre
    np.testing.assert_allclose(apply_affine(np.array([[30.0, 60.0], [-20.0, 10.0], [80.0, 110.0]]), m),
                               [[32, 32], [0, 0], [64, 64]], atol=1e-9)
    # clockwise rotation by 90 degrees: the image's "down" becomes the crop's "right"
    _, r = crop_box(np.zeros((120, 80, 3), np.uint8), box, (64, 64), margin=1.25, rotation=np.pi / 2)
    np.testing.assert_allclose(apply_affine(np.array([[30.0, 70.0]]), r), [[32 + 6.4, 32]], atol=1e-9)


def test_crop_box_matches_letterbox_on_the_same_region():
    rng = np.random.default_rng(0)
    image = np.repeat(rng.integers(0, 255, (60, 40, 1)), 3, axis=2).astype(np.uint8)
    image = np.ascontiguousarray(np.repeat(np.repeat(image, 2, axis=0), 2, axis=1))  # 120 x 80, blocky
    lb, m_lb = letterbox(image, (48, 48))
    cb, m_cb = crop_box(image, [0, 0, 80, 120], (48, 48), margin=1.0)
    np.testing.assert_allclose(m_cb, m_lb, atol=1e-12)
    assert np.abs(lb.astype(int) - cb.astype(int)).mean() < 1.0


def test_affine_helpers():
    m = np.array([[2.0, 0.5, 3.0], [-1.0, 1.5, -4.0]])
    pts = np.array([[1.0, 2.0, 0.9], [-3.0, 5.0, 0.1]], dtype=np.float32)
    out = apply_affine(pts, m)
    np.testing.assert_allclose(out, [[6, -2, 0.9], [-0.5, 6.5, 0.1]], rtol=1e-6)
    np.testing.assert_allclose(apply_affine(out, invert_affine(m)), pts, atol=1e-5)
    np.testing.assert_allclose(compose_affine(invert_affine(m), m), np.eye(3)[:2], atol=1e-12)
    shift = np.array([[1.0, 0, 10], [0, 1, 20]])
    np.testing.assert_allclose(apply_affine(pts[:, :2], compose_affine(shift, m)), out[:, :2] + [10, 20], rtol=1e-6)


def test_bad_sizes_rejected():
    with pytest.raises(ValueError):
        letterbox(np.zeros((0, 5, 3), np.uint8), (10, 10))
    with pytest.raises(ValueError):
        crop_box(np.zeros((10, 10, 3), np.uint8), [5, 5, 5, 8], (10, 10))


def test_invert_affine_closed_form_matches_the_matrix_inverse():
    rng = np.random.default_rng(5)
    for _ in range(200):
        m = rng.normal(size=(2, 3)) * [1, 1, 100]
        expected = np.linalg.inv(np.vstack([m, [0, 0, 1]]))[:2]
        np.testing.assert_allclose(invert_affine(m), expected, rtol=1e-9, atol=1e-9)
    with pytest.raises(ValueError, match="not invertible"):
        invert_affine(np.array([[1.0, 2.0, 0.0], [2.0, 4.0, 1.0]]))


def test_letterbox_pads_centred_in_the_image_dtype():
    image = np.random.default_rng(2).integers(0, 256, (30, 50, 3), dtype=np.uint8)
    plain, m = letterbox(image, (40, 40))
    assert plain.dtype == np.uint8
    np.testing.assert_allclose(m, [[0.8, 0, 0], [0, 0.8, 8]])
    assert (plain[:8] == 0).all() and (plain[-8:] == 0).all()  # 24 rows of image, centred, zero padding
    gray, _ = letterbox(image[..., :1], (40, 40), pad_value=7)
    assert gray.shape == (40, 40, 1) and gray[0, 0, 0] == 7


def test_crop_box_samples_where_its_affine_says():
    """cv2 puts pixel centres at integers, this module at i + 0.5: a bright pixel's centre, mapped by the returned
    affine, lands on the crop's brightest pixel, for rotated and scaled crops alike."""
    image = np.zeros((100, 120, 3), np.uint8)
    image[40, 70] = 255  # centre (70.5, 40.5)
    rng = np.random.default_rng(5)
    for _ in range(20):
        box = np.array([50.0, 25.0, 50.0 + rng.uniform(20, 40), 25.0 + rng.uniform(20, 40)])  # crops upscale 2-5x
        crop, m = crop_box(image, box, (96, 96), margin=1.2, rotation=rng.uniform(-3, 3))
        row, col = np.unravel_index(np.argmax(crop[..., 0]), crop.shape[:2])
        np.testing.assert_allclose(apply_affine(np.array([[70.5, 40.5]]), m)[0], [col + 0.5, row + 0.5], atol=0.75)
