"""`Result`: what one estimator call returns for one image or video frame.

A `Result` is a list of `Person` (code that iterates, indexes or sorts people keeps working) that also knows
where it came from and what it cost: ``speed`` (stage -> milliseconds: ``detector``, ``preprocess``, ``network``,
``decode``, ...), ``image_size`` (height, width), ``source`` (path, URL or camera) and ``frame`` (video index).
``plot()`` draws it, ``to_json()`` gives the per-image record `posekit predict` writes, ``to_coco(image_id)`` the
COCO results entries.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from posekit.defaults import DEFAULTS
from posekit.types import Person


class Result(list):
    """People found in one image or frame, plus its provenance and per-stage timings (see the module doc)."""

    def __init__(self, people: Iterable[Person] = (), *, speed: dict[str, float] | None = None,
                 image_size: tuple[int, int] | None = None, source: str | None = None, frame: int | None = None,
                 time_s: float | None = None, image: np.ndarray | None = None, model: str | None = None,
                 error: str | None = None) -> None:
        super().__init__(people)
        self.speed: dict[str, float] = dict(speed or {})
        self.image_size = None if image_size is None else (int(image_size[0]), int(image_size[1]))
        self.source = None if source is None else str(source)
        self.frame = frame
        self.time_s = time_s
        #: the (H, W, 3) uint8 RGB image the people were found in (None when not kept), for `plot`.
        self.image = image
        self.model = model
        #: why this source gave no result (unreadable image, missing file), with ``errors="report"``.
        self.error = error

    def replace(self, people: Iterable[Person] | None = None, **fields: Any) -> Result:
        """A copy with other people (e.g. filtered) and/or other fields, the rest kept."""
        keep = {k: getattr(self, k) for k in ("speed", "image_size", "source", "frame", "time_s", "image", "model",
                                            "error")}
        keep.update(fields)
        return Result(self if people is None else people, **keep)

    def best(self, min_score: float | None = DEFAULTS.min_score, max_people: int | None = None) -> Result:
        """The people a person would count: score >= ``min_score`` (None: all), best first, at most ``max_people``."""
        people = sorted(self, key=lambda p: -p.score)
        if min_score is not None:
            people = [p for p in people if p.score >= min_score]
        return self.replace(people[:max_people] if max_people else people)

    @property
    def milliseconds(self) -> float:
        """Total of the timed stages."""
        return float(sum(self.speed.values()))

    def plot(self, threshold: float = DEFAULTS.threshold, image: np.ndarray | None = None, **options: Any
             ) -> np.ndarray:
        """The image with the people drawn (RGB uint8 copy); options go to `posekit.draw`."""
        from posekit.draw import draw

        base = self.image if image is None else image
        if base is None:
            raise ValueError("this Result keeps no image: pass image=... to plot()")
        return draw(base, list(self), threshold=threshold, **options)

    def to_json(self) -> dict[str, Any]:
        """The friendly per-image record: source, frame, size, model, milliseconds per stage and the people."""
        h, w = self.image_size or (None, None)
        record: dict[str, Any] = {"image": self.source}
        if self.frame is not None:
            record["frame"] = int(self.frame)
        if self.time_s is not None:
            record["time"] = round(float(self.time_s), 4)
        if self.error is not None:
            record["error"] = self.error
        record.update({
            "width": w, "height": h, "model": self.model,
            "milliseconds": round(self.milliseconds, 2),
            "speed": {k: round(float(v), 2) for k, v in self.speed.items()},
            "people": [p.to_dict() for p in self],
        })
        return record

    def to_coco(self, image_id: int, category_id: int = 1) -> list[dict[str, Any]]:
        """COCO keypoint results entries (every person, whatever its score: AP needs the low-scored ones too);
        people whose skeleton has no COCO-17 mapping are left out."""
        return [p.coco_record(image_id, category_id) for p in self if p.skeleton.to_coco is not None]

    def __repr__(self) -> str:
        where = f" {self.source}" if self.source else ""
        where += f"@{self.frame}" if self.frame is not None else ""
        n = len(self)
        return f"<Result{where}: {n} {'person' if n == 1 else 'people'}, {self.milliseconds:.1f} ms>"
