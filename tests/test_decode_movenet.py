"""MoveNet SinglePose: the numpy decoder on synthetic heads with known answers, and parity with the graph."""

from __future__ import annotations

import numpy as np
import pytest

from posekit.decode import movenet as mn
from posekit.decode import sigmoid
from posekit.errors import OfflineError, PosekitError
from posekit.estimators.movenet import SINGLE_HEADS
from posekit.transforms import apply_affine

H = W = 8
K = 17


def _heads(center_cells, true_cells, fine, distractor_cells=None):
    """Heads for one person whose centre is center_cells[0] (others are decoys with the same probability).

    true_cells (K, 2) y, x: heatmap peaks (p = 0.9) the decoder must pick; fine (K, 2): their offsets;
    distractor_cells (K, 2): brighter peaks (p = 0.98) far from the person, which a plain argmax would pick.
    """
    heat = np.full((H, W, K), 0.01, np.float32)
    center = np.full((H, W, 1), 0.01, np.float32)
    regress = np.zeros((H, W, 2 * K), np.float32)
    offset = np.zeros((H, W, 2 * K), np.float32)
    for cy, cx in center_cells:
        center[cy, cx, 0] = 0.9
    cy, cx = center_cells[0]
    regress[cy, cx] = (true_cells - [cy, cx] + 0.2).reshape(-1)  # coarse guess 0.2 cells off the true peak
    for k, ((ky, kx), (oy, ox)) in enumerate(zip(true_cells, fine)):
        heat[ky, kx, k] = 0.9
        offset[ky, kx, 2 * k : 2 * k + 2] = oy, ox
    if distractor_cells is not None:
        for k, (dy, dx) in enumerate(distractor_cells):
            heat[dy, dx, k] = 0.98
    return heat, center, regress, offset


RNG = np.random.default_rng(7)
TRUE = np.stack([RNG.integers(2, 6, K), RNG.integers(2, 6, K)], axis=1)
FINE = RNG.uniform(-0.5, 0.5, (K, 2)).astype(np.float32)


def test_decode_single_heads_known_answer_and_distance_weighting():
    distractors = np.tile([[0, 7]], (K, 1))
    heads = _heads([(4, 3)], TRUE, FINE, distractors)
    out = mn.decode_single_heads(*heads)
    assert out.shape == (17, 3) and out.dtype == np.float32
    np.testing.assert_allclose(out[:, :2], (TRUE + FINE) / 8, atol=1e-6)
    np.testing.assert_allclose(out[:, 2], 0.9, atol=1e-6)
    # without the distance weighting the brighter distractors would win
    plain = heads[0].reshape(-1, K).argmax(0)
    assert (plain == 0 * W + 7).all()


def test_centre_prior_prefers_the_person_nearest_the_frame_centre():
    heads = _heads([(4, 4), (0, 0)], TRUE, FINE)  # equal centre probabilities; (4, 4) is the grid centre
    np.testing.assert_allclose(mn.decode_single_heads(*heads)[:, :2], (TRUE + FINE) / 8, atol=1e-6)
    heat, center, regress, offset = _heads([(0, 0)], TRUE, FINE)
    center[4, 4, 0] = 0.2  # weaker but central: 0.2 / 1.8 beats 0.9 / (5.66 + 1.8)
    regress[4, 4] = 0.0  # its joints would all be at the centre cell
    out = mn.decode_single_heads(heat, center, regress, offset)
    assert np.abs(out[:, :2] * 8 - 4).max() < 2.5  # decoded around (4, 4), not the (0, 0) person's joints


def _decode_reference(heatmap, center, regress, offset):
    """The module docstring's four steps, written plainly (float32 throughout, as the graph computes)."""
    h, w, k = heatmap.shape
    cy, cx = np.unravel_index(np.argmax(center[..., 0] * mn.center_weight(h, w)), (h, w))
    coarse = regress[cy, cx].reshape(k, 2) + np.float32([cy, cx])
    out = np.zeros((k, 3), np.float32)
    rows, cols = np.mgrid[0:h, 0:w].astype(np.float32)
    for j in range(k):
        dist = np.sqrt((rows - coarse[j, 0]) ** 2 + (cols - coarse[j, 1]) ** 2)
        score = heatmap[..., j]
        ky, kx = np.unravel_index(np.argmax(score / (dist + np.float32(np.float16(1.8)))), (h, w))
        cell = np.float32(np.float16([1 / h, 1 / w]).astype(np.float32))
        y = (np.float32(ky) + offset[ky, kx, 2 * j]) * cell[0]
        x = (np.float32(kx) + offset[ky, kx, 2 * j + 1]) * cell[1]
        out[j] = [y, x, score[ky, kx]]
    return out


