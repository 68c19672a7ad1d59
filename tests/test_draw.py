"""Drawing: limbs change the pixels along them; low-score joints and their limbs leave the image untouched."""

from __future__ import annotations

import numpy as np

from posekit.draw import draw, limb_colors
from posekit.skeleton import BLAZEPOSE33, COCO17, MPII16
from posekit.types import Person


def _person(score_of_left_wrist: float = 0.9, track_id: int | None = None) -> Person:
    kp = np.zeros((17, 3), np.float32)
    kp[:, :2] = [100, 100]
    kp[:, 2] = 0.0  # everything hidden ...
    names = COCO17.keypoints
    for name, xy in {"left_shoulder": (60, 40), "left_elbow": (60, 120), "left_wrist": (150, 150)}.items():
        kp[names.index(name)] = (*xy, 0.9)
    kp[names.index("left_wrist"), 2] = score_of_left_wrist
    return Person(kp, track_id=track_id)


def test_draws_a_visible_limb_and_hides_low_score_joints():
    image = np.zeros((200, 200, 3), np.uint8)
    out = draw(image, [_person(score_of_left_wrist=0.1)], threshold=0.3, boxes=False)
    assert out is not image and image.max() == 0  # copy by default
    assert out[60:100, 58:63].any(axis=(1, 2)).all()  # shoulder (60, 40) -> elbow (60, 120): every row touched
    assert not out[140:160, 140:160].any()  # the hidden wrist and the elbow->wrist limb's far end: untouched
    assert not out[95:106, 95:106].any()  # the other (hidden) joints at (100, 100)
    shown = draw(image, [_person(score_of_left_wrist=0.9)], threshold=0.3, boxes=False)
    assert shown[145:156, 145:156].any()


def test_in_place_boxes_and_track_ids():
    image = np.zeros((200, 200, 3), np.uint8)
    out = draw(image, [_person(track_id=7)], copy=False)
    assert out is image and image.any()
    x1, y1, x2, y2 = (int(round(v)) for v in _person().box)
    assert image[y1 + 20, x1].all()  # box edge drawn in white
    no_id = draw(np.zeros_like(image), [_person()])
    assert (image[: y1 - 1] != no_id[: y1 - 1]).any()  # the id label sits above the box


def test_limb_colors_by_side():
    colors = dict(zip(COCO17.edges, limb_colors(COCO17)))
    k = COCO17.index
    left = colors[(k("left_elbow"), k("left_wrist"))]
    right = colors[(k("right_elbow"), k("right_wrist"))]
    centre = colors[(k("left_shoulder"), k("right_shoulder"))]
    assert left[0] > left[2] and right[2] > right[0] and centre[1] > max(centre[0], centre[2])
    for sk in (COCO17, BLAZEPOSE33, MPII16):
        assert len(limb_colors(sk)) == len(sk.edges)


def test_line_thickness_scales_with_image_size():
    small = draw(np.zeros((200, 200, 3), np.uint8), [_person()], boxes=False)
    big_person = _person()
    big_person.keypoints[:, :2] *= 8
    big = draw(np.zeros((1600, 1600, 3), np.uint8), [big_person], boxes=False)
    assert big[800, 470:490].any(axis=-1).sum() > 2 * small[100, 55:65].any(axis=-1).sum()


def test_person_with_too_few_visible_joints_is_not_drawn():
    kp = np.zeros((17, 3), np.float32)
    kp[:, :2] = [50, 50]
    kp[0] = (100, 100, 0.9)  # one visible joint only
    person = Person(kp, box=np.array([10, 10, 190, 190]), track_id=3)
    image = np.zeros((200, 200, 3), np.uint8)
    assert not draw(image, [person], threshold=0.3).any()
    assert draw(image, [person], threshold=0.3, min_joints=1).any()
