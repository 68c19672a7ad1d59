"""One-Euro filter maths, the per-track pose smoother, and the jitter / distance measures."""

from __future__ import annotations

import numpy as np
import pytest

from posekit.pipeline.metrics import collect_tracks, jitter, mean_distance, video_stats
from posekit.pipeline.smooth import (
    OneEuroFilter,
    OneEuroParams,
    PoseSmoother,
    body_centre,
    confidence_weights,
    person_scale,
    smoothing_factor,
)
from posekit.skeleton import BLAZEPOSE33
from posekit.types import Person

EMA = OneEuroParams(min_cutoff=1 / (2 * np.pi), beta=0.0, d_cutoff=1.0, min_score=0.5)  # alpha = 0.5 at dt = 1


def test_smoothing_factor_known_values():
    assert smoothing_factor(1 / (2 * np.pi), 1.0) == pytest.approx(0.5)
    assert smoothing_factor(1 / (2 * np.pi), 3.0) == pytest.approx(0.75)
    np.testing.assert_allclose(smoothing_factor(np.array([1 / np.pi, 1 / (2 * np.pi)]), 1.0), [2 / 3, 0.5])


def test_filter_without_beta_is_an_exponential_average():
    f = OneEuroFilter(EMA)
    np.testing.assert_array_equal(f(np.zeros((2, 2)), 0.0), 0.0)  # first sample passes through
    np.testing.assert_allclose(f(np.ones((2, 2)), 1.0), 0.5)
    np.testing.assert_allclose(f(np.ones((2, 2)), 2.0), 0.75)
    np.testing.assert_allclose(f(np.ones((2, 2)), 3.0), 0.875)


def test_filter_keeps_a_constant_signal():
    f = OneEuroFilter()
    x = np.array([[10.0, 20.0], [30.0, 40.0]])
    for i in range(5):
        np.testing.assert_allclose(f(x, i / 30), x)


def test_confidence_weights_gate_the_update():
    np.testing.assert_allclose(confidence_weights(np.array([0.0, 0.25, 0.5, 0.9]), 0.5), [0, 0.5, 1, 1])
    np.testing.assert_array_equal(confidence_weights(np.array([0.0, 0.3]), 0.0), [1, 1])
    f = OneEuroFilter(EMA)
    f(np.zeros((3, 1)), 0.0)
    out = f(np.full((3, 1), 8.0), 1.0, weight=np.array([0.0, 0.5, 1.0]))
    np.testing.assert_allclose(out[:, 0], [0.0, 2.0, 4.0])  # zero weight: untouched; half weight: half the step


def test_filter_speed_is_measured_in_units_of_scale():
    rng = np.random.default_rng(1)
    xs = np.cumsum(rng.normal(0, 1, (20, 4, 2)), axis=0)
    a, b = OneEuroFilter(), OneEuroFilter()
    for i, x in enumerate(xs):
        np.testing.assert_allclose(a(x * 7, i / 30, scale=7.0), 7 * b(x, i / 30, scale=1.0), rtol=1e-9)


def test_filter_rejects_time_going_backwards():
    f = OneEuroFilter()
    f(np.zeros((1, 2)), 1.0)
    with pytest.raises(ValueError, match="increasing"):
        f(np.zeros((1, 2)), 1.0)


def test_body_centre_weights_joints():
    xy = np.array([[0.0, 0.0], [10.0, 0.0], [10.0, 30.0]])
    np.testing.assert_allclose(body_centre(xy, np.array([1.0, 1.0, 0.0])), [5, 0])
    np.testing.assert_allclose(body_centre(xy, np.array([1.0, 0.0, 1.0])), [5, 15])
    np.testing.assert_allclose(body_centre(xy, np.zeros(3)), [20 / 3, 10])


