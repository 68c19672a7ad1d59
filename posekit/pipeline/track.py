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

from posekit.decode.detection import box_iou, oks_matrix
from posekit.defaults import DEFAULTS
from posekit.skeleton import COCO17, Skeleton
from posekit.types import Person, box_from_keypoints

#: Weight of the newest displacement in the exponential average (starting at rest) that estimates a track's
#: velocity; low, because detections jitter by more than people move in a frame.
VELOCITY_GAIN = 0.3
#: Lost tracks' boxes grow by at most this many times their size on each side.
MAX_BUFFER = 1.0


def expand_boxes(boxes: np.ndarray, fraction: np.ndarray | float) -> np.ndarray:
    """Grow (..., 4) boxes by ``fraction`` (broadcast to (...)) of their width and height on every side."""
    boxes = np.asarray(boxes, dtype=np.float64)
    grow = (boxes[..., 2:] - boxes[..., :2]) * np.asarray(fraction, dtype=np.float64)[..., None]
    return np.concatenate([boxes[..., :2] - grow, boxes[..., 2:] + grow], axis=-1)


def oks_sigmas(skeleton: Skeleton) -> tuple[np.ndarray, np.ndarray] | None:
    """(joint indices, OKS sigmas) usable for ``skeleton``: its own sigmas, else COCO's on its COCO-17 joints."""
    if skeleton.sigmas is not None:
        return np.arange(skeleton.num_keypoints), np.asarray(skeleton.sigmas)
    if skeleton.to_coco is not None:
        return np.asarray(skeleton.to_coco), np.asarray(COCO17.sigmas)
    return None


def pose_overlap(people: list[Person], min_score: float = 0.2) -> np.ndarray:
    """(N, N) similarity of the poses of ``people`` with one another: OKS with the area of the box around each
    pose's joints scoring above min_score as its scale, or IoU of those boxes when the skeleton has no OKS
    sigmas."""
    boxes = np.stack([box_from_keypoints(p.keypoints, min_score) for p in people]).astype(np.float64)
    view = oks_sigmas(people[0].skeleton)
    if view is None or len({p.keypoints.shape for p in people}) > 1:
        return box_iou(boxes[:, None], boxes[None])
    idx, sigmas = view
    kp = np.stack([p.keypoints for p in people])[:, idx]
    areas = np.maximum(np.prod(boxes[:, 2:] - boxes[:, :2], axis=1), 1.0)
    return oks_matrix(kp, kp, areas, sigmas, min_score).T


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
    areas = np.maximum(np.prod(boxes_t[:, 2:] - boxes_t[:, :2], axis=1), 1.0)
    oks = oks_matrix(np.stack([p.keypoints for p in people])[:, idx], np.stack(pred)[:, idx], areas, sigmas, 0.1).T
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
    """A tracked person: the last matched ``person`` (raw, image pixels), its box as float64, velocity (px/frame
    of the box centre), ``age`` = frames since the last match (0 = matched in the latest frame), ``hits`` =
    matches in a row since the track began (counted while tentative). ``track_id`` is None while the track is
    tentative (not yet confirmed)."""

    track_id: int | None
    person: Person
    box: np.ndarray
    velocity: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(2))
    age: int = 0
    hits: int = 1

    @property
    def keypoints(self) -> np.ndarray:
        """(K, 3) last matched pose."""
        return self.person.keypoints

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
        self.person, self.box = person, person.box.astype(np.float64)
        self.age = 0
        self.hits += 1


def _centre(box: np.ndarray) -> np.ndarray:
    return (np.asarray(box[:2], np.float64) + np.asarray(box[2:], np.float64)) / 2


