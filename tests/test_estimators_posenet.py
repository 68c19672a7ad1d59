"""PoseNet estimator: option checks, several people on real photos, single-person modes and other input sizes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from posekit.errors import OfflineError, PosekitError
from posekit.estimators.posenet import PoseNet
from posekit.estimators.registry import models
from posekit.io import read_image

BASKETBALL = Path("/usr/share/doc/opencv-doc/examples/data/basketball1.png")
PLAYER_BOXES = np.array([[57, 107, 150, 455], [440, 20, 640, 480]], np.float32)  # the two players, left and right


def _load(**options) -> PoseNet:
    try:
        return PoseNet(**options)
    except OfflineError as e:
        pytest.skip(f"model files not available offline: {e}")


@pytest.fixture(scope="module")
def posenet() -> PoseNet:
    return _load()


@pytest.fixture(scope="module")
def basketball() -> np.ndarray:
    if not BASKETBALL.is_file():
        pytest.skip(f"{BASKETBALL} not found (Debian package opencv-doc)")
    return read_image(BASKETBALL)


def test_size_is_checked_before_loading():
    with pytest.raises(PosekitError, match=r"16 k \+ 1.*257, 289"):
        PoseNet(size=300)
    with pytest.raises(PosekitError, match="margin"):
        PoseNet(margin=-1)
    assert "posenet" in models()


@pytest.mark.network
def test_multi_person_finds_the_players(posenet, basketball):
    result = posenet(basketball)
    people = [p for p in result if p.score > 0.3]
    assert len(people) >= 2
    # each player's box holds the centre of a person's box (the player boxes are disjoint: two people)
    centres = np.stack([(p.box[:2] + p.box[2:]) / 2 for p in people])[None]
    inside = np.all((centres >= PLAYER_BOXES[:, None, :2]) & (centres <= PLAYER_BOXES[:, None, 2:]), axis=-1)
    assert inside.any(axis=1).all()
    assert set(result.speed) == {"preprocess", "network", "decode"}


@pytest.mark.network
def test_multi_person_on_ten_people(posenet, golden_dir):
    image = np.load(golden_dir / "movenet-multipose" / "photo.input.npy")[0].astype(np.uint8)
    people = posenet(image)
    assert len(people) >= 5
    assert all(p.score >= posenet.min_score for p in people)
    centres = np.array([(p.box[:2] + p.box[2:]) / 2 for p in people])
    spread = np.linalg.norm(centres[:, None] - centres[None], axis=-1)[np.triu_indices(len(people), 1)]
    assert np.median(spread) > 30  # people across the picture, not one person found repeatedly


@pytest.mark.network
def test_boxes_give_one_person_each(posenet, basketball):
    people = posenet(basketball, PLAYER_BOXES)
    assert len(people) == 2
    for person, box in zip(people, PLAYER_BOXES):
        np.testing.assert_array_equal(person.box, box)
        assert person.score == pytest.approx(person.keypoints[:, 2].mean())
        confident = person.keypoints[person.keypoints[:, 2] > 0.5]
        assert len(confident) >= 3
        assert np.all((confident[:, 0] > box[0] - 20) & (confident[:, 0] < box[2] + 20))


@pytest.mark.network
def test_single_person_and_other_sizes(basketball):
    for size in (257, 513):
        single = _load(size=size, multi_person=False)
        assert single.network.inputs[0].shape == (1, size, size, 3)
        (person,) = single(basketball)
        # the left player holds the ball facing the camera: most joints on him
        on_left = (person.keypoints[:, 2] > 0.3) & (person.keypoints[:, 0] < 200)
        assert on_left.sum() >= 10