def test_person_scale_uses_confident_joints():
    kp = np.array([[0, 0, 0.9], [40, 10, 0.9], [500, 500, 0.0]])
    assert person_scale(kp, 0.1) == 40.0
    assert person_scale(kp) == 40.0
    assert person_scale(np.array([[3, 3, 0.9]])) == 1.0


def _walk(seed: int, frames: int = 120, joints: int = 17, noise: float = 2.0):
    """A 150 px person walking at (2.5, 0.5) px/frame with Gaussian noise: (truth, observed), (T, K, 2)."""
    rng = np.random.default_rng(seed)
    base = rng.uniform([0, 0], [60, 150], (joints, 2)) + 100
    truth = base[None] + np.arange(frames)[:, None, None] * np.array([2.5, 0.5])
    return truth, truth + rng.normal(0, noise, truth.shape)


def test_smoothing_cuts_jitter_on_a_constant_velocity_walk_with_little_lag():
    truth, raw = _walk(seed=0)
    smoother = PoseSmoother()
    frames = []
    for t, xy in enumerate(raw):
        person = Person(np.concatenate([xy, np.full((len(xy), 1), 0.9)], axis=1), score=0.9, track_id=4)
        frames.append(smoother([person], t / 30.0))
    smoothed, unsmoothed = collect_tracks(frames), collect_tracks(frames, raw=True)
    warm = slice(30, None)  # let the filter settle
    sm, rw = {4: smoothed[4][warm]}, {4: unsmoothed[4][warm]}
    np.testing.assert_allclose(rw[4][..., :2], raw[warm], atol=1e-4)
    assert jitter(sm) <= 0.6 * jitter(rw)  # >= 40 % less jitter
    direction = np.array([2.5, 0.5]) / np.hypot(2.5, 0.5)
    lag = float(((truth[warm] - sm[4][..., :2]) @ direction).mean())
    assert 0 < lag < 3.0
    assert mean_distance(sm, {4: truth[warm]}) < 3.5


def test_low_confidence_joints_do_not_drag_the_filter():
    smoother = PoseSmoother()
    kp = np.tile([[50.0, 50.0, 0.9]], (17, 1))
    smoother([Person(kp, track_id=1)], 0.0)
    jumped = kp.copy()
    jumped[3] = [400.0, -300.0, 0.0]  # an outlier the model itself does not trust
    out = smoother([Person(jumped, track_id=1)], 1 / 30)[0]
    np.testing.assert_allclose(out.keypoints[3, :2], [50.0, 50.0])
    assert out.keypoints[3, 2] == 0.0  # scores pass through
    np.testing.assert_array_equal(out.extras["raw_keypoints"], jumped.astype(np.float32))


def test_an_unsure_joint_moves_with_the_body():
    smoother = PoseSmoother()
    kp = np.concatenate([np.random.default_rng(5).uniform(0, 100, (17, 2)), np.full((17, 1), 0.9)], axis=1)
    smoother([Person(kp, track_id=1)], 0.0)
    for step in range(1, 31):
        moved = kp.copy()
        moved[:, 0] += 3.0 * step
        moved[3] = [0.0, 0.0, 0.0]  # the model lost this joint
        out = smoother([Person(moved, track_id=1)], step / 30)[0]
    shift = out.keypoints[:, 0] - kp[:, 0]
    assert abs(shift[3] - np.delete(shift, 3).mean()) < 2.0  # carried along with the others (87 px)


def test_smoother_keys_state_by_track_and_forgets_dropped_tracks():
    smoother = PoseSmoother()
    a = Person(np.tile([[10.0, 10.0, 0.9]], (17, 1)), track_id=1)
    b = Person(np.tile([[90.0, 90.0, 0.9]], (17, 1)), track_id=2)
    smoother([a, b], 0.0)
    moved = Person(np.tile([[20.0, 10.0, 0.9]], (17, 1)), track_id=1)
    out = smoother([moved], 0.1)[0]
    assert 10.0 < out.keypoints[0, 0] < 20.0  # filtered against track 1's state, not track 2's
    smoother.retain([2])
    again = smoother([Person(np.tile([[70.0, 10.0, 0.9]], (17, 1)), track_id=1)], 0.2)[0]
    assert again.keypoints[0, 0] == 70.0  # fresh state: first sample passes through
    untracked = Person(np.tile([[5.0, 5.0, 0.9]], (17, 1)))
    assert smoother([untracked], 0.3)[0] is untracked


