"""Multi-person tracking by detection: stable ids across frames.

Each frame, every live track predicts where its person is now (last pose moved by its velocity), the
similarity of every (track, detection) pair is scored with OKS (object keypoint similarity, COCO sigmas) averaged
with box IoU (IoU alone for skeletons without OKS sigmas), and the Hungarian algorithm picks the best one-to-one
assignment. Tracks unmatched for more than ``max_age`` frames are dropped; until then a returning person gets its
old id back. A lost track's position grows less certain with every missed frame, so the tracks and detections
left unpaired by a first, exact round are paired again with IoU taken between boxes enlarged by ``buffer`` x
their size per missed frame (cascaded buffered IoU, as in C-BIoU). New ids increase from 1.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from posekit.skeleton import COCO17, Skeleton
from posekit.types import Person

#: Weight of the newest displacement in the exponential average (starting at rest) that estimates a track's
#: velocity; low, because detections jitter by more than people move in a frame.
VELOCITY_GAIN = 0.3
#: Lost tracks' boxes grow by at most this many times their size on each side.
MAX_BUFFER = 1.0


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of x1y1x2y2 boxes (..., 4) and (..., 4), broadcast: ``box_iou(a[:, None], b[None])`` is (N, M)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    iw = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    ih = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = iw * ih
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    union = area_a + area_b - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def expand_boxes(boxes: np.ndarray, fraction: np.ndarray | float) -> np.ndarray:
    """Grow (..., 4) boxes by ``fraction`` (broadcast to (...)) of their width and height on every side."""
    boxes = np.asarray(boxes, dtype=np.float64)
    grow = (boxes[..., 2:] - boxes[..., :2]) * np.asarray(fraction, dtype=np.float64)[..., None]
    return np.concatenate([boxes[..., :2] - grow, boxes[..., 2:] + grow], axis=-1)


def oks_matrix(
    a: np.ndarray, b: np.ndarray, sigmas: np.ndarray, areas: np.ndarray, min_score: float = 0.1
) -> np.ndarray:
    """COCO object keypoint similarity of (N, K, 3) poses ``a`` against (M, K, 3) poses ``b`` -> (N, M).

    ``areas`` (N,) are the squared object scales of ``a`` in pixels^2; a joint counts when it scores above
    min_score in both poses; a pair with no such joint scores 0.
    """
    a = np.asarray(a, dtype=np.float64)[:, None]
    b = np.asarray(b, dtype=np.float64)[None]
    d2 = ((a[..., :2] - b[..., :2]) ** 2).sum(-1)  # (N, M, K)
    var = (2 * np.asarray(sigmas, dtype=np.float64)) ** 2  # k_i^2
    s2 = np.maximum(np.asarray(areas, dtype=np.float64), 1.0)[:, None, None]
    sim = np.exp(-d2 / (2 * s2 * var))
    vis = (a[..., 2] > min_score) & (b[..., 2] > min_score)
    count = vis.sum(-1)
    return np.where(count > 0, (sim * vis).sum(-1) / np.maximum(count, 1), 0.0)


def oks_sigmas(skeleton: Skeleton) -> tuple[np.ndarray, np.ndarray] | None:
    """(joint indices, OKS sigmas) usable for ``skeleton``: its own sigmas, else COCO's on its COCO-17 joints."""
    if skeleton.sigmas is not None:
        return np.arange(skeleton.num_keypoints), np.asarray(skeleton.sigmas)
    if skeleton.to_coco is not None:
        return np.asarray(skeleton.to_coco), np.asarray(COCO17.sigmas)
    return None


def similarity(tracks: list[Track], people: list[Person], buffer: float = 0.2) -> np.ndarray:
    """(T, D) similarity in [0, 1] of predicted tracks and detections: mean of OKS and buffered box IoU (boxes
    grown by ``buffer`` x size per frame the track has been lost, at most MAX_BUFFER), IoU alone when the
    skeleton has no OKS sigmas."""
    pred = [t.predicted_keypoints() for t in tracks]
    boxes_t = np.stack([t.predicted_box() for t in tracks])
    grow = np.minimum(buffer * np.array([t.age for t in tracks], dtype=np.float64), MAX_BUFFER)
    boxes_d = np.stack([p.box for p in people])
    iou = box_iou(expand_boxes(boxes_t, grow)[:, None], expand_boxes(boxes_d[None], grow[:, None]))
    view = oks_sigmas(people[0].skeleton)
    shapes = {k.shape for k in pred} | {p.keypoints.shape for p in people}
    if view is None or len(shapes) > 1:
        return iou
    idx, sigmas = view
    areas = np.prod(boxes_t[:, 2:] - boxes_t[:, :2], axis=1)
    oks = oks_matrix(np.stack(pred)[:, idx], np.stack([p.keypoints for p in people])[:, idx], sigmas, areas)
    return 0.5 * (oks + iou)


