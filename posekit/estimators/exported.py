"""Models trained with `posekit train`: an exported ``.onnx`` file or a ``.safetensors`` checkpoint, used like
any zoo estimator (skeleton and pre-processing travel in the file's metadata)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from posekit.estimators.base import Estimator
from posekit.types import Person

#: File suffixes `posekit.load` treats as a trained model rather than a zoo name.
MODEL_FILE_SUFFIXES = (".onnx", ".safetensors")


class TrainedModel(Estimator):
    """A top-down model from ``posekit export`` / ``posekit train``: one Person per box (the whole image
    without boxes), keypoints in image pixels, score = mean keypoint score."""

    multi_person = False
    top_down = True

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        from posekit.export.metadata import skeleton_from_dict
        from posekit.export.runtime import load_exported

        self.path = Path(path)
        self.name = self.path.name
        self.session, self.meta = load_exported(self.path)
        self.skeleton = skeleton_from_dict(self.meta["skeleton"])

    def predict(self, image_rgb: np.ndarray, boxes: np.ndarray | None = None) -> list[Person]:
        from posekit.export.runtime import estimate

        with self.stage("network"):
            return estimate(self.session, self.meta, image_rgb, boxes)