class Tracker:
    """Assigns stable track ids to the people detected in consecutive frames.

    Association runs in stages (ByteTrack): sure detections (``Person.score >= high_score``) are matched to the
    confirmed tracks first; unsure detections then only continue confirmed tracks left over, and never start
    one; sure detections still left continue tentative tracks or start new ones. A new track stays tentative,
    without an id, until sure detections matched it in ``min_hits`` consecutive frames (SORT); a tentative track
    that misses a frame is dropped, so short-lived spurious boxes use up no ids. Tracks begun while the tracker
    has seen fewer than ``min_hits`` frames are confirmed at once (there is no history to check them against).

    max_age: frames a confirmed track survives unmatched (a person returning within it gets the same id).
    min_similarity: least OKS/IoU similarity (0..1) for a detection to continue a track.
    buffer: growth of a lost track's box per missed frame, as a fraction of its size (see ``similarity``).
    high_score: least person score of a detection that may start a track (0: every detection may). The default
        suits detector+pose models, whose score is box score x mean keypoint score: on vtest.avi people score
        0.16-0.5 and the detector's false positives on static objects 0.03-0.08.
    min_hits: consecutive sure matches, the first detection included, that confirm a track (1: at once).
    """

    def __init__(self, max_age: int = DEFAULTS.max_age, min_similarity: float = 0.2, buffer: float = 0.2,
                 high_score: float = 0.15, min_hits: int = DEFAULTS.min_hits) -> None:
        if max_age < 0:
            raise ValueError(f"max_age must be >= 0, got {max_age}")
        if min_hits < 1:
            raise ValueError(f"min_hits must be >= 1, got {min_hits}")
        self.max_age, self.min_similarity, self.buffer = max_age, min_similarity, buffer
        self.high_score, self.min_hits = high_score, min_hits
        #: Confirmed tracks by id, lost ones (age > 0) included.
        self.tracks: dict[int, Track] = {}
        #: Tracks not confirmed yet, each matched in the latest frame.
        self.tentative: list[Track] = []
        self.frames = 0
        self._next_id = 1

    def update(self, people: list[Person]) -> list[Person]:
        """Copies of ``people`` (same order) with ``track_id`` set: the id of the confirmed track each continues,
        None for people not (yet) tracked (tentative tracks, unsure detections matching no track). Advances
        every track by one frame."""
        self.frames += 1
        owner: list[Track | None] = [None] * len(people)
        sure = [i for i, p in enumerate(people) if p.score >= self.high_score]
        unsure = [i for i, p in enumerate(people) if p.score < self.high_score]
        confirmed = list(self.tracks.values())
        # Exact positions first; then what is left, with lost tracks' boxes buffered.
        self._match(confirmed, people, sure, owner, (0.0, self.buffer))
        self._match(confirmed, people, unsure, owner, (0.0,))
        self._match(self.tentative, people, sure, owner, (0.0,))
        matched = {id(t) for t in owner if t is not None}
        for track in confirmed:
            if id(track) not in matched:
                track.age += 1
                if track.age > self.max_age:
                    del self.tracks[track.track_id]
        self.tentative = [t for t in self.tentative if id(t) in matched]
        for i in sure:
            if owner[i] is None:
                owner[i] = Track(None, people[i], people[i].box.astype(np.float64))
                self.tentative.append(owner[i])
        for track in [t for t in self.tentative if t.hits >= self.min_hits or self.frames < self.min_hits]:
            track.track_id, self._next_id = self._next_id, self._next_id + 1
            self.tracks[track.track_id] = track
            self.tentative.remove(track)
        return [dataclasses.replace(p, track_id=t.track_id if t is not None else None) for p, t in zip(people, owner)]

    def _match(self, tracks: list[Track], people: list[Person], candidates: list[int], owner: list[Track | None],
               buffers: tuple[float, ...]) -> None:
        """Hungarian-match the tracks not yet in ``owner`` to the ``candidates`` (indices into people) not yet
        owned, once per buffer in turn; writes the pairs into ``owner`` and updates the tracks."""
        for buffer in buffers:
            taken = {id(t) for t in owner if t is not None}
            free_t = [t for t in tracks if id(t) not in taken]
            free_d = [i for i in candidates if owner[i] is None]
            if not free_t or not free_d:
                continue
            sim = similarity(free_t, [people[i] for i in free_d], buffer)
            for ti, di in assign(sim, self.min_similarity):
                free_t[ti].update(people[free_d[di]])
                owner[free_d[di]] = free_t[ti]

    @property
    def live_ids(self) -> set[int]:
        """Ids of the confirmed tracks still kept (seen within max_age frames)."""
        return set(self.tracks)

    @property
    def active(self) -> list[Track]:
        """Tracks matched in the latest frame, confirmed ones (by id) first, then tentative ones."""
        return [t for t in self.tracks.values() if t.age == 0] + self.tentative
