"""MoveNet estimators: input sizing and output mapping on known numbers, option checks, and on real photos
(COCO ground truth, golden TF.js outputs, and images padded / rotated / resized from a real photo)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from coco_checks import gt_box_results

from posekit.errors import OfflineError, PosekitError
from posekit.estimators import movenet as est
from posekit.estimators.registry import models
from posekit.io import read_image
from posekit.skeleton import COCO17
from posekit.transforms import invert_affine, letterbox

OPENCV_SAMPLES = Path("/usr/share/doc/opencv-doc/examples/data")
L_SHOULDER, R_SHOULDER = COCO17.index("left_shoulder"), COCO17.index("right_shoulder")


def _sample(name: str) -> np.ndarray:
    path = OPENCV_SAMPLES / name
    if not path.is_file():
        pytest.skip(f"{path} not found (Debian package opencv-doc)")
    return read_image(path)


def _load(factory, *args, **options):
    try:
        return factory(*args, **options)
    except OfflineError as e:
        pytest.skip(f"model files not available offline: {e}")


@pytest.mark.parametrize(("hw", "size", "expected"), [
    ((480, 640), 256, (192, 256)),   # 256 * 480 / 640 = 192 exactly
    ((342, 548), 256, (160, 256)),   # 159.8 -> 160
    ((640, 480), 384, (384, 288)),   # portrait
    ((100, 100), 256, (256, 256)),
    ((4000, 10), 256, (256, 32)),    # never below one stride
])
def test_multipose_input_size(hw, size, expected):
    assert est.multipose_input_size(*hw, size) == expected


def test_decode_multipose_maps_to_image_pixels():
    # a 100 x 200 image letterboxed to 128 x 256: scale 1.28, no padding
    _, m = letterbox(np.zeros((100, 200, 3), np.uint8), (128, 256))
    row = np.zeros(56, np.float32)
    row[:51] = np.tile([0.5, 0.25, 0.9], 17)  # y, x, score
    row[51:] = [0.25, 0.5, 0.75, 1.0, 0.7]  # ymin, xmin, ymax, xmax, score
    ((keypoints, box, score),) = est.decode_multipose(row[None], invert_affine(m), (128, 256))
    np.testing.assert_allclose(keypoints[0], [50.0, 50.0, 0.9], atol=1e-4)
    np.testing.assert_allclose(box, [100.0, 25.0, 200.0, 75.0], atol=1e-4)
    assert score == pytest.approx(0.7)


def test_options_are_checked_before_loading():
    with pytest.raises(PosekitError, match="'heads' or 'graph'"):
        est.MoveNetSingle("movenet-thunder", decode="tfjs")
    with pytest.raises(PosekitError, match="margin"):
        est.MoveNetSingle("movenet-thunder", margin=0)
    with pytest.raises(PosekitError, match="multiple of 32"):
        est.MoveNetMulti(size=300)


def test_registered():
    assert {"movenet-lightning", "movenet-thunder", "movenet-multipose"} <= set(models())


@pytest.fixture(scope="module")
def thunder():
    return _load(est.MoveNetSingle, "movenet-thunder")


@pytest.fixture(scope="module")
def multipose():
    return _load(est.MoveNetMulti)


@pytest.mark.network
def test_heads_decoder_matches_graph_on_real_images(thunder):
    graph = _load(est.MoveNetSingle, "movenet-thunder", decode="graph")
    messi, basketball = _sample("messi5.jpg"), _sample("basketball1.png")
    cases = [(messi, None), (basketball, None), (basketball, np.array([[57, 107, 150, 455], [440, 20, 640, 480]]))]
    for image, boxes in cases:
        ours, theirs = thunder(image, boxes), graph(image, boxes)
        assert len(ours) == len(theirs) == (1 if boxes is None else len(boxes))
        # the network input spans the image's longer side (letterbox) or 1.25 x the box's longer side (crop)
        spans = [max(image.shape[:2])] if boxes is None else [1.25 * max(b[2] - b[0], b[3] - b[1]) for b in boxes]
        for a, b, span in zip(ours, theirs, spans):
            np.testing.assert_allclose(a.keypoints[:, :2] / span, b.keypoints[:, :2] / span, atol=1e-3)
            np.testing.assert_allclose(a.keypoints[:, 2], b.keypoints[:, 2], atol=1e-3)


@pytest.mark.network
def test_thunder_on_coco_ground_truth_boxes(thunder, coco_mini):
    def check(person, ann, box):
        assert person.score == pytest.approx(person.keypoints[:, 2].mean())

    scores, sides_agree = gt_box_results(thunder, coco_mini, check=check)
    assert len(scores) >= 20
    assert np.mean(scores >= 0.5) >= 0.7
    assert len(sides_agree) >= 20 and np.mean(sides_agree) >= 0.9  # left and right not swapped


def _errors(found: np.ndarray, expected: np.ndarray, span: float) -> np.ndarray:
    """Distances of ``found`` to the confident expected keypoints (score > 0.3), as fractions of ``span``."""
    confident = expected[:, 2] > 0.3
    return np.linalg.norm(found[confident, :2] - expected[confident, :2], axis=1) / span


@pytest.mark.network
def test_keypoints_follow_the_image_geometry(thunder):
    image = _sample("messi5.jpg")
    h, w = image.shape[:2]
    base = thunder(image)[0].keypoints
    assert (base[:, 2] > 0.3).sum() >= 10
    # rotated 90 degrees clockwise: (x, y) -> (h - y, x)
    rotated = np.ascontiguousarray(np.rot90(image, k=-1))
    expected = np.column_stack([h - base[:, 1], base[:, 0], base[:, 2]])
    # (the model sees a lying person and is less sure of the limbs: the typical joint is checked)
    assert np.median(_errors(thunder(rotated)[0].keypoints, expected, max(h, w))) <= 0.03
    # padded 100 px on the left: x shifts by 100
    padded = cv2.copyMakeBorder(image, 0, 0, 100, 0, cv2.BORDER_CONSTANT)
    assert np.mean(_errors(thunder(padded)[0].keypoints, base + [100, 0, 0], max(h, w)) <= 0.03) >= 0.9
    # a portrait cut around the player
    portrait = np.ascontiguousarray(image[:, 120:400])
    assert np.mean(_errors(thunder(portrait)[0].keypoints, base - [120, 0, 0], max(h, w)) <= 0.03) >= 0.9
    # tiny (100 px wide) and huge (4000 px wide) copies: keypoints scale with the image
    for width in (100, 4000):
        height = round(h * width / w)
        resized = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if width < w else cv2.INTER_LINEAR)
        scaled = base * [width / w, height / h, 1]
        assert np.mean(_errors(thunder(resized)[0].keypoints, scaled, max(width, height)) <= 0.03) >= 0.9
    # with a box the crop is the same pixels after padding, so the shift is exact
    box = np.array([[150, 20, 420, 340]], np.float32)
    in_box = thunder(image, box)[0].keypoints
    np.testing.assert_allclose(thunder(padded, box + [100, 0, 100, 0])[0].keypoints, in_box + [100, 0, 0], atol=1e-3)


@pytest.mark.network
def test_multipose_matches_golden_outputs(golden_dir):
    folder = golden_dir / "movenet-multipose"
    for name, size in (("photo", 256), ("photo_wide", 384)):
        multipose = _load(est.MoveNetMulti, size=size, threshold=0.0)
        image = np.load(folder / f"{name}.input.npy")[0].astype(np.uint8)  # already letterboxed: mapped 1:1
        h, w = image.shape[:2]
        golden = np.load(folder / f"{name}.output_0.npy")[0]
        golden = golden[np.argsort(-golden[:, 55], kind="stable")]
        people = multipose(image)
        assert len(people) == 6
        for person, row in zip(people, golden):
            np.testing.assert_allclose(person.keypoints[:, :2] / [w, h], row[:51].reshape(17, 3)[:, 1::-1], atol=1e-3)
            np.testing.assert_allclose(person.box / [w, h, w, h], row[[52, 51, 54, 53]], atol=1e-3)
            assert person.score == pytest.approx(row[55], abs=1e-3)


@pytest.mark.network
def test_multipose_people_and_boxes(multipose):
    image = _sample("basketball1.png")
    people = multipose(image)
    assert len(people) >= 2 and all(p.score >= 0.2 for p in people)
    assert [p.score for p in people] == sorted((p.score for p in people), reverse=True)
    centres = sorted((p.box[0] + p.box[2]) / 2 for p in people[:2])
    assert centres[0] < 200 and centres[1] > 440  # the two players, left and right
    boxes = np.array([[57, 107, 150, 455], [440, 20, 640, 480]], np.float32)
    on_boxes = multipose(image, boxes)
    assert len(on_boxes) == 2
    for person, box in zip(on_boxes, boxes):
        np.testing.assert_array_equal(person.box, box)
        inside = person.keypoints[person.keypoints[:, 2] > 0.3, 0]
        assert len(inside) and np.all((inside > box[0] - 20) & (inside < box[2] + 20))
