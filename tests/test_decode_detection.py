"""Box utilities (IoU, NMS, weighted NMS, person filter) and the CenterNet / NanoDet decoders, on tiny exact arrays
(plus @network checks of both detectors on a real photo)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from posekit.decode import nanodet
from posekit.decode.centernet import DETECTIONS_OUTPUT, decode_centernet
from posekit.decode.detection import iou, nms, persons, weighted_nms
from posekit.errors import OfflineError
from posekit.io import as_rgb
from posekit.transforms import apply_affine, invert_affine, letterbox


def test_iou_known_values():
    a = np.array([[0, 0, 2, 2], [10, 10, 12, 12]], dtype=np.float32)
    b = np.array([[1, 1, 3, 3], [0, 0, 2, 2], [2, 0, 4, 2]], dtype=np.float32)
    got = iou(a, b)
    assert got.shape == (2, 3)
    np.testing.assert_allclose(got[0], [1 / 7, 1.0, 0.0])  # overlap, identical, touching edge
    np.testing.assert_allclose(got[1], [0.0, 0.0, 0.0])


def test_iou_degenerate_boxes_give_zero():
    assert iou([0, 0, 0, 0], [0, 0, 0, 0])[0, 0] == 0.0
    assert iou([0, 0, 5, 0], [0, 0, 5, 5])[0, 0] == 0.0
    assert iou(np.zeros((0, 4)), [[0, 0, 1, 1]]).shape == (0, 1)


def test_nms_suppresses_overlaps_by_score():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30]], dtype=np.float32)
    scores = np.array([0.8, 0.9, 0.7])
    # IoU(box0, box1) = 81 / 119 = 0.68
    np.testing.assert_array_equal(nms(boxes, scores, iou_thr=0.5), [1, 2])
    np.testing.assert_array_equal(nms(boxes, scores, iou_thr=0.7), [1, 0, 2])
    np.testing.assert_array_equal(nms(boxes, scores, iou_thr=0.5, max_det=1), [1])
    assert nms(np.zeros((0, 4)), np.zeros(0)).dtype == np.int64


def test_nms_threshold_is_strict_and_ties_keep_input_order():
    boxes = np.array([[0, 0, 2, 2], [1, 1, 3, 3]], dtype=np.float32)
    np.testing.assert_array_equal(nms(boxes, [0.5, 0.5], iou_thr=1 / 7), [0, 1])
    np.testing.assert_array_equal(nms(boxes, [0.5, 0.5], iou_thr=0.1), [0])


def test_weighted_nms_averages_groups_by_score():
    boxes = np.array([[0, 0, 10, 10], [2, 2, 12, 12], [50, 50, 60, 60]], dtype=np.float32)
    scores = [0.6, 0.2, 0.5]  # IoU(0, 1) = 64 / 136 = 0.47
    kps = np.array([[0, 0], [4, 8], [1, 1]], dtype=np.float32)  # one keypoint per box, averaged alike
    merged, out_scores = weighted_nms(np.concatenate([boxes, kps], axis=1), scores, iou_thr=0.3)
    np.testing.assert_allclose(merged[:, :4], [[0.5, 0.5, 10.5, 10.5], [50, 50, 60, 60]])
    np.testing.assert_allclose(out_scores, [0.6, 0.5])
    np.testing.assert_allclose(merged[:, 4:], [[1, 2], [1, 1]])


def test_weighted_nms_below_threshold_keeps_boxes_apart():
    boxes = np.array([[0, 0, 10, 10], [2, 2, 12, 12]], dtype=np.float32)
    merged, out_scores = weighted_nms(boxes, [0.6, 0.2], iou_thr=0.5)
    np.testing.assert_allclose(merged, boxes)
    np.testing.assert_allclose(out_scores, [0.6, 0.2])
    assert len(weighted_nms(boxes, [0.6, 0.2], iou_thr=0.5, max_det=1)[0]) == 1
    assert weighted_nms(np.zeros((0, 4)), [])[0].shape == (0, 4)


def _centernet_rows() -> np.ndarray:
    # x1, y1, x2, y2, score, class — deliberately not sorted
    return np.array([[[10, 20, 110, 220, 0.40, 0],
                      [300, 40, 380, 90, 0.90, 2],
                      [12, 22, 108, 230, 0.80, 0],
                      [200, 100, 260, 300, 0.20, 0]]], dtype=np.float32)


def test_decode_centernet_sorts_and_splits_columns():
    boxes, scores, classes = decode_centernet({DETECTIONS_OUTPUT: _centernet_rows()})
    np.testing.assert_allclose(scores, [0.9, 0.8, 0.4, 0.2])
    np.testing.assert_array_equal(classes, [2, 0, 0, 0])
    assert classes.dtype == np.int64
    np.testing.assert_allclose(boxes[1], [12, 22, 108, 230])
    boxes2, _, _ = decode_centernet(_centernet_rows()[0])
    np.testing.assert_allclose(boxes2, boxes)


def test_decode_centernet_rejects_wrong_shape():
    with pytest.raises(ValueError, match=r"\[1, N, 6\]"):
        decode_centernet(np.zeros((1, 100, 4), dtype=np.float32))


def test_persons_filters_class_score_and_duplicates():
    boxes, scores, classes = decode_centernet(_centernet_rows())
    kept_boxes, kept_scores = persons(boxes, scores, classes, score_thr=0.3, iou_thr=0.6)
    # class 2 dropped, score 0.2 dropped, the 0.4 box is a duplicate (IoU 0.91) of the 0.8 one
    np.testing.assert_allclose(kept_scores, [0.8])
    np.testing.assert_allclose(kept_boxes, [[12, 22, 108, 230]])
    _, all_scores = persons(boxes, scores, classes, score_thr=0.1, iou_thr=0.95)
    np.testing.assert_allclose(all_scores, [0.8, 0.4, 0.2])


def _nanodet_outputs() -> dict[str, np.ndarray]:
    out = {}
    for cls_name, reg_name, stride in nanodet.LEVELS:
        n = (416 // stride) ** 2
        out[cls_name] = np.zeros((1, n, 80), np.float32)
        out[reg_name] = np.zeros((1, n, 44), np.float32)
    cls_name, reg_name, _ = nanodet.LEVELS[1]  # stride 16, 26 x 26 cells
    cell = 3 * 26 + 5  # row 3, col 5: centre (5.5 * 16, 3.5 * 16) = (88, 56)
    out[cls_name][0, cell, [0, 17]] = [0.9, 0.4]
    bins = out[reg_name][0, cell].reshape(4, 11)
    bins[[0, 1, 2, 3], [2, 4, 1, 6]] = 60.0  # left 2, top 4, right 1, bottom 6 strides
    return out


def test_decode_nanodet_cell_centre_and_distances():
    boxes, scores, classes = nanodet.decode_nanodet(_nanodet_outputs(), score_thr=0.3)
    np.testing.assert_allclose(scores, [0.9, 0.4])
    np.testing.assert_array_equal(classes, [0, 17])
    np.testing.assert_allclose(boxes, [[56, -8, 104, 152]] * 2, atol=1e-3)
    assert len(nanodet.decode_nanodet(_nanodet_outputs(), score_thr=0.5)[0]) == 1
    kept, _ = persons(boxes, scores, classes, score_thr=0.3)
    np.testing.assert_allclose(kept, [[56, -8, 104, 152]], atol=1e-3)


def test_nanodet_expected_distance_and_shape_check():
    np.testing.assert_allclose(nanodet.expected_distance([[0.0, np.log(3.0)], [5.0, 5.0]]), [0.75, 0.5])
    outputs = _nanodet_outputs()
    with pytest.raises(ValueError, match="expected 1600 cells for a 320 input"):
        nanodet.decode_nanodet(outputs, input_size=320)


def _gt_box(coco_mini) -> list[float]:
    """x1, y1, x2, y2 of the one person in COCO train 000000535506.jpg (a woman standing in a kitchen)."""
    data = json.loads((coco_mini / "annotations" / "person_keypoints_train2017.json").read_text())
    image_id = next(im["id"] for im in data["images"] if im["file_name"] == "000000535506.jpg")
    ((x, y, w, h),) = [a["bbox"] for a in data["annotations"] if a["image_id"] == image_id]
    return [x, y, x + w, y + h]


@pytest.mark.network  # fetches the model files unless cached
def test_centernet_graph_semantics_and_person_box_on_a_real_photo(coco_mini):
    network = pytest.importorskip("posekit.network", reason="posekit.network (graph importer) not available yet")
    try:
        net = network.load_network("centernet")
    except OfflineError as e:
        pytest.skip(f"model files not available offline: {e}")
    resized, m = letterbox(as_rgb(coco_mini / "train2017" / "000000535506.jpg"), (512, 512))
    out = net.run(resized[None].astype(np.float32))  # raw 0..255: the graph folds its x / 255 in
    boxes, scores, classes = decode_centernet(out)
    # the in-graph decode is what the module docstring says: peak cell (row, col) of the class heatmap,
    # box = 4 * (col, row) -/+ the regressed side distances
    heat, sides = out["tower_0/keypoints:0"][0], out["tower_0/wh:0"][0]
    row, col, cls = np.unravel_index(np.argmax(heat), heat.shape)
    l_, t_, r_, b_ = sides[row, col]
    np.testing.assert_allclose(boxes[0], [4 * col - l_, 4 * row - t_, 4 * col + r_, 4 * row + b_], atol=1e-3)
    assert scores[0] == pytest.approx(heat[row, col, cls], abs=1e-6) and classes[0] == cls == 0
    kept, kept_scores = persons(boxes, scores, classes)
    found = apply_affine(kept[:1].reshape(2, 2), invert_affine(m)).reshape(1, 4)
    assert kept_scores[0] > 0.5 and iou([_gt_box(coco_mini)], found)[0, 0] > 0.8  # measured 0.90


@pytest.mark.network  # fetches the model files unless cached
def test_nanodet_person_box_on_a_real_photo(coco_mini):
    network = pytest.importorskip("posekit.network", reason="posekit.network (graph importer) not available yet")
    try:
        net = network.load_network("nanodet", pixels=True)  # RGB uint8 in; BGR, mean / std, NCHW in the graph
    except OfflineError as e:
        pytest.skip(f"model files not available offline: {e}")
    resized, m = letterbox(as_rgb(coco_mini / "train2017" / "000000535506.jpg"), (416, 416))
    kept, kept_scores = persons(*nanodet.decode_nanodet(net.run(resized[None])))
    found = apply_affine(kept[:1].reshape(2, 2), invert_affine(m)).reshape(1, 4)
    assert kept_scores[0] > 0.5 and iou([_gt_box(coco_mini)], found)[0, 0] > 0.8  # measured 0.97
