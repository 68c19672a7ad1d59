"""BlazePose estimator: ROI choice and person score on known numbers, option checks, and the detector + landmark
pipeline on real photos (COCO ground-truth boxes, whole images, a real photo padded / rotated / resized)."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest
from coco_checks import gt_box_results

from posekit.decode import blazepose as bp
from posekit.errors import OfflineError, PosekitError
from posekit.estimators import blazepose as est
from posekit.estimators.registry import models
from posekit.io import read_image
from posekit.skeleton import BLAZEPOSE33, COCO17

L_SHOULDER, R_SHOULDER = COCO17.index("left_shoulder"), COCO17.index("right_shoulder")
HIPS = [BLAZEPOSE33.index("left_hip"), BLAZEPOSE33.index("right_hip")]


def _roi(x: float, y: float, size: float, rotation: float = 0.0) -> bp.Roi:
    return bp.Roi(np.array([x, y], np.float32), size, rotation)


def test_box_roi_is_upright_square_on_the_box():
    roi = est.box_roi(np.array([10, 20, 50, 120]))
    np.testing.assert_allclose(roi.center, [30, 70])
    assert roi.size == pytest.approx(125.0) and roi.rotation == 0.0


def test_roi_for_box_keeps_the_person_centred_in_the_box():
    box = np.array([100, 100, 200, 300])  # upright ROI: centre (150, 200), side 250
    outside = _roi(260, 200, 250)
    too_small = _roi(150, 200, 60, 0.3)
    fits = _roi(160, 210, 240, -0.2)
    assert est.roi_for_box([outside, too_small, fits], box) is fits
    assert est.roi_for_box([outside, too_small], box) is too_small
    fallback = est.roi_for_box([outside], box)
    np.testing.assert_allclose(fallback.center, [150, 200])
    assert fallback.size == pytest.approx(250) and fallback.rotation == 0.0


def test_person_score_and_person_fields():
    keypoints = np.zeros((33, 3), np.float32)
    keypoints[:, 0], keypoints[:, 1] = np.arange(33), 2 * np.arange(33)
    keypoints[:, 2] = np.arange(33) / 32  # visibility
    world = np.ones((33, 3), np.float32)
    lm = bp.BlazePoseLandmarks(keypoints, np.full(33, 0.9, np.float32), world, np.zeros((2, 2), np.float32), 0.8)
    expected = np.mean(np.array(BLAZEPOSE33.to_coco) / 32) * 0.8
    assert est.person_score(lm) == pytest.approx(expected)
    person = est.to_person(lm)
    assert person.skeleton is BLAZEPOSE33 and person.score == pytest.approx(expected)
    np.testing.assert_array_equal(person.keypoints_3d, world)
    np.testing.assert_allclose(person.box, [17, 34, 32, 64])  # spans the points with visibility > 0.5
    assert person.extras["pose_score"] == 0.8
    np.testing.assert_array_equal(est.to_person(lm, np.array([1, 2, 3, 4])).box, [1, 2, 3, 4])


def test_registered_and_options_are_checked_before_loading():
    assert {"blazepose", "blazepose-lite", "blazepose-full", "blazepose-heavy"} <= set(models())
    for bad, match in [({"model": "blazepose-detector"}, "landmark model"), ({"max_people": 0}, "max_people"),
                       ({"detector_threshold": 1.5}, "detector_threshold"), ({"pose_threshold": -1}, "pose_threshold"),
                       ({"crop_margin": 0.5}, "crop_margin")]:
        with pytest.raises(PosekitError, match=match):
            est.BlazePose(**bad)


@pytest.fixture(scope="module")
def full():
    try:
        return est.BlazePose("blazepose-full")
    except OfflineError as e:
        pytest.skip(f"model files not available offline: {e}")


@pytest.mark.network
def test_full_on_coco_ground_truth_boxes(full, coco_mini):
    def check(person, ann, box):
        assert person.keypoints.shape == (33, 3) and person.keypoints_3d.shape == (33, 3)

    scores, sides_agree = gt_box_results(full, coco_mini, check=check)
    assert len(scores) >= 30
    assert np.mean(scores >= 0.5) >= 0.6  # measured 0.65 of 40
    assert len(sides_agree) >= 30 and np.mean(sides_agree) >= 0.8  # measured 0.85; swapped sides would be ~0.15


def _errors(found: np.ndarray, expected: np.ndarray, span: float) -> np.ndarray:
    """Distances of ``found`` to the visible expected keypoints (visibility > 0.5), as fractions of ``span``."""
    visible = expected[:, 2] > 0.5
    return np.linalg.norm(found[visible, :2] - expected[visible, :2], axis=1) / span


@pytest.mark.network
def test_whole_image_follows_the_image_geometry(full, coco_mini):
    image = read_image(coco_mini / "train2017" / "000000535506.jpg", apply_exif=False)  # one standing woman
    h, w = image.shape[:2]
    result = full(image)
    (person,) = result
    base = person.keypoints
    assert (base[:, 2] > 0.5).sum() >= 20 and person.score > 0.5
    assert set(result.speed) == {"preprocess", "network", "decode"}  # both stages, detector included
    # world landmarks: metres, origin between the hips, y down (head above the hips)
    world = person.keypoints_3d
    np.testing.assert_allclose(world[HIPS].mean(axis=0), 0, atol=0.02)
    assert np.abs(world).max() < 1.5 and world[BLAZEPOSE33.index("nose"), 1] < -0.3
    # rotated 90 degrees clockwise: (x, y) -> (h - y, x); the detector's ROI turns with the person
    rotated = np.ascontiguousarray(np.rot90(image, k=-1))
    (turned,) = full(rotated)
    assert np.median(_errors(turned.keypoints, np.column_stack([h - base[:, 1], base[:, 0], base[:, 2]]),
                             max(h, w))) <= 0.02  # measured 0.006
    # ... and so do the world landmarks' image axes, (x, y) -> (-y, x) (the typical point: the model's own
    # estimate of the arms varies by ~0.1 m)
    assert np.median(np.abs(turned.keypoints_3d[:, :2] - world[:, :2] @ [[0, 1], [-1, 0]])) <= 0.03
    # padded 100 px on the left and 30 on top; doubled in size
    padded = cv2.copyMakeBorder(image, 30, 0, 100, 0, cv2.BORDER_CONSTANT)
    assert np.median(_errors(full(padded)[0].keypoints, base + [100, 30, 0], max(h, w))) <= 0.02  # measured 0.012
    doubled = cv2.resize(image, (2 * w, 2 * h), interpolation=cv2.INTER_LINEAR)
    assert np.median(_errors(full(doubled)[0].keypoints, base * [2, 2, 1], max(h, w))) <= 0.02  # measured 0.008
    # with a box the crops are the same pixels after padding (up to cv2's 1/32 px warp grid), so the shift is
    # near exact (the heatmap refinement's 7-cell window can jump a cell for a few points)
    box = np.array([[140, 200, 300, 640]], np.float32)
    in_box = full(image, box)[0].keypoints
    shifted = full(padded, box + [100, 30, 100, 30])[0].keypoints
    err = np.linalg.norm(shifted[:, :2] - in_box[:, :2] - [100, 30], axis=1)
    assert np.median(err) <= 0.3 and err.max() <= 0.01 * max(h, w)  # measured 0.1 and 4.6 px


@pytest.mark.network
def test_people_options_and_empty_boxes(full, coco_mini):
    image = read_image(coco_mini / "train2017" / "000000227000.jpg", apply_exif=False)  # three people
    people = full(image)
    assert 2 <= len(people) <= full.max_people
    assert all(p.extras["pose_score"] >= full.pose_threshold for p in people)
    one = est.BlazePose("blazepose-full", max_people=1)
    assert len(one(image)) == 1
    # a box on empty background still gives exactly one (doubtful) person, from the upright box ROI
    boxes = np.array([[0, 0, 40, 40], [0, 0, 40, 40]], np.float32)
    blank = np.zeros_like(image)
    people = full(blank, boxes)
    assert len(people) == 2 and all(p.score < 0.3 for p in people)
    assert len(full(blank)) == 0


@pytest.mark.network
def test_all_crops_run_as_one_batch_with_the_same_answers(full, coco_mini, monkeypatch):
    """Several people: one detector run and one landmark run for all of them, each person as when run alone."""
    image = read_image(coco_mini / "train2017" / "000000227000.jpg", apply_exif=False)  # three people
    boxes = np.stack([p.box for p in full(image)])
    assert len(boxes) >= 2
    alone = [full(image, boxes[i:i + 1])[0] for i in range(len(boxes))]
    runs = []
    for net in (full.detector, full.landmarker):
        monkeypatch.setattr(net, "run", lambda x, net=net, run=net.run: runs.append((net, len(x))) or run(x))
    together = full(image, boxes)
    assert runs == [(full.detector, len(boxes)), (full.landmarker, len(boxes))]
    for a, b in zip(together, alone):
        np.testing.assert_allclose(a.keypoints, b.keypoints, atol=1e-3)
        np.testing.assert_allclose(a.box, b.box)


@pytest.mark.network
def test_track_follows_people_into_the_next_frame_without_the_detector(full, coco_mini, monkeypatch):
    """MediaPipe's video mode: the next frame's ROI comes from the last landmarks; here the 'next frame' is the
    photo moved 9 px right and 6 px up, and the person must be found there by the landmark model alone."""
    image = read_image(coco_mini / "train2017" / "000000535506.jpg", apply_exif=False)  # one standing woman
    h, w = image.shape[:2]
    (person,) = full(image)
    assert person.extras["roi_points"].shape == (2, 2)
    moved = cv2.warpAffine(image, np.float32([[1, 0, 9], [0, 1, -6]]), (w, h))
    monkeypatch.setattr(full.detector, "run", lambda x: pytest.fail("track() ran the detector"))
    tracked = full.track(moved, [person])
    (found,) = tracked
    assert found.score > 0.5 and set(tracked.speed) == {"preprocess", "network", "decode"}
    err = _errors(found.keypoints, person.keypoints + [9, -6, 0], max(h, w))
    assert np.median(err) <= 0.015  # measured 0.006 (3.6 px; the model re-estimates, as on a real next frame)
    # somebody who left the frame: the crop holds no pose, so the person scores low and the caller re-detects
    (lost,) = full.track(np.zeros_like(image), [person])
    assert lost.score < 0.3
    # people from other models (no ROI points) are followed from their boxes
    (boxed,) = full.track(moved, [dataclasses.replace(person, extras={}, box=person.box + [9, -6, 9, -6])])
    assert np.median(_errors(boxed.keypoints, person.keypoints + [9, -6, 0], max(h, w))) <= 0.02  # measured 0.006


def test_mirror_landmarks_undoes_a_mirrored_crop():
    rng = np.random.default_rng(3)
    lm = bp.BlazePoseLandmarks(keypoints=rng.uniform(0, 256, (33, 3)).astype(np.float32),
                               presence=rng.uniform(0, 1, 33).astype(np.float32),
                               world=rng.normal(0, 0.3, (33, 3)).astype(np.float32),
                               aux=rng.uniform(0, 256, (2, 2)).astype(np.float32), pose_score=0.7)
    back = bp.mirror_landmarks(lm)
    left, right = BLAZEPOSE33.index("left_wrist"), BLAZEPOSE33.index("right_wrist")
    assert back.keypoints[left].tolist() == pytest.approx([256 - lm.keypoints[right, 0], *lm.keypoints[right, 1:]])
    assert back.world[left].tolist() == pytest.approx([-lm.world[right, 0], *lm.world[right, 1:]])
    assert back.presence[left] == lm.presence[right] and back.pose_score == 0.7
    np.testing.assert_allclose(back.aux, np.column_stack([256 - lm.aux[:, 0], lm.aux[:, 1]]))
    twice = bp.mirror_landmarks(back)
    for field in ("keypoints", "presence", "world", "aux"):
        np.testing.assert_allclose(getattr(twice, field), getattr(lm, field), atol=1e-5)


@pytest.mark.network
def test_flip_test_mirrors_each_roi_crop(full, coco_mini, monkeypatch):
    image = read_image(coco_mini / "train2017" / "000000535506.jpg", apply_exif=False)  # one standing woman
    box = np.array([[140, 200, 300, 640]], np.float32)
    flipped = full.flipped()
    assert isinstance(flipped, est.BlazePose) and flipped.flip and not full.flip
    assert flipped.landmarker is full.landmarker  # networks shared, not reloaded
    (plain,) = full(image, box)
    (fused,) = flipped(image, box)
    # the mirrored crop, un-mirrored, lands on the same body: had x or left/right not been undone, the fused
    # points would sit between the sides (~the shoulder width away) or far from the plain answer
    sure = (plain.keypoints[:, 2] > 0.8) & (fused.keypoints[:, 2] > 0.8)
    assert sure.sum() >= 15
    err = np.linalg.norm(fused.keypoints[sure, :2] - plain.keypoints[sure, :2], axis=1)
    assert np.median(err) <= 4.0  # px, on a 440 px tall person; measured 1.6
    lsh, rsh = BLAZEPOSE33.index("left_shoulder"), BLAZEPOSE33.index("right_shoulder")
    assert np.sign(fused.keypoints[lsh, 0] - fused.keypoints[rsh, 0]) == np.sign(
        plain.keypoints[lsh, 0] - plain.keypoints[rsh, 0])
    # one detector run, one landmark run on a batch of two crops (the crop and its mirror)
    runs = []
    for net in (full.detector, full.landmarker):
        monkeypatch.setattr(net, "run", lambda x, net=net, run=net.run: runs.append((net, len(x))) or run(x))
    flipped(image, box)
    assert runs == [(full.detector, 1), (full.landmarker, 2)]
