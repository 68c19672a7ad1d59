"""Tracker: similarity maths, Hungarian assignment, stable ids through crossings and occlusions; id switches."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from posekit.decode.detection import box_iou
from posekit.pipeline.metrics import collect_tracks, id_switches
from posekit.pipeline.track import (
    Tracker,
    assign,
    expand_boxes,
    oks_matrix,
    oks_sigmas,
    pose_overlap,
    similarity,
)
from posekit.skeleton import BLAZEPOSE33, COCO17, MPII16
from posekit.types import Person

TEMPLATE = np.random.default_rng(42).uniform([-25, -60], [25, 60], (17, 2))  # a 50 x 120 px person


def _person(cx: float, cy: float, rng: np.random.Generator, noise: float = 1.5, skeleton=COCO17) -> Person:
    k = skeleton.num_keypoints
    xy = TEMPLATE[np.arange(k) % 17] + [cx, cy] + rng.normal(0, noise, (k, 2))
    return Person(np.concatenate([xy, np.full((k, 1), 0.9)], axis=1), score=0.9, skeleton=skeleton)


def test_box_iou_known_values():
    a = np.array([[0, 0, 2, 2], [10, 10, 11, 11]])
    b = np.array([[0, 0, 2, 2], [1, 0, 3, 2], [5, 5, 6, 6]])
    np.testing.assert_allclose(box_iou(a[:, None], b[None]), [[1, 1 / 3, 0], [0, 0, 0]])
    np.testing.assert_allclose(box_iou(a, b[:2]), [1, 0])  # element-wise
    assert box_iou(np.array([1, 1, 1, 1]), np.array([1, 1, 1, 1])) == 0.0  # empty boxes


def test_expand_boxes_grows_every_side_by_a_fraction_of_the_size():
    np.testing.assert_allclose(expand_boxes(np.array([10, 20, 30, 60]), 0.5), [0, 0, 40, 80])
    got = expand_boxes(np.array([[[0, 0, 10, 10]] * 2]), np.array([[0.0, 1.0]]))
    np.testing.assert_allclose(got, [[[0, 0, 10, 10], [-10, -10, 20, 20]]])


def test_lost_tracks_are_matched_more_tolerantly():
    rng = np.random.default_rng(1)
    tracker = Tracker(buffer=0.2)
    tracker.update([_person(100, 100, rng, noise=0)])
    track = tracker.tracks[1]
    shifted = [_person(140, 100, rng, noise=0)]  # 40 px right of where it was, on a 50 px wide body
    fresh = similarity([track], shifted, buffer=0.2)[0, 0]
    track.age = 3
    lost = similarity([track], shifted, buffer=0.2)[0, 0]
    assert fresh < 0.2 < lost  # OKS is ~0 either way; the buffered IoU tolerates the distance


def test_oks_matrix_known_values():
    sigma, area = 0.05, 400.0
    a = np.array([[[0.0, 0.0, 0.9], [10.0, 10.0, 0.9]]])
    # joint 0 moved so that d^2 = 2 * area * (2 sigma)^2  ->  exp(-1); joint 1 unchanged -> 1
    d = np.sqrt(2 * area * (2 * sigma) ** 2)
    b = np.array([[[d, 0.0, 0.9], [10.0, 10.0, 0.9]], [[d, 0.0, 0.9], [10.0, 10.0, 0.05]]])
    got = oks_matrix(b, a, np.array([area]), np.array([sigma, sigma]), min_score=0.1)  # (2, 1): each b against a
    np.testing.assert_allclose(got.T, [[(np.exp(-1) + 1) / 2, np.exp(-1)]])  # low-score joint left out
    hidden = np.array([[[0.0, 0.0, 0.0], [10.0, 10.0, 0.0]]])
    assert oks_matrix(hidden, a, np.array([area]), np.array([sigma, sigma]), min_score=0.1)[0, 0] == 0.0


def test_oks_sigmas_per_skeleton():
    idx, sig = oks_sigmas(COCO17)
    np.testing.assert_array_equal(idx, np.arange(17))
    idx, sig = oks_sigmas(BLAZEPOSE33)
    assert len(idx) == 17 and BLAZEPOSE33.keypoints[idx[5]] == "left_shoulder"
    np.testing.assert_array_equal(sig, COCO17.sigmas)
    assert oks_sigmas(MPII16) is None


def test_assign_maximises_total_similarity_and_applies_threshold():
    sim = np.array([[0.9, 0.8], [0.85, 0.1]])
    assert sorted(assign(sim, 0.2)) == [(0, 1), (1, 0)]  # 0.8 + 0.85 beats 0.9 + 0.1
    assert assign(np.array([[0.9, 0.0], [0.0, 0.15]]), 0.2) == [(0, 0)]
    assert assign(np.zeros((0, 3)), 0.2) == []


def test_ids_start_at_one_and_increase():
    tracker = Tracker()
    rng = np.random.default_rng(0)
    first = tracker.update([_person(100, 100, rng), _person(400, 100, rng)])
    assert [p.track_id for p in first] == [1, 2]
    again = tracker.update([_person(402, 101, rng), _person(101, 100, rng), _person(700, 300, rng)])
    assert [p.track_id for p in again] == [2, 1, 3]


def _crossing(occlude: range, frames: int = 60, skeleton=COCO17):
    """Two people walking towards each other at 6 px/frame, crossing at frame 30, the second hidden behind the
    first during ``occlude``: per-frame detections (shuffled order) and the ground-truth track set."""
    rng = np.random.default_rng(7)
    gt = {i: np.full((frames, skeleton.num_keypoints, 3), np.nan) for i in (1, 2)}
    per_frame = []
    for t in range(frames):
        a = _person(120 + 6 * t, 200, rng, skeleton=skeleton)
        b = _person(480 - 6 * t, 205, rng, skeleton=skeleton)
        gt[1][t] = a.keypoints
        people = [a]
        if t not in occlude:
            gt[2][t] = b.keypoints
            people.append(b)
        per_frame.append([people[i] for i in rng.permutation(len(people))])
    return per_frame, gt


@pytest.mark.parametrize("skeleton", [COCO17, MPII16], ids=["oks+iou", "iou-only"])
def test_ids_survive_a_crossing_with_occlusion(skeleton):
    per_frame, gt = _crossing(occlude=range(27, 34), skeleton=skeleton)
    tracker = Tracker(max_age=10)
    tracked = [tracker.update(people) for people in per_frame]
    assert id_switches(collect_tracks(tracked), gt, max_dist=20) == 0
    assert {p.track_id for people in tracked for p in people} == {1, 2}


def test_a_track_lost_longer_than_max_age_comes_back_with_a_new_id():
    per_frame, _ = _crossing(occlude=range(27, 34))
    tracker = Tracker(max_age=3)
    tracked = [tracker.update(people) for people in per_frame]
    assert sorted({p.track_id for people in tracked for p in people} - {None}) == [1, 2, 3]
    hidden_before = next(p.track_id for p in tracked[0] if p.box[0] > 300)  # the person walking leftwards
    hidden_after = next(p.track_id for p in tracked[-1] if p.box[0] < 300)
    assert hidden_after == 3 and hidden_before not in tracker.live_ids
    assert tracker.live_ids == ({1, 2} - {hidden_before}) | {3}


def _ids(tracker: Tracker, frames: list[list[Person]]) -> list[list[int | None]]:
    return [[p.track_id for p in tracker.update(people)] for people in frames]


def test_new_tracks_get_ids_only_after_min_hits_sure_frames_in_a_row():
    rng = np.random.default_rng(3)
    tracker = Tracker(min_hits=3)
    frames = [[_person(100 + 2 * t, 100, rng)] + ([_person(400, 300 + t, rng)] if t >= 5 else []) for t in range(10)]
    ids = _ids(tracker, frames)
    assert [i[0] for i in ids] == [1] * 10  # begun in the first frames: confirmed at once
    assert [i[1] for i in ids[5:]] == [None, None, 2, 2, 2]  # a later newcomer: its third frame in a row
    assert Tracker(min_hits=1).update(frames[5])[1].track_id == 2


def test_spurious_detections_use_up_no_ids():
    rng = np.random.default_rng(4)
    tracker = Tracker(min_hits=3)
    frames = []
    for t in range(30):
        people = [_person(100 + 2 * t, 100, rng)]
        if t in (10, 15, 16, 20, 21, 23):  # flickers of one or two frames in a row, never three
            people.append(_person(500, 300, rng))
        if t >= 25:
            people.append(_person(300, 400, rng))  # a real newcomer
        frames.append(people)
    ids = _ids(tracker, frames)
    assert {i for frame in ids for i in frame} == {1, 2, None}
    assert [frame[-1] for frame in ids[25:]] == [None, None, 2, 2, 2]
    assert tracker.tentative == [] or all(t.person.box[0] < 400 for t in tracker.tentative)


def test_unsure_detections_continue_tracks_but_never_start_one():
    rng = np.random.default_rng(5)
    tracker = Tracker(high_score=0.5)
    frames = []
    for t in range(20):
        walker = _person(100 + 3 * t, 100, rng)
        if 8 <= t < 14:  # the walker's detections turn unsure (partly hidden) for a while
            walker = dataclasses.replace(walker, score=0.2)
        frames.append([walker, dataclasses.replace(_person(500, 300, rng), score=0.2)])  # a steady unsure box
    ids = _ids(tracker, frames)
    assert [frame[0] for frame in ids] == [1] * 20
    assert [frame[1] for frame in ids] == [None] * 20
    assert tracker.live_ids == {1} and tracker.tentative == []


def test_a_lost_track_is_found_again_where_its_velocity_takes_it():
    rng = np.random.default_rng(6)
    tracker = Tracker(max_age=15)
    hidden = range(10, 18)
    frames = [[_person(100 + 12 * t, 200, rng)] if t not in hidden else [] for t in range(30)]
    frames[-12:] = [[_person(100 + 12 * t, 200, rng), _person(100, 400, rng)] for t in range(18, 30)]
    ids = _ids(tracker, frames)
    # 96 px further on than where it was last seen, on a 50 px wide body: only the velocity bridges that gap
    assert all(frame[0] == 1 for frame in ids if frame) and ids[-1] == [1, 2]


def test_tracker_rejects_bad_options():
    with pytest.raises(ValueError, match="min_hits"):
        Tracker(min_hits=0)
    with pytest.raises(ValueError, match="max_age"):
        Tracker(max_age=-1)


def test_pose_overlap_finds_two_poses_of_one_person():
    rng = np.random.default_rng(8)
    a, b, c = _person(100, 100, rng), _person(101, 101, rng), _person(300, 100, rng)
    got = pose_overlap([a, b, c])
    assert got[0, 1] > 0.8 and got[0, 2] < 0.01 and got[1, 0] == pytest.approx(got[0, 1], rel=0.05)
    mpii = [_person(100, 100, rng, skeleton=MPII16), _person(101, 101, rng, skeleton=MPII16)]
    assert pose_overlap(mpii)[0, 1] > 0.8  # box IoU for a skeleton without OKS sigmas


def test_id_switches_counts_hand_made_cases():
    def track(xs):  # one-joint track along x, NaN where None
        return np.array([[[np.nan, np.nan]] if x is None else [[x, 0.0]] for x in xs], dtype=np.float64)

    gt = {1: track([0, 1, 2, 3, 4, 5]), 2: track([100, 101, 102, 103, 104, 105])}
    assert id_switches({7: track([0, 1, 2, 3, 4, 5]), 8: track([100, 101, 102, 103, 104, 105])}, gt, 10) == 0
    # ids swapped from frame 3 on: both ground-truth people switch once
    swapped = {7: track([0, 1, 2, 103, 104, 105]), 8: track([100, 101, 102, 3, 4, 5])}
    assert id_switches(swapped, gt, 10) == 2
    # person 1 fragments into ids 7 then 9 (a gap in between does not count by itself)
    fragmented = {7: track([0, 1, None, None, None, None]), 9: track([None, None, None, 3, 4, 5]),
                  8: track([100, 101, 102, 103, 104, 105])}
    assert id_switches(fragmented, gt, 10) == 1
    same_after_gap = {7: track([0, 1, None, None, 4, 5]), 8: track([100, 101, 102, 103, 104, 105])}
    assert id_switches(same_after_gap, gt, 10) == 0
    # a far-away prediction is never paired, so it cannot cause a switch
    far = {7: track([0, 1, 2, 3, 4, 5]), 8: track([100, 101, 102, 103, 104, 105]), 9: track([None] * 3 + [500] * 3)}
    assert id_switches(far, gt, 10) == 0
    # back and forth: 7 -> 9 -> 7 is two switches
    flip = {7: track([0, 1, None, None, 4, 5]), 9: track([None, None, 2, 3, None, None])}
    assert id_switches(flip, {1: gt[1]}, 10) == 2
