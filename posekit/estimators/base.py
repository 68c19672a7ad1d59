"""The estimator interface every model family implements: ``people = est(image, boxes=None)``."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from posekit.io import as_rgb
from posekit.skeleton import Skeleton
from posekit.types import Person


class Estimator:
    """Base class: subclasses implement ``predict(image_rgb, boxes)``.

    ``est(image)`` accepts a path, an RGB array or a PIL image and returns a list of `Person` in original-image
    pixels.  With ``boxes`` ((N, 4) x1, y1, x2, y2 image pixels) a top-down estimator returns exactly one
    Person per box, in order.  ``timings`` holds the last call's milliseconds per stage
    (``preprocess``, ``network``, ``decode``).
    """

    name: str = "estimator"
    skeleton: Skeleton
    multi_person: bool = False
    #: True when the model accepts person boxes (runs on crops).
    top_down: bool = True

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}

    def __call__(self, image: Any, boxes: np.ndarray | None = None) -> list[Person]:
        self.timings = {}
        rgb = as_rgb(image)
        if boxes is not None:
            boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        return self.predict(rgb, boxes)

    def predict(self, image_rgb: np.ndarray, boxes: np.ndarray | None = None) -> list[Person]:
        raise NotImplementedError

    def stage(self, name: str) -> _Stage:
        """``with est.stage(name):`` accumulates the block's wall time into ``timings[name]`` (ms)."""
        return _Stage(self.timings, name)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


class _Stage:
    """Context manager behind `Estimator.stage` (a plain class: cheaper per use than a generator-based one)."""

    __slots__ = ("timings", "name", "start")

    def __init__(self, timings: dict[str, float], name: str) -> None:
        self.timings, self.name = timings, name

    def __enter__(self) -> None:
        self.start = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        self.timings[self.name] = self.timings.get(self.name, 0.0) + (time.perf_counter() - self.start) * 1000.0
