"""Person detectors for top-down pipelines: ``boxes, scores = det.detect(image_rgb)`` in image pixels."""

from __future__ import annotations

import numpy as np

from posekit.decode.centernet import CENTERNET_INPUT_SIZE, decode_centernet
from posekit.decode.detection import persons
from posekit.estimators.registry import register
from posekit.hub.registry import get_spec
from posekit.network import load_network
from posekit.transforms import apply_affine, invert_affine, letterbox


class CenterNetPersons:
    """The zoo's CenterNet (MobileNetV3, COCO classes) keeping people only.

    score_threshold: minimum box score; iou_threshold: NMS overlap; max_people: cap on boxes returned.
    """

    name = "centernet"

    def __init__(self, score_threshold: float = 0.3, iou_threshold: float = 0.6, max_people: int = 20,
                 threads: int | None = None) -> None:
        self.spec = get_spec("centernet")
        self.net = load_network("centernet", threads=threads)
        self.score_threshold = score_threshold
        self.iou_threshold = iou_threshold
        self.max_people = max_people

    def detect(self, image_rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, 4) x1, y1, x2, y2 boxes in image pixels (clipped to the image) and (N,) scores, best first."""
        size = CENTERNET_INPUT_SIZE
        resized, m = letterbox(image_rgb, (size, size))
        x = resized[None].astype(np.float32) * self.spec.input_scale + self.spec.input_offset
        boxes, scores, classes = decode_centernet(self.net.run(x))
        boxes, scores = persons(boxes, scores, classes, self.score_threshold, self.iou_threshold, self.max_people)
        back = invert_affine(m)
        corners = apply_affine(boxes.reshape(-1, 2), back).reshape(-1, 4)
        h, w = image_rgb.shape[:2]
        corners[:, [0, 2]] = corners[:, [0, 2]].clip(0, w)
        corners[:, [1, 3]] = corners[:, [1, 3]].clip(0, h)
        keep = (corners[:, 2] - corners[:, 0] > 1) & (corners[:, 3] - corners[:, 1] > 1)
        return corners[keep].astype(np.float32), scores[keep].astype(np.float32)


@register("centernet", "CenterNet MobileNetV3 person detector (512x512), for detector+pose pipelines",
          kind="detector")
def centernet(**options) -> CenterNetPersons:
    return CenterNetPersons(**options)
