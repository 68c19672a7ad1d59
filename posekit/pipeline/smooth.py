"""Temporal smoothing of keypoints: a vectorised, confidence-aware One-Euro filter and a per-track smoother.

One-Euro filter (Casiez, Roussel, Vogel, CHI 2012): an exponential low-pass whose cutoff rises with speed, so
slow/static points are smoothed strongly (less jitter) and fast ones lightly (less lag). Speeds are measured in
units of ``scale`` per second; the per-track smoother passes the person's size in pixels as the scale, which makes
the defaults independent of how large the person is in the image. With speed normalised this way the steady-state
lag on a constant-velocity path is bounded by ``scale / (2 pi beta)`` whatever the speed.

People mostly move as a whole, so the smoother filters the body centre (a light filter: low lag) and the joints
relative to it (a stronger one: they move slower) separately; a joint the model is unsure of keeps its place on
the body instead of staying behind when the person walks on.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from posekit.types import Person


def smoothing_factor(cutoff: np.ndarray | float, dt: float) -> np.ndarray:
    """Exponential-smoothing weight of a first-order low-pass with ``cutoff`` (Hz) sampled every ``dt`` seconds."""
    tau = 1.0 / (2.0 * np.pi * np.asarray(cutoff, dtype=np.float64))
    return 1.0 / (1.0 + tau / dt)


@dataclass(frozen=True)
class OneEuroParams:
    """min_cutoff (Hz): cutoff at rest; beta (1/scale): cutoff gain per scale-unit/s of speed;
    d_cutoff (Hz): cutoff of the speed estimate; min_score: joints scoring below it are down-weighted
    linearly (weight = score / min_score), a joint scoring 0 leaves the filter state untouched."""

    min_cutoff: float = 0.5
    beta: float = 2.0
    d_cutoff: float = 1.0
    min_score: float = 0.2


#: Defaults for the body centre and for joints relative to it (2-D, speed in person-sizes per second); what they
#: do to jitter and lag on real and synthetic video is in BENCHMARKS.md ("Tracking and smoothing").
CENTRE_PARAMS = OneEuroParams(min_cutoff=0.5, beta=4.0)
KEYPOINT_PARAMS = OneEuroParams(min_cutoff=0.5, beta=2.0)
#: Defaults for 3-D world landmarks (metres, hip-centred; speed in metres per second, scale 1).
WORLD_PARAMS = OneEuroParams(min_cutoff=0.5, beta=20.0, d_cutoff=1.0)


class OneEuroFilter:
    """One-Euro filter over a (K, C) array of K points with C coordinates, with per-point confidence weights.

    Call with the observation, its time in seconds (strictly increasing), optional per-point weights in [0, 1]
    (0 = ignore this observation, 1 = normal update) and the scale that speeds are measured in.
    """

    def __init__(self, params: OneEuroParams = KEYPOINT_PARAMS) -> None:
        self.params = params
        self._x: np.ndarray | None = None
        self._dx: np.ndarray | None = None
        self._t = 0.0

    def __call__(self, x: np.ndarray, t: float, weight: np.ndarray | None = None, scale: float = 1.0) -> np.ndarray:
        """Filtered (K, C) array; ``weight`` is (K,)."""
        x = np.asarray(x, dtype=np.float64)
        if self._x is None or self._x.shape != x.shape:
            self._x, self._dx, self._t = x.copy(), np.zeros_like(x), t
            return x.copy()
        dt = t - self._t
        if dt <= 0:
            raise ValueError(f"One-Euro filter needs increasing times, got {t} after {self._t}")
        w = np.ones((x.shape[0], 1)) if weight is None else np.clip(np.asarray(weight, np.float64), 0, 1)[:, None]
        p = self.params
        dx = (x - self._x) / dt
        dx_hat = self._dx + w * smoothing_factor(p.d_cutoff, dt) * (dx - self._dx)
        speed = np.linalg.norm(dx_hat, axis=1, keepdims=True) / max(scale, 1e-9)
        a = smoothing_factor(p.min_cutoff + p.beta * speed, dt)
        self._x = self._x + w * a * (x - self._x)
        self._dx, self._t = dx_hat, t
        return self._x.copy()


def confidence_weights(scores: np.ndarray, min_score: float) -> np.ndarray:
    """Per-joint update weights: score / min_score clipped to [0, 1] (all ones when min_score <= 0)."""
    scores = np.asarray(scores, dtype=np.float64)
    if min_score <= 0:
        return np.ones_like(scores)
    return np.clip(scores / min_score, 0.0, 1.0)


def body_centre(xy: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(2,) weighted mean of (K, 2) joint positions (plain mean when every weight is 0)."""
    total = float(np.sum(weights))
    return (weights @ xy) / total if total > 0 else xy.mean(axis=0)