def test_world_landmarks_are_smoothed_too():
    rng = np.random.default_rng(3)
    k = BLAZEPOSE33.num_keypoints
    base_3d = rng.uniform(-0.5, 0.5, (k, 3))
    smoother = PoseSmoother()
    frames = []
    for t in range(60):
        kp = np.concatenate([rng.uniform(100, 200, (k, 2)), np.full((k, 1), 0.9)], axis=1)
        world = base_3d + rng.normal(0, 0.01, base_3d.shape)
        person = Person(kp, skeleton=BLAZEPOSE33, keypoints_3d=world, track_id=1)
        frames.append((world, smoother([person], t / 30)[0].keypoints_3d))
    raw3d = np.stack([w for w, _ in frames])
    sm3d = np.stack([s for _, s in frames])
    assert sm3d.shape == raw3d.shape
    assert jitter({1: sm3d[10:]}) < 0.5 * jitter({1: raw3d[10:]})


def test_jitter_of_known_acceleration_and_gaps():
    t = np.arange(6, dtype=np.float64)
    track = np.zeros((6, 2, 2))
    track[:, 0, 0] = t**2  # |acceleration| = 2
    track[:, 1, 1] = -(t**2)
    assert jitter({1: track}) == pytest.approx(2.0)
    gappy = track.copy()
    gappy[3] = np.nan  # only triples (0,1,2) remain valid
    assert jitter({1: gappy}) == pytest.approx(2.0)
    linear = np.zeros((5, 1, 2))
    linear[:, 0, 0] = 3 * np.arange(5)
    assert jitter({1: track, 2: linear}) == pytest.approx((2 * 4 * 2 + 0 * 3) / 11)
    assert np.isnan(jitter({1: track[:2]}))


def test_jitter_and_distance_ignore_low_scores():
    track = np.zeros((4, 1, 3))
    track[:, 0, 0] = [0, 0, 10, 0]
    track[:, 0, 2] = [0.9, 0.9, 0.1, 0.9]
    assert jitter({1: track}) == pytest.approx(15.0)  # |10| and |-20| over two triples
    assert np.isnan(jitter({1: track}, min_score=0.5))
    other = track.copy()
    other[:, 0, 1] = 3.0
    assert mean_distance({1: track}, {1: other}) == pytest.approx(3.0)
    assert np.isnan(mean_distance({1: track}, {2: other}))  # no shared track id


def test_video_stats_summarises_a_clip():
    def person(x: float, raw_x: float, track_id: int) -> Person:
        kp = np.array([[x, 0.0, 0.9]] * 17)
        raw = np.array([[raw_x, 0.0, 0.9]] * 17, dtype=np.float32)
        return Person(kp, box=np.array([0, 0, 1, 1]), track_id=track_id, extras={"raw_keypoints": raw})

    frames = [[person(2 * t, 2 * t + (-1) ** t, 1)] for t in range(5)]  # raw zig-zags around a straight line
    frames[2].append(person(50, 50, 2))
    stats = video_stats(frames)
    assert stats["frames"] == 5 and stats["tracks"] == 2 and stats["median_track_frames"] == 3.0
    assert stats["jitter_raw"] == pytest.approx(4.0) and stats["jitter"] == pytest.approx(0.0)
    assert stats["jitter_cut"] == pytest.approx(1.0)
    assert stats["shift_px"] == pytest.approx(5 / 6)  # 1 px on 5 of the 6 person-frames
