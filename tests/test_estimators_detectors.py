"""Person detectors: back-projection of input boxes to image pixels on known numbers, and NanoDet / CenterNet on
real photos (the two players of OpenCV's basketball sample, the footballer of its messi5 sample)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from posekit.decode.detection import iou
from posekit.errors import OfflineError
from posekit.estimators import detectors as det
from posekit.estimators.registry import entry, load
from posekit.io import read_image
from posekit.transforms import invert_affine, letterbox

OPENCV_SAMPLES = Path("/usr/share/doc/opencv-doc/examples/data")
#: Hand-checked person boxes (x1, y1, x2, y2 pixels) in the OpenCV samples.
BASKETBALL_PLAYERS = np.array([[35, 82, 170, 475], [432, 20, 638, 475]], np.float32)
MESSI = np.array([70, 65, 455, 333], np.float32)


def _sample(name: str) -> np.ndarray:
    path = OPENCV_SAMPLES / name
    if not path.is_file():
        pytest.skip(f"{path} not found (Debian package opencv-doc)")
    return read_image(path)


def test_boxes_to_image_undoes_the_letterbox_clips_and_drops():
    # a 100 x 200 (h x w) image letterboxed to 416: scale 2.08, 104 input pixels of padding on top
    _, m = letterbox(np.zeros((100, 200, 3), np.uint8), (416, 416))
    s, top = 416 / 200, 104
    boxes = np.array([
        [10 * s, top + 10 * s, 30 * s, top + 30 * s],   # inside: image (10, 10, 30, 30)
        [-20, top - 20, 50 * s, top + 20 * s],          # over the top-left corner: clipped
        [0, 0, 416, top - 1],                           # wholly in the padding: dropped
    ])
    out, scores = det.boxes_to_image(boxes, np.array([0.9, 0.8, 0.7]), invert_affine(m), (100, 200))
    np.testing.assert_allclose(out, [[10, 10, 30, 30], [0, 0, 50, 20]], atol=1e-4)
    np.testing.assert_allclose(scores, [0.9, 0.8])
    assert out.dtype == scores.dtype == np.float32


def test_registered_as_detectors():
    assert entry("nanodet").kind == entry("centernet").kind == "detector"


@pytest.fixture(scope="module", params=["nanodet", "centernet"])
def detector(request):
    try:
        return entry(request.param).factory()
    except OfflineError as e:
        pytest.skip(f"model files not available offline: {e}")


@pytest.mark.network
def test_finds_the_people_on_real_photos(detector):
    boxes, scores = detector.detect(_sample("basketball1.png"))
    assert np.all(np.diff(scores) <= 0) and np.all(scores >= detector.score_threshold)
    assert np.all(boxes[:, 2:] > boxes[:, :2]) and np.all(boxes >= 0) and np.all(boxes[:, [2, 3]] <= [640, 480])
    np.testing.assert_array_less(0.8, iou(BASKETBALL_PLAYERS, boxes).max(axis=1))  # measured >= 0.88
    boxes, scores = detector.detect(_sample("messi5.jpg"))
    assert iou(MESSI, boxes[:1])[0, 0] > 0.8 and scores[0] > 0.5  # the best box is the player in front


@pytest.mark.network
def test_options_and_topdown_composition(detector):
    image = _sample("basketball1.png")
    strict = type(detector)(score_threshold=0.7, max_people=1)
    boxes, scores = strict.detect(image)
    assert len(boxes) == 1 and scores[0] >= 0.7
    try:
        pipeline = load(f"{detector.name}+movenet-lightning")
    except OfflineError as e:
        pytest.skip(f"model files not available offline: {e}")
    people = pipeline(image)
    assert len(people) == len(detector.detect(image)[0]) >= 2
    assert "detector" in people.speed and "network" in people.speed