def assign(sim: np.ndarray, min_similarity: float) -> list[tuple[int, int]]:
    """Hungarian (maximum total similarity) one-to-one pairs (row, col), keeping pairs >= min_similarity."""
    from scipy.optimize import linear_sum_assignment

    if sim.size == 0:
        return []
    rows, cols = linear_sum_assignment(sim, maximize=True)
    return [(int(r), int(c)) for r, c in zip(rows, cols) if sim[r, c] >= min_similarity]


@dataclass
class Track:
    """A tracked person: last matched pose and box (image pixels), velocity (px/frame of the box centre),
    ``age`` = frames since the last match (0 = matched in the latest frame)."""

    track_id: int
    keypoints: np.ndarray
    box: np.ndarray
    velocity: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(2))
    age: int = 0

    def _shift(self) -> np.ndarray:
        return self.velocity * (self.age + 1)

    def predicted_keypoints(self) -> np.ndarray:
        """(K, 3) pose expected in the next frame under constant velocity."""
        kp = self.keypoints.astype(np.float64, copy=True)
        kp[:, :2] += self._shift()
        return kp

    def predicted_box(self) -> np.ndarray:
        """(4,) box expected in the next frame under constant velocity."""
        return self.box + np.tile(self._shift(), 2)

    def update(self, person: Person) -> None:
        step = (_centre(person.box) - _centre(self.box)) / (self.age + 1)
        self.velocity = (1 - VELOCITY_GAIN) * self.velocity + VELOCITY_GAIN * step
        self.keypoints, self.box = person.keypoints, person.box.astype(np.float64)
        self.age = 0


def _centre(box: np.ndarray) -> np.ndarray:
    return (np.asarray(box[:2], np.float64) + np.asarray(box[2:], np.float64)) / 2


class Tracker:
    """Assigns stable track ids to the people detected in consecutive frames.

    max_age: frames a track survives unmatched (a person returning within it gets the same id).
    min_similarity: least OKS/IoU similarity (0..1) for a detection to continue a track.
    buffer: growth of a lost track's box per missed frame, as a fraction of its size (see ``similarity``).
    """

    def __init__(self, max_age: int = 30, min_similarity: float = 0.2, buffer: float = 0.2) -> None:
        if max_age < 0:
            raise ValueError(f"max_age must be >= 0, got {max_age}")
        self.max_age, self.min_similarity, self.buffer = max_age, min_similarity, buffer
        self.tracks: dict[int, Track] = {}
        self._next_id = 1

    def update(self, people: list[Person]) -> list[Person]:
        """Copies of ``people`` (same order) with ``track_id`` set; advances every track by one frame."""
        tracks = list(self.tracks.values())
        ids: list[int | None] = [None] * len(people)
        # Exact positions first; then what is left, with lost tracks' boxes buffered.
        for buffer in (0.0, self.buffer):
            free_t = [t for t in tracks if t.track_id not in ids]
            free_d = [di for di, tid in enumerate(ids) if tid is None]
            if not free_t or not free_d:
                continue
            sim = similarity(free_t, [people[di] for di in free_d], buffer)
            for ti, fi in assign(sim, self.min_similarity):
                free_t[ti].update(people[free_d[fi]])
                ids[free_d[fi]] = free_t[ti].track_id
        matched = set(ids)
        for track in tracks:
            if track.track_id not in matched:
                track.age += 1
                if track.age > self.max_age:
                    del self.tracks[track.track_id]
        for di, person in enumerate(people):
            if ids[di] is None:
                ids[di] = self._next_id
                self.tracks[self._next_id] = Track(self._next_id, person.keypoints, person.box.astype(np.float64))
                self._next_id += 1
        return [dataclasses.replace(p, track_id=tid) for p, tid in zip(people, ids)]

    @property
    def live_ids(self) -> set[int]:
        """Ids of the tracks still kept (seen within max_age frames)."""
        return set(self.tracks)
