"""Video quality measures you can check: keypoint jitter, smoothed-vs-reference distance and id switches.

A *track set* maps a track id to a (T, K, C) array (C = 2 for x, y or 3 with a score) on a shared frame axis:
row t is frame t, NaN rows mark frames where the track is absent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from posekit.types import Person

TrackSet = Mapping[int, np.ndarray]


def _xy(track: np.ndarray, min_score: float) -> np.ndarray:
    """(T, K, 2) float coordinates with joints scoring below min_score set to NaN."""
    arr = np.asarray(track, dtype=np.float64)
    xy = arr[..., :2].copy()
    if arr.shape[-1] > 2:
        xy[arr[..., 2] < min_score] = np.nan
    return xy


def jitter(tracks: TrackSet, min_score: float = 0.0) -> float:
    """Mean absolute frame-to-frame acceleration |x[t+1] - 2 x[t] + x[t-1]| in pixels/frame^2.

    Averaged over every track, joint and frame t whose three frames are present (and score >= min_score when
    scores are given); NaN when there is no such triple.
    """
    norms = []
    for track in tracks.values():
        xy = _xy(track, min_score)
        if len(xy) >= 3:
            acc = np.linalg.norm(xy[2:] - 2 * xy[1:-1] + xy[:-2], axis=-1)
            norms.append(acc[np.isfinite(acc)])
    values = np.concatenate(norms) if norms else np.empty(0)
    return float(values.mean()) if values.size else float("nan")


def mean_distance(a: TrackSet, b: TrackSet, min_score: float = 0.0) -> float:
    """Mean pixel distance between the same joint of the same track id in the same frame of two track sets
    (e.g. smoothed vs raw, or vs ground truth); NaN when they share nothing."""
    dists = []
    for tid in a.keys() & b.keys():
        xa, xb = _xy(a[tid], min_score), _xy(b[tid], min_score)
        n = min(len(xa), len(xb))
        d = np.linalg.norm(xa[:n] - xb[:n], axis=-1)
        dists.append(d[np.isfinite(d)])
    values = np.concatenate(dists) if dists else np.empty(0)
    return float(values.mean()) if values.size else float("nan")


def id_switches(pred: TrackSet, gt: TrackSet, max_dist: float) -> int:
    """CLEAR-MOT identity switches of predicted tracks against ground-truth tracks.

    Per frame, ground-truth and predicted people are paired one-to-one (Hungarian) by the mean distance of their
    joints, pairs farther than ``max_dist`` pixels apart staying unpaired; a switch is counted whenever a
    ground-truth person is paired with a different predicted id than at its previous pairing.
    """
    from scipy.optimize import linear_sum_assignment

    frames = max((len(t) for t in (*pred.values(), *gt.values())), default=0)
    pred_xy = {k: _xy(v, 0.0) for k, v in pred.items()}
    gt_xy = {k: _xy(v, 0.0) for k, v in gt.items()}
    last: dict[int, int] = {}
    switches = 0
    for t in range(frames):
        g_ids = [k for k, v in gt_xy.items() if t < len(v) and np.isfinite(v[t]).any()]
        p_ids = [k for k, v in pred_xy.items() if t < len(v) and np.isfinite(v[t]).any()]
        if not g_ids or not p_ids:
            continue
        dist = np.array([[_mean_joint_distance(gt_xy[g][t], pred_xy[p][t]) for p in p_ids] for g in g_ids])
        cost = np.where(dist <= max_dist, dist, max_dist * 1e3 + 1)
        for r, c in zip(*linear_sum_assignment(cost)):
            if dist[r, c] > max_dist:
                continue
            g, p = g_ids[r], p_ids[c]
            switches += int(g in last and last[g] != p)
            last[g] = p
    return switches


def _mean_joint_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Mean distance of the joints present in both (K, 2) poses; inf when none is."""
    d = np.linalg.norm(a - b, axis=-1)
    d = d[np.isfinite(d)]
    return float(d.mean()) if d.size else float("inf")


def collect_tracks(frames: Iterable[Sequence[Person]], raw: bool = False) -> dict[int, np.ndarray]:
    """Track set of the tracked people in consecutive frames (``raw``: their unsmoothed keypoints, kept by the
    smoother in ``extras["raw_keypoints"]``). Holds frames x tracks x K x 3 float32 (200 bytes per frame and
    track for 17 joints): fine for clips, not for endless streams."""
    per_frame = [list(people) for people in frames]
    out: dict[int, np.ndarray] = {}
    for t, people in enumerate(per_frame):
        for p in people:
            if p.track_id is None:
                continue
            kp = p.extras.get("raw_keypoints", p.keypoints) if raw else p.keypoints
            if p.track_id not in out:
                out[p.track_id] = np.full((len(per_frame), *kp.shape), np.nan, dtype=np.float32)
            out[p.track_id][t] = kp
    return out


def video_stats(frames: Sequence[Sequence[Person]], min_score: float = 0.3) -> dict[str, float]:
    """Summary of a tracked (and smoothed) clip for ``posekit predict --stats``.

    frames: the people of each consecutive frame as ``track_video`` yields them. Returns frames, tracks (distinct
    ids), median_track_frames, jitter_raw and jitter (px/frame^2, joints scoring >= min_score), jitter_cut
    (fraction removed by smoothing) and shift_px (mean distance of smoothed from raw joints).
    """
    smoothed, raw = collect_tracks(frames), collect_tracks(frames, raw=True)
    lengths = [int(np.isfinite(t[:, 0, 0]).sum()) for t in smoothed.values()]
    jitter_raw, jitter_smooth = jitter(raw, min_score), jitter(smoothed, min_score)
    return {
        "frames": len(frames),
        "tracks": len(smoothed),
        "median_track_frames": float(np.median(lengths)) if lengths else 0.0,
        "jitter_raw": jitter_raw,
        "jitter": jitter_smooth,
        "jitter_cut": 1.0 - jitter_smooth / jitter_raw if jitter_raw > 0 else float("nan"),
        "shift_px": mean_distance(smoothed, raw, min_score),
    }
