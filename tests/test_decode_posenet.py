"""PoseNet: decoding synthetic fields with exact answers, pre-processing, plausibility on the golden outputs."""

from __future__ import annotations

import numpy as np
import pytest

from posekit.decode import posenet as pn
from posekit.errors import PosekitError
from posekit.skeleton import COCO17_NAMES
from posekit.transforms import apply_affine

STRIDE = 16
GRID = 13  # input 193 = 12 * 16 + 1
K = 17
E = len(pn.TREE_EDGES)


def _template(shift_x: float) -> np.ndarray:
    """(17, 2) x, y joint positions, each in its own cell (within 7 px of the cell's centre point)."""
    rng = np.random.default_rng(3)
    cells = np.array([(j % 3 + 1, j // 3 + 1) for j in range(K)], dtype=float)  # (cx, cy), cx 1..3, cy 1..6
    return cells * STRIDE + rng.uniform(-7, 7, (K, 2)) + [shift_x, 0]


def _fields(people: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, ...]:
    """Heatmap logits, offsets and displacements encoding ``people`` = [(joints (17, 2) x, y, logits (17,))]."""
    heat = np.full((GRID, GRID, K), -10.0, np.float32)
    off = np.zeros((GRID, GRID, 2 * K), np.float32)
    fwd = np.zeros((GRID, GRID, 2 * E), np.float32)
    bwd = np.zeros((GRID, GRID, 2 * E), np.float32)
    for joints, logits in people:
        cell = np.floor(joints / STRIDE + 0.5).astype(int)  # (x, y) cells
        for k in range(K):
            cx, cy = cell[k]
            heat[cy, cx, k] = logits[k]
            off[cy, cx, k], off[cy, cx, K + k] = joints[k, 1] - cy * STRIDE, joints[k, 0] - cx * STRIDE
        for e, (parent, child) in enumerate(pn.TREE_EDGES):
            (px, py), (cx, cy) = cell[parent], cell[child]
            d = joints[child] - joints[parent]
            fwd[py, px, e], fwd[py, px, E + e] = d[1], d[0]
            bwd[cy, cx, e], bwd[cy, cx, E + e] = -d[1], -d[0]
    return heat, off, fwd, bwd


A = _template(0.0)
B = _template(96.0)
LOGITS_A = 3.0 + 0.01 * np.arange(K)
LOGITS_B = np.full(K, 2.0)


def _sig(x):
    return 1 / (1 + np.exp(-np.asarray(x, dtype=np.float64)))


def test_tree_edges_form_a_tree_rooted_at_the_nose():
    parents = [p for p, _ in pn.TREE_EDGES]
    children = [c for _, c in pn.TREE_EDGES]
    assert len(set(children)) == 16 and COCO17_NAMES.index("nose") not in children
    assert all(p == 0 or p in children[:i] for i, p in enumerate(parents))  # each parent known before use
    named = {(COCO17_NAMES[p], COCO17_NAMES[c]) for p, c in pn.TREE_EDGES}
    assert ("left_shoulder", "left_hip") in named and ("right_knee", "right_ankle") in named


def test_decode_multi_recovers_two_people_exactly():
    people = pn.decode_multi(*_fields([(A, LOGITS_A), (B, LOGITS_B)]), output_stride=STRIDE)
    assert len(people) == 2
    (pa, sa), (pb, sb) = people
    np.testing.assert_allclose(pa[:, :2], A, atol=1e-3)
    np.testing.assert_allclose(pb[:, :2], B, atol=1e-3)
    np.testing.assert_allclose(pa[:, 2], _sig(LOGITS_A), rtol=1e-6)
    np.testing.assert_allclose(sa, _sig(LOGITS_A).mean(), rtol=1e-6)
    np.testing.assert_allclose(sb, _sig(LOGITS_B).mean(), rtol=1e-6)


def test_decode_multi_without_refinement_follows_displacements_only():
    people = pn.decode_multi(*_fields([(A, LOGITS_A)]), output_stride=STRIDE, refine_steps=0)
    np.testing.assert_allclose(people[0][0][:, :2], A, atol=1e-3)  # displacements are exact here too


def test_nms_threshold_and_max_people():
    fields = _fields([(A, LOGITS_A), (B, LOGITS_B)])
    assert len(pn.decode_multi(*fields, output_stride=STRIDE, nms_radius=200)) == 1  # B's roots all suppressed
    only_a = pn.decode_multi(*fields, output_stride=STRIDE, score_threshold=0.9)  # sigmoid(2) = 0.88 < 0.9
    assert len(only_a) == 1 and np.allclose(only_a[0][0][:, :2], A, atol=1e-3)
    assert len(pn.decode_multi(*fields, output_stride=STRIDE, max_people=1)) == 1
    assert pn.decode_multi(*fields, output_stride=STRIDE, score_threshold=0.999) == []


def test_instance_score_ignores_joints_claimed_by_earlier_people():
    ankle = COCO17_NAMES.index("left_ankle")
    b = B.copy()
    b[ankle] = A[ankle]  # B's left ankle is A's: found again, but not counted towards B's score
    logits_b = LOGITS_B.copy()
    logits_b[ankle] = LOGITS_A[ankle]
    (pa, _), (pb, sb) = pn.decode_multi(*_fields([(b, logits_b), (A, LOGITS_A)]),
                                        output_stride=STRIDE)
    np.testing.assert_allclose(pa[:, :2], A, atol=1e-3)
    np.testing.assert_allclose(pb[ankle, :2], A[ankle], atol=1e-3)
    np.testing.assert_allclose(sb, (_sig(LOGITS_B).sum() - _sig(LOGITS_B[ankle])) / K, rtol=1e-6)


def test_decode_single_takes_the_best_cell_per_joint():
    heat, off, _, _ = _fields([(A, LOGITS_A), (B, LOGITS_B)])
    pose = pn.decode_single(heat, off, output_stride=STRIDE)
    assert pose.shape == (17, 3) and pose.dtype == np.float32
    np.testing.assert_allclose(pose[:, :2], A, atol=1e-4)
    np.testing.assert_allclose(pose[:, 2], _sig(LOGITS_A), rtol=1e-6)


def test_local_maxima():
    s = np.zeros((4, 5, 2), np.float32)
    s[1, 1, 0], s[1, 2, 0] = 0.9, 0.8  # 0.8 is next to a larger value
    s[3, 4, 0] = 0.7
    s[2, 2, 1] = s[2, 3, 1] = 0.6  # a plateau: both count
    s[0, 4, 1] = 0.3  # under the threshold
    iy, ix, k = pn.local_maxima(s, threshold=0.5, radius=1)
    assert list(zip(iy, ix, k)) == [(1, 1, 0), (3, 4, 0), (2, 2, 1), (2, 3, 1)]
    assert len(pn.local_maxima(s, threshold=0.5, radius=3)[0]) == 3  # 0.7 at (3, 4) now sees 0.9


def test_preprocess_and_input_sizes():
    assert pn.input_size_ok(385) and pn.input_size_ok(257) and not pn.input_size_ok(384)
    image = np.full((200, 100, 3), 255, np.uint8)
    x, back = pn.preprocess(image, 257)
    assert x.shape == (1, 257, 257, 3) and x.dtype == np.uint8  # pixels: the network normalises them
    assert x.min() == 0 and x.max() == 255
    # the letterboxed input spans the padded square around the image (within a pixel: rows/columns are whole)
    np.testing.assert_allclose(apply_affine(np.array([[0.0, 0.0], [257.0, 257.0]]), back), [[-50, 0], [150, 200]],
                               atol=1.0)
    with pytest.raises(PosekitError, match="k\\*16\\+1"):
        pn.preprocess(image, 256)
    with pytest.raises(PosekitError, match="RGB"):
        pn.preprocess(np.zeros((10, 10, 5), np.uint8), 257)


def _golden(golden_dir, name):
    return np.load(golden_dir / "posenet" / f"photo.MobilenetV1_{name}_2_BiasAdd.npy")[0]


def test_decode_on_golden_photo_is_a_plausible_upright_person(golden_dir):
    heat, off = _golden(golden_dir, "heatmap"), _golden(golden_dir, "offset")
    fwd, bwd = _golden(golden_dir, "displacement_fwd"), _golden(golden_dir, "displacement_bwd")
    people = pn.decode_multi(heat, off, fwd, bwd)
    pose, score = people[0]
    assert score > 0.8 and all(s < 0.5 for _, s in people[1:])
    y = {n: pose[i, 1] for i, n in enumerate(COCO17_NAMES)}
    x = {n: pose[i, 0] for i, n in enumerate(COCO17_NAMES)}
    assert y["nose"] < y["left_shoulder"] < y["left_hip"] < y["left_knee"] < y["left_ankle"]
    assert y["nose"] < y["right_shoulder"] < y["right_hip"] < y["right_knee"] < y["right_ankle"]
    # he faces the camera, so his left side is on the image's right
    assert x["left_shoulder"] > x["right_shoulder"] and x["left_hip"] > x["right_hip"]
    # an independent model agrees: MoveNet Thunder (golden, same photo at 256 px) within one PoseNet cell
    thunder = np.load(golden_dir / "movenet-thunder" / "photo.Identity.npy")[0, 0]
    d = np.linalg.norm(pose[:, :2] - thunder[:, 1::-1] * 385, axis=1)
    assert d.max() < 16, d
    single = pn.decode_single(heat, off)
    assert np.median(np.linalg.norm(single[:, :2] - pose[:, :2], axis=1)) < 1.0