def test_decode_equals_a_plain_per_joint_reference_on_random_heads():
    rng = np.random.default_rng(11)
    for trial in range(40):
        h = w = int(rng.choice([8, 48]))
        heat = sigmoid(rng.normal(-4, 2, (h, w, K)))
        if trial % 2:  # ties: the first cell in row-major order wins, as in the graph's argmax
            heat = np.round(heat, 2).astype(np.float32)
        center = sigmoid(rng.normal(-3, 2, (h, w, 1)))
        regress = rng.normal(0, h / 3, (h, w, 2 * K)).astype(np.float32)
        offset = rng.normal(0, 0.5, (h, w, 2 * K)).astype(np.float32)
        np.testing.assert_array_equal(mn.decode_single_heads(heat, center, regress, offset),
                                      _decode_reference(heat, center, regress, offset))


def test_center_weight():
    w = mn.center_weight(48, 48)
    assert w.shape == (48, 48) and w.dtype == np.float32
    assert w.argmax() == 24 * 48 + 24
    np.testing.assert_allclose(w[24, 24], 1 / 1.8, rtol=1e-3)
    np.testing.assert_allclose(w[0, 0], 1 / (24 * np.sqrt(2) + 1.8), rtol=1e-3)
    assert (w.astype(np.float16).astype(np.float32) == w).all()  # float16 values, as in the graph


def test_bad_head_shapes_rejected():
    heat, center, regress, offset = _heads([(4, 3)], TRUE, FINE)
    with pytest.raises(ValueError, match="head shapes"):
        mn.decode_single_heads(heat, center, regress[..., :17], offset)


def test_preprocess_letterbox_and_to_image():
    image = np.full((300, 150, 3), 9, np.uint8)
    x, back = mn.preprocess(image, 192)
    assert x.shape == (1, 192, 192, 3) and x.dtype == np.uint8
    assert x[0, :, :40].max() == 0 and x[0, 100, 96, 0] == 9
    pose_norm = np.array([[0.0, 0.0, 0.5], [0.5, 0.5, 0.6], [1.0, 0.75, 0.7]] + [[0.5, 0.5, 0.0]] * 14)
    pts = mn.to_image(pose_norm, back, 192)
    np.testing.assert_allclose(pts[:3], [[-75, 0, 0.5], [75, 150, 0.6], [150, 300, 0.7]], rtol=1e-5, atol=1e-4)


def test_preprocess_box_crop():
    image = np.zeros((200, 300, 3), np.uint8)
    image[50:150, 100:160] = 255
    x, back = mn.preprocess(image, 64, box_xyxy=[100, 50, 160, 150], margin=1.25)
    # the box (60 x 100) fills 1 / 1.25 of the square crop's height
    np.testing.assert_allclose(apply_affine(np.array([[6.4, 6.4], [57.6, 57.6]]), back), [[80, 50], [180, 150]])
    assert x[0, 32, 32, 0] == 255 and x[0, 32, 2, 0] == 0
    with pytest.raises(PosekitError, match="RGB"):
        mn.preprocess(np.zeros((10, 10, 5), np.uint8), 64)


@pytest.mark.network  # fetches the model files unless cached
@pytest.mark.parametrize("model", ["movenet-lightning", "movenet-thunder"])
def test_decode_matches_graph_on_golden(model, golden_dir):
    network = pytest.importorskip("posekit.network", reason="posekit.network (graph importer) not available yet")
    try:
        net = network.load_network(model, heads=["heatmap", "center", "regress", "offset"])
    except OfflineError as e:
        pytest.skip(f"model files not available offline: {e}")
    heads = net.spec.heads
    for name in ("photo", "random"):
        out = net.run(np.load(golden_dir / model / f"{name}.input.npy"))
        decoded = mn.decode_single_heads(**{k: out[t][0] for k, t in heads.items()})
        golden = np.load(golden_dir / model / f"{name}.Identity.npy")[0, 0]
        np.testing.assert_allclose(decoded, golden, atol=1e-3)


@pytest.mark.network  # fetches the model files unless cached
def test_batch_input_runs_each_crop_as_the_single_image_graph_does():
    """The graph keeps image 0 of its input; fed at its batch entry it runs every crop (tolerance: other conv
    kernels for a batch)."""
    network = pytest.importorskip("posekit.network", reason="posekit.network (graph importer) not available yet")
    try:
        single = network.load_network("movenet-lightning", heads=list(SINGLE_HEADS), pixels=True)
        batch = network.load_network("movenet-lightning", heads=list(SINGLE_HEADS), pixels=True, batch=True)
    except OfflineError as e:
        pytest.skip(f"model files not available offline: {e}")
    crops = np.random.default_rng(7).integers(0, 256, (3, 192, 192, 3)).astype(np.uint8)
    together = batch.run(crops)
    for i in range(3):
        alone = single.run(crops[i:i + 1])
        for name, value in alone.items():
            np.testing.assert_allclose(together[name][i], value[0], atol=1e-3)
    with pytest.raises(PosekitError, match="no batch input"):
        network.load_network("posenet", batch=True)
