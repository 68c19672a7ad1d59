"""Flip test for any estimator: run it on the mirrored image too, un-mirror, and fuse the two answers.

``est.flipped()`` is the front door: estimators with a flip test of their own (BlazePose mirrors each ROI crop, a
top-down pipeline runs its detector once and flips its pose model's crops) override it; the base class wraps itself
in the generic `FlipTest`.

Coordinates are continuous image pixels (x in [0, W]), so mirroring maps x -> W - x and a box (x1, x2) -> (W - x2,
W - x1).  Left/right keypoints swap through ``Skeleton.flip_permutation()``.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from posekit.decode.detection import greedy_match, iou
from posekit.estimators.base import Estimator
from posekit.types import Person


def mirror_boxes(boxes: np.ndarray, width: float) -> np.ndarray:
    """(N, 4) x1, y1, x2, y2 boxes in an image of the given width -> the same boxes in the mirrored image."""
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    return np.stack([width - boxes[:, 2], boxes[:, 1], width - boxes[:, 0], boxes[:, 3]], axis=1)


def unmirror_person(person: Person, width: float) -> Person:
    """A person found in the mirrored image, expressed in the original image (keypoints, box, 3-D keypoints)."""
    perm = person.skeleton.flip_permutation()
    kp = person.keypoints[perm].copy()
    kp[:, 0] = width - kp[:, 0]
    kp3d = None
    if person.keypoints_3d is not None:
        kp3d = np.asarray(person.keypoints_3d, dtype=np.float32)[perm].copy()
        kp3d[:, 0] = -kp3d[:, 0]
    return replace(person, keypoints=kp, box=mirror_boxes(person.box, width)[0], keypoints_3d=kp3d)


#: Flip-test fusion: two estimates of a keypoint closer than this fraction of the person box's longer side are
#: averaged; farther apart, the more confident one wins (as when averaging heatmaps: near peaks merge, far ones
#: compete).  Plain averaging of far-apart estimates lands between them and lowered PoseNet's AP on COCO.
AGREE_RADIUS = 0.05


def fuse_people(a: Person, b: Person, agree_radius: float = AGREE_RADIUS) -> Person:
    """Fuse two estimates of one person: per keypoint, a score-weighted mean where they agree (within agree_radius x
    a's longer box side), else the higher-scoring one; keypoint and person scores are averaged, boxes too."""
    wa, wb = a.keypoints[:, 2:3], b.keypoints[:, 2:3]
    total = wa + wb
    share_a = np.where(total > 0, wa / np.where(total > 0, total, 1.0), 0.5)
    size = float(max(a.box[2] - a.box[0], a.box[3] - a.box[1]))
    agree = np.linalg.norm(a.keypoints[:, :2] - b.keypoints[:, :2], axis=1, keepdims=True) <= agree_radius * size
    share_a = np.where(agree, share_a, (wa >= wb).astype(np.float32))
    xy = share_a * a.keypoints[:, :2] + (1.0 - share_a) * b.keypoints[:, :2]
    kp = np.concatenate([xy, total / 2.0], axis=1)
    kp3d = a.keypoints_3d
    if a.keypoints_3d is not None and b.keypoints_3d is not None:
        kp3d = share_a * np.asarray(a.keypoints_3d) + (1.0 - share_a) * np.asarray(b.keypoints_3d)
    return replace(a, keypoints=kp, box=(a.box + b.box) / 2.0, score=(a.score + b.score) / 2.0, keypoints_3d=kp3d)


class FlipTest(Estimator):
    """Wrap an estimator ``est(image_rgb, boxes=None) -> list[Person]`` so that it also runs on the mirrored image.

    With boxes, the i-th person of both runs is fused.  Without, people of the mirrored run are paired with the
    original ones by box IoU >= ``match_iou`` (best score first); an original person with no partner is kept as is.
    The Result's ``speed`` adds up both runs' stages.
    """

    def __init__(self, estimator: Estimator, match_iou: float = 0.5) -> None:
        self.estimator = estimator
        self.match_iou = match_iou
        self.name = estimator.name
        self.skeleton = estimator.skeleton
        self.multi_person = estimator.multi_person
        self.top_down = estimator.top_down

    def _run(self, image: np.ndarray, boxes: np.ndarray | None) -> list[Person]:
        return list(self.estimator(image, boxes))

    def predict(self, image_rgb: np.ndarray, boxes: np.ndarray | None = None) -> list[Person]:
        width = image_rgb.shape[1]
        mirrored = np.ascontiguousarray(image_rgb[:, ::-1])
        people = self._run(image_rgb, boxes)
        flipped_boxes = None if boxes is None else mirror_boxes(boxes, width)
        flipped = [unmirror_person(p, width) for p in self._run(mirrored, flipped_boxes)]
        if boxes is not None:
            return [fuse_people(a, b) for a, b in zip(people, flipped)]
        overlap = iou(np.array([p.box for p in people]), np.array([p.box for p in flipped]))
        partner = dict(greedy_match(overlap, [p.score for p in people], min_similarity=self.match_iou))
        return [fuse_people(p, flipped[partner[i]]) if i in partner else p for i, p in enumerate(people)]
