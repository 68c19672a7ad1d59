"""The estimator interface every model family implements: ``result = est(image, boxes=None)``."""

from __future__ import annotations

import contextvars
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from posekit.defaults import DEFAULTS
from posekit.io import as_rgb
from posekit.results import Result
from posekit.skeleton import Skeleton
from posekit.types import Person

#: Stage timings of the estimator call in progress (stage -> ms), shared by the estimators it calls (a pipeline's
#: detector and pose model, a flip test's two runs), so estimators keep no per-call state and threads don't mix.
_TIMINGS: contextvars.ContextVar[dict[str, float] | None] = contextvars.ContextVar("posekit_timings", default=None)


class Estimator:
    """Base class: subclasses implement ``predict(image_rgb, boxes)``.

    ``est(image)`` accepts a path, an RGB array or a PIL image and returns a `Result`: the list of `Person` in
    original-image pixels, with ``speed`` (milliseconds per stage: ``detector``, ``preprocess``, ``network``,
    ``decode``) and ``image_size``.  With ``boxes`` ((N, 4) x1, y1, x2, y2 image pixels) a top-down estimator
    returns exactly one Person per box, in order.

    Capabilities, declared here with one meaning for every estimator:
    ``multi_person`` (finds several people in a whole image), ``top_down`` (accepts person boxes),
    ``can_track`` (``track(image, people)`` follows last frame's people its own way) and ``flipped()`` (this
    estimator with the flip test).
    """

    name: str = "estimator"
    skeleton: Skeleton
    #: finds several people in a whole image (without boxes).
    multi_person: bool = False
    #: accepts person boxes (runs on crops).
    top_down: bool = True
    #: has its own way to follow people across video frames (`track`); otherwise video uses boxes around them.
    can_track: bool = False

    def __call__(self, image: Any, boxes: np.ndarray | None = None) -> Result:
        rgb = as_rgb(image)
        if boxes is not None:
            boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        return self._timed(self.predict, rgb, rgb, boxes)

    def _timed(self, fn, rgb: np.ndarray, *args: Any) -> Result:
        """``fn(*args)`` with stage timings collected into the Result (shared with an enclosing call's)."""
        outer = _TIMINGS.get()
        timings: dict[str, float] = {} if outer is None else outer
        token = _TIMINGS.set(timings) if outer is None else None
        try:
            people = fn(*args)
        finally:
            if token is not None:
                _TIMINGS.reset(token)
        return Result(people, speed=timings, image_size=rgb.shape[:2], image=rgb, model=self.name)

    def predict(self, image_rgb: np.ndarray, boxes: np.ndarray | None = None) -> list[Person]:
        raise NotImplementedError

    def track(self, image: Any, people: Sequence[Person]) -> Result:
        """``people`` of the previous video frame found again in ``image``, one per person, in order (only where
        ``can_track``; video pipelines otherwise run the estimator on boxes around them)."""
        raise NotImplementedError(f"{self.name} has no tracking of its own (can_track is False)")

    def flipped(self) -> Estimator:
        """This estimator with the flip test (mirrored run fused with the plain one); families with a cheaper flip
        of their own (BlazePose's ROI crops, a pipeline's pose crops) override it."""
        from posekit.estimators.flip import FlipTest

        return FlipTest(self)

    def stage(self, name: str) -> _Stage:
        """``with est.stage(name):`` adds the block's wall time to the current call's ``speed[name]`` (ms)."""
        timings = _TIMINGS.get()
        return _Stage({} if timings is None else timings, name)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


def check_margin(margin: float) -> None:
    """Crop margins are positive factors of the person box size."""
    if not margin > 0:
        from posekit.errors import PosekitError

        raise PosekitError(f"margin must be a positive factor of the box size (e.g. {DEFAULTS.crop_margin}), "
                           f"got {margin!r}")


class _Stage:
    """Context manager behind `Estimator.stage` (a plain class: cheaper per use than a generator-based one)."""

    __slots__ = ("timings", "name", "start")

    def __init__(self, timings: dict[str, float], name: str) -> None:
        self.timings, self.name = timings, name

    def __enter__(self) -> None:
        self.start = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        self.timings[self.name] = self.timings.get(self.name, 0.0) + (time.perf_counter() - self.start) * 1000.0
