"""Box utilities (IoU, NMS, weighted NMS) and the CenterNet person-box decoder, on tiny exact arrays."""

from __future__ import annotations

import numpy as np
import pytest

from posekit.decode.centernet import DETECTIONS_OUTPUT, decode_centernet, persons
from posekit.decode.detection import iou, nms, weighted_nms


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
    scores = np.array([0.6, 0.2, 0.5])  # IoU(0, 1) = 64 / 136 = 0.47
    kps = np.array([[[0, 0]], [[4, 8]], [[1, 1]]], dtype=np.float32)
    out_boxes, out_scores, out_kps = weighted_nms(boxes, scores, kps, iou_thr=0.3)
    np.testing.assert_allclose(out_boxes, [[0.5, 0.5, 10.5, 10.5], [50, 50, 60, 60]])
    np.testing.assert_allclose(out_scores, [0.6, 0.5])
    np.testing.assert_allclose(out_kps, [[[1, 2]], [[1, 1]]])


def test_weighted_nms_below_threshold_keeps_boxes_apart():
    boxes = np.array([[0, 0, 10, 10], [2, 2, 12, 12]], dtype=np.float32)
    out_boxes, out_scores, out_kps = weighted_nms(boxes, [0.6, 0.2], iou_thr=0.5)
    np.testing.assert_allclose(out_boxes, boxes)
    np.testing.assert_allclose(out_scores, [0.6, 0.2])
    assert out_kps is None
    assert len(weighted_nms(boxes, [0.6, 0.2], iou_thr=0.5, max_det=1)[0]) == 1
    assert weighted_nms(np.zeros((0, 4)), np.zeros(0))[0].shape == (0, 4)


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
