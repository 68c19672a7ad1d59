"""OKS, OKS-NMS, greedy matching, torso size and PCK on hand-made cases with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from posekit.eval import metrics
from posekit.skeleton import COCO17


def _gt(xy: np.ndarray, v: float = 2.0) -> np.ndarray:
    return np.concatenate([np.asarray(xy, dtype=float), np.full((len(xy), 1), v)], axis=1)


def test_oks_exact_prediction_is_one():
    rng = np.random.default_rng(0)
    gt = _gt(rng.uniform(0, 100, (17, 2)))
    assert metrics.oks(gt, gt, 500.0, COCO17.sigmas) == pytest.approx(1.0)


def test_oks_matches_the_formula_for_a_known_offset():
    # One labelled keypoint, sigma 0.5 -> (2 sigma)^2 = 1, area 100: OKS = exp(-d^2 / 200) = 0.5 at d^2 = 200 ln 2.
    gt = _gt(np.zeros((2, 2)))
    gt[1, 2] = 0  # unlabelled: ignored whatever the prediction says there
    pred = np.array([[math.sqrt(200 * math.log(2)), 0.0, 1.0], [1e6, 1e6, 1.0]])
    assert metrics.oks(pred, gt, 100.0, [0.5, 0.5]) == pytest.approx(0.5)


def test_oks_averages_over_labelled_keypoints_only():
    gt = _gt(np.zeros((3, 2)))
    gt[2, 2] = 0
    d = math.sqrt(200 * math.log(2))
    pred = np.array([[0.0, 0.0], [0.0, d], [5e3, 5e3]])  # exact, OKS 0.5, unlabelled
    assert metrics.oks(pred, gt, 100.0, [0.5] * 3) == pytest.approx(0.75)


def test_oks_without_labelled_keypoints_is_zero():
    gt = _gt(np.zeros((17, 2)), v=0)
    assert metrics.oks(gt, gt, 100.0, COCO17.sigmas) == 0.0


def test_oks_matrix_shape_and_empty_inputs():
    gt = _gt(np.zeros((17, 2)))
    assert metrics.oks_matrix(np.zeros((3, 17, 3)), np.stack([gt, gt]), np.ones(2), COCO17.sigmas).shape == (3, 2)
    assert metrics.oks_matrix(np.zeros((0, 17, 3)), gt[None], np.ones(1), COCO17.sigmas).shape == (0, 1)


def test_oks_matrix_equals_pycocotools():
    coco = pytest.importorskip("pycocotools.coco")
    cocoeval = pytest.importorskip("pycocotools.cocoeval")
    rng = np.random.default_rng(1)
    gts = _gt(rng.uniform(0, 200, (3 * 17, 2))).reshape(3, 17, 3)
    gts[..., 2] = rng.integers(0, 3, (3, 17))
    areas = np.array([900.0, 2500.0, 12000.0])
    preds = gts[[0, 1, 2, 0]].copy()
    preds[..., :2] += rng.normal(0, 8, preds[..., :2].shape)
    gt_api = coco.COCO()
    gt_api.dataset = {
        "images": [{"id": 1}],
        "categories": [{"id": 1, "name": "person"}],
        "annotations": [{"id": i + 1, "image_id": 1, "category_id": 1, "iscrowd": 0, "area": float(a),
                         "bbox": [0, 0, 10, 10], "keypoints": g.ravel().tolist(),
                         "num_keypoints": int((g[:, 2] > 0).sum())} for i, (g, a) in enumerate(zip(gts, areas))],
    }
    gt_api.createIndex()
    scores = np.linspace(0.9, 0.6, len(preds))
    dt_api = gt_api.loadRes([{"image_id": 1, "category_id": 1, "keypoints": p.ravel().tolist(), "score": float(s)}
                             for p, s in zip(preds, scores)])
    evaluator = cocoeval.COCOeval(gt_api, dt_api, iouType="keypoints")
    evaluator.evaluate()
    expected = evaluator.ious[(1, 1)]
    assert np.allclose(metrics.oks_matrix(preds, gts, areas, COCO17.sigmas), expected)


def test_oks_nms_drops_duplicates_and_keeps_best_first():
    base = np.tile([50.0, 50.0, 1.0], (17, 1))
    far = base + [500.0, 0.0, 0.0]
    poses = np.stack([base, base + [0.5, 0.0, 0.0], far])
    keep = metrics.oks_nms(poses, np.array([0.8, 0.9, 0.7]), np.full(3, 1e4), COCO17.sigmas, thr=0.9)
    assert keep.tolist() == [1, 2]
    # a threshold above every similarity keeps everyone, best score first
    assert metrics.oks_nms(poses, np.array([0.8, 0.9, 0.7]), np.full(3, 1e4), COCO17.sigmas, thr=1.0).tolist() == [
        1, 0, 2]
    assert metrics.oks_nms(np.zeros((0, 17, 3)), np.zeros(0), np.zeros(0), COCO17.sigmas, 0.9).tolist() == []


def test_greedy_match_goes_by_score_then_similarity():
    sim = np.array([[0.9, 0.8], [0.95, 0.1], [0.3, 0.2]])
    # prediction 1 (best score) takes gt 0; prediction 0 then takes gt 1; prediction 2 finds none free
    assert sorted(metrics.greedy_match(sim, [0.5, 0.9, 0.4], min_similarity=0.5)) == [(0, 1), (1, 0)]
    assert metrics.greedy_match(sim, [0.5, 0.9, 0.4], min_similarity=0.85) == [(1, 0)]
    assert metrics.greedy_match(np.zeros((0, 2)), [], 0.5) == []


def test_torso_size_is_the_longest_labelled_diagonal():
    gt = np.zeros((3, 17, 3))
    gt[:, [5, 6, 11, 12], 2] = 2
    gt[:, 12, :2] = [3, 4]  # left_shoulder (0,0) -> right_hip: 5
    gt[:, 11, :2] = [6, 8]  # right_shoulder (0,0) -> left_hip: 10
    gt[1, 11, 2] = 0  # second person: only the 5-pixel diagonal is labelled
    gt[2, [5, 6], 2] = 0  # third person: no shoulder, no torso
    sizes = metrics.torso_sizes(gt)
    assert sizes[:2].tolist() == [10.0, 5.0]
    assert math.isnan(sizes[2])


def test_pck_counts_labelled_keypoints_within_alpha_torso():
    gt = np.zeros((2, 4, 3))
    pred = np.zeros((2, 4, 2))
    pred[0, :, 0] = [1.0, 2.0, 3.0, 100.0]  # person 0, torso 10: threshold 2 px -> hit, hit (edge), miss, miss
    vis = np.array([[True, True, True, False], [True, True, True, True]])  # person 0's 4th joint unlabelled
    norm = np.array([10.0, np.nan])  # person 1 has no torso: left out
    assert metrics.pck(pred, gt, vis, norm) == pytest.approx(2 / 3)
    assert metrics.pck(pred, gt, vis, norm, alpha=0.5) == pytest.approx(1.0)
    per_joint = metrics.per_joint_pck(pred, gt, vis, norm)
    assert per_joint[:3].tolist() == [1.0, 1.0, 0.0]
    assert math.isnan(per_joint[3])
    assert math.isnan(metrics.pck(pred, gt, np.zeros((2, 4), bool), norm))


def test_pck_with_missing_prediction_counts_a_miss():
    gt = np.zeros((1, 2, 3))
    pred = np.full((1, 2, 3), np.inf)
    assert metrics.pck(pred, gt, np.ones((1, 2), bool), np.array([10.0])) == 0.0


def test_head_size_is_0_6_times_the_head_box_diagonal():
    assert metrics.head_sizes(np.array([[10, 20, 40, 60], [0, 0, 5, 12]])).tolist() == pytest.approx([30.0, 7.8])


def _mpii_people(n: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """n people, all 16 MPII joints labelled at distinct places; returns gt (n, 16, 2) and vis (n, 16)."""
    gt = np.arange(n * 32, dtype=float).reshape(n, 16, 2) * 10
    return gt, np.ones((n, 16), dtype=bool)


def test_pckh_threshold_is_alpha_times_head_size_inclusive():
    gt, vis = _mpii_people(1)
    head = np.array([30.0])  # alpha 0.5 -> 15 px, alpha 0.1 -> 3 px
    for offset, at_05, at_01 in ((15.0, 1.0, 0.0), (15.01, 0.0, 0.0), (3.0, 1.0, 1.0), (3.01, 1.0, 0.0)):
        pred = gt + [offset, 0.0]
        assert metrics.pckh(pred, gt, vis, head, 0.5)["Mean"] == at_05, offset
        assert metrics.pckh(pred, gt, vis, head, 0.1)["Mean"] == at_01, offset


def test_pckh_table_rows_and_the_mean_without_pelvis_and_thorax():
    gt, vis = _mpii_people(1)
    pred = gt.copy()
    pred[0, [6, 7]] += 100  # pelvis and thorax wrong: the conventional mean leaves them out
    table = metrics.pckh(pred, gt, vis, np.array([20.0]))
    assert list(table) == ["Head", "Shoulder", "Elbow", "Wrist", "Hip", "Knee", "Ankle", "Mean", "Mean (all 16)"]
    assert all(table[k] == 1.0 for k in list(table)[:8])
    assert table["Mean (all 16)"] == pytest.approx(14 / 16)
    pred[0, 9] += 100  # head top wrong: Head row 0, Mean 13 of 14 (upper neck counts in the mean, not in a row)
    table = metrics.pckh(pred, gt, vis, np.array([20.0]))
    assert table["Head"] == 0.0 and table["Mean"] == pytest.approx(13 / 14)


def test_pckh_only_labelled_joints_count_and_sides_are_averaged():
    gt, vis = _mpii_people(2)
    pred = gt.copy()
    right_ankle, left_ankle = 0, 5
    pred[0, right_ankle] += 50  # right ankle: 1 of 2 people correct -> 0.5
    vis[1, left_ankle] = False  # left ankle labelled once, correct -> 1.0
    pred[1, left_ankle] += 1e4  # unlabelled: ignored however wrong
    vis[:, [12, 13]] = False  # shoulders never labelled: no value
    table = metrics.pckh(pred, gt, vis, np.array([20.0, 20.0]))
    assert table["Ankle"] == pytest.approx(0.75)  # (0.5 + 1.0) / 2, as the MPII code averages sides, not pooled 2/3
    assert math.isnan(table["Shoulder"])
    assert table["Mean"] == pytest.approx(1 - 1 / (2 * 14 - 1 - 4))  # 23 labelled non-pelvis/thorax joints, 1 miss
