"""EfficientPose: confidence-map decoding on tiny exact maps, and the estimator on real photos (COCO ground truth
on the 12 joints MPII-16 shares with COCO-17, and a real photo padded / resized)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from coco_checks import gt_box_results

from posekit.decode.heatmap import decode_heatmaps
from posekit.errors import OfflineError, PosekitError
from posekit.estimators import efficientpose as ep
from posekit.estimators.registry import models
from posekit.hub.registry import get_spec
from posekit.io import read_image
from posekit.skeleton import COCO17, MPII16, MPII16_TO_COCO17

COCO_IDX, MPII_IDX = list(MPII16_TO_COCO17), list(MPII16_TO_COCO17.values())
L_SHOULDER, R_SHOULDER = COCO17.index("left_shoulder"), COCO17.index("right_shoulder")
#: COCO images checked (a 368 x 368 EfficientNet-Lite4 per person is slow on CI's two cores).
COCO_IMAGES = 12


def test_decode_confidence_maps_reorders_channels_and_refines():
    maps = np.zeros((8, 10, 3), np.float32)
    maps[2, 3, 0], maps[2, 4, 0] = 0.9, 0.5   # channel 0: peak (x 3, y 2), right neighbour higher
    maps[5, 7, 1], maps[4, 7, 1] = 1.4, 0.2   # channel 1: peak (x 7, y 5), upper neighbour higher; clipped to 1
    maps[0, 0, 2] = 0.3                       # channel 2: corner peak stays put
    maps = maps.transpose(2, 0, 1)  # (C, H, W), as the network gives them
    out = ep.decode_confidence_maps(maps, (1, 2, 0))  # skeleton order = channels 1, 2, 0
    np.testing.assert_allclose(out, [[7.5, 5.25, 1.0], [0.5, 0.5, 0.3], [3.75, 2.5, 0.9]], atol=1e-6)
    np.testing.assert_allclose(ep.decode_confidence_maps(maps, None), out[[2, 0, 1]])


def test_decode_confidence_maps_equals_simplebaseline_quarter_decoding():
    """The vectorised decoder = SimpleBaseline's per-joint quarter-offset decoding of the reordered maps."""
    maps = np.random.default_rng(4).normal(0.3, 0.4, (23, 31, 16)).astype(np.float32)
    maps[0, 5, 3] = maps[12, 0, 4] = maps[22, 30, 5] = 9.0  # peaks on each border
    channels = tuple(np.random.default_rng(5).permutation(16))
    expected = decode_heatmaps(maps[..., list(channels)].transpose(2, 0, 1)[None], stride=1.0, refine="quarter")[0]
    np.testing.assert_allclose(ep.decode_confidence_maps(maps.transpose(2, 0, 1), channels), expected, atol=1e-6)


def test_registry_and_options():
    assert "efficientpose" in models()
    assert get_spec("efficientpose").keypoints == MPII16.name
    with pytest.raises(PosekitError, match="margin"):
        ep.EfficientPose(margin=0)


@pytest.fixture(scope="module")
def efficientpose():
    try:
        return ep.EfficientPose()
    except OfflineError as e:
        pytest.skip(f"model files not available offline: {e}")


@pytest.mark.network
def test_coco_ground_truth_boxes(efficientpose, coco_mini):
    def check(person, ann, box):
        assert person.skeleton is MPII16 and person.keypoints.shape == (16, 3)

    def to_coco(person):
        found = np.zeros((17, 3), np.float32)
        found[COCO_IDX] = person.keypoints[MPII_IDX]
        return found

    scores, sides_agree = gt_box_results(efficientpose, coco_mini, to_coco=to_coco, joints=COCO_IDX,
                                         max_images=COCO_IMAGES, check=check)
    assert len(scores) >= 15
    assert np.mean(np.array(scores) >= 0.5) >= 0.6  # measured 0.72 of 18 (0.65 of all 40) on the 12 body joints
    assert len(sides_agree) >= 15 and np.mean(sides_agree) >= 0.75  # measured 0.83; swapped sides would be ~0.2
    with pytest.raises(ValueError, match="mpii16"):
        efficientpose(read_image(coco_mini / "train2017" / "000000535506.jpg"))[0].to_coco()  # not COCO-scorable


@pytest.mark.network
def test_keypoints_follow_the_image_geometry(efficientpose, coco_mini):
    image = read_image(coco_mini / "train2017" / "000000535506.jpg", apply_exif=False)  # one standing woman
    h, w = image.shape[:2]
    base = efficientpose(image)[0].keypoints
    sure = base[:, 2] > 0.5
    assert sure.sum() >= 6
    padded = cv2.copyMakeBorder(image, 30, 0, 100, 0, cv2.BORDER_CONSTANT)
    err = np.linalg.norm(efficientpose(padded)[0].keypoints[sure, :2] - base[sure, :2] - [100, 30], axis=1)
    assert np.median(err) / max(h, w) <= 0.02  # measured 0.007
    doubled = cv2.resize(image, (2 * w, 2 * h), interpolation=cv2.INTER_LINEAR)
    err = np.linalg.norm(efficientpose(doubled)[0].keypoints[sure, :2] - 2 * base[sure, :2], axis=1)
    assert np.median(err) / max(h, w) <= 0.01  # measured 0.003
    # with a box the crop is the same pixels after padding, so the shift is exact
    box = np.array([[140, 200, 300, 640]], np.float32)
    in_box = efficientpose(image, box)[0].keypoints
    np.testing.assert_allclose(efficientpose(padded, box + [100, 30, 100, 30])[0].keypoints, in_box + [100, 30, 0],
                               atol=1e-3)
