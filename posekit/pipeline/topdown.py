"""Top-down pipeline: person detector -> one crop per person -> single-person pose model -> image pixels."""

from __future__ import annotations

from dataclasses import replace
from typing import Protocol

import numpy as np

from posekit.estimators.base import Estimator
from posekit.types import Person


class Detector(Protocol):
    name: str

    def detect(self, image_rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, 4) x1, y1, x2, y2 image-pixel boxes and (N,) scores."""


class TopDown(Estimator):
    """``detector`` finds people, ``pose`` (any estimator that accepts boxes) places their joints.

    Person.score = box score x mean keypoint score (the ranking COCO AP rewards), with the box score kept in
    ``extras["box_score"]``; box = the detector's box. With ``boxes`` given, the detector is skipped
    (ground-truth boxes, tracking) and Person.score is the mean keypoint score: there is no box score to weigh
    it by (``track_video`` multiplies in the box score its track was detected with).
    """

    multi_person = True
    top_down = True

    def __init__(self, detector: Detector, pose: Estimator) -> None:
        self.detector = detector
        self.pose = pose
        self.skeleton = pose.skeleton
        self.name = f"{detector.name}+{pose.name}"

    def flipped(self) -> TopDown:
        """This pipeline with the flip test on its pose model's crops (the detector still runs once)."""
        return TopDown(self.detector, self.pose.flipped())

    def predict(self, image_rgb: np.ndarray, boxes: np.ndarray | None = None) -> list[Person]:
        if boxes is not None:
            return self.pose.predict(image_rgb, boxes)
        with self.stage("detector"):
            boxes, scores = self.detector.detect(image_rgb)
        if len(boxes) == 0:
            return []
        people = self.pose.predict(image_rgb, boxes)
        return [
            replace(p, box=box, score=float(score) * float(np.mean(p.keypoints[:, 2])),
                    extras={**p.extras, "box_score": float(score)})
            for p, box, score in zip(people, boxes, scores)
        ]