def person_scale(keypoints: np.ndarray, min_score: float = 0.0) -> float:
    """Size of a person in pixels: the longer side of the box around keypoints scoring above min_score."""
    kp = np.asarray(keypoints)
    sel = kp[kp[:, 2] > min_score] if np.any(kp[:, 2] > min_score) else kp
    return float(max((sel[:, :2].max(axis=0) - sel[:, :2].min(axis=0)).max(), 1.0))


@dataclass
class _TrackFilters:
    centre: OneEuroFilter
    joints: OneEuroFilter
    world: OneEuroFilter


class PoseSmoother:
    """One-Euro smoothing of tracked people, one filter state per track id.

    Smooths 2-D keypoints (x, y; scores are kept as they are) and the box corners as offsets from the filtered
    body centre, and the 3-D world landmarks when a person has them. People without a track id pass through
    unchanged. The raw 2-D keypoints are kept in ``person.extras["raw_keypoints"]``. ``params.min_score`` sets
    the confidence gating of joints (see OneEuroParams).
    """

    def __init__(self, params: OneEuroParams = KEYPOINT_PARAMS, centre_params: OneEuroParams = CENTRE_PARAMS,
                 params_3d: OneEuroParams = WORLD_PARAMS) -> None:
        self.params, self.centre_params, self.params_3d = params, centre_params, params_3d
        self._filters: dict[int, _TrackFilters] = {}

    def __call__(self, people: list[Person], t: float) -> list[Person]:
        """Smoothed copies of ``people`` observed at time ``t`` (seconds)."""
        return [self._smooth(p, t) if p.track_id is not None else p for p in people]

    def retain(self, track_ids: set[int] | list[int]) -> None:
        """Forget the filter state of every track not in ``track_ids`` (call with the tracker's live ids)."""
        keep = set(track_ids)
        for tid in [tid for tid in self._filters if tid not in keep]:
            del self._filters[tid]

    def _smooth(self, person: Person, t: float) -> Person:
        if person.track_id not in self._filters:
            self._filters[person.track_id] = _TrackFilters(
                OneEuroFilter(self.centre_params), OneEuroFilter(self.params), OneEuroFilter(self.params_3d))
        f = self._filters[person.track_id]
        kp = person.keypoints
        w = confidence_weights(kp[:, 2], self.params.min_score)
        scale = person_scale(kp, self.params.min_score)
        centre = body_centre(kp[:, :2], w)
        # The box corners ride along as two extra, always-trusted points.
        offsets = np.concatenate([kp[:, :2], person.box.reshape(2, 2)]) - centre
        centre_hat = f.centre(centre[None], t, scale=scale)
        out = f.joints(offsets, t, np.concatenate([w, np.ones(2)]), scale=scale) + centre_hat
        world = person.keypoints_3d
        if world is not None:
            world = f.world(world, t, confidence_weights(kp[:, 2], self.params_3d.min_score)).astype(np.float32)
        return dataclasses.replace(
            person,
            keypoints=np.concatenate([out[: len(kp)], kp[:, 2:]], axis=1),
            box=out[len(kp):].reshape(4),
            keypoints_3d=world,
            extras={**person.extras, "raw_keypoints": kp},
        )
