"""Person detectors for top-down pipelines: ``boxes, scores = det.detect(image_rgb)`` in image pixels.

Both zoo detectors (CenterNet, NanoDet) are COCO-80 object detectors on a letterboxed square input; they share
`CocoPersons.detect`: network -> decoder -> people only, NMS -> back to image pixels (`boxes_to_image`).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from posekit.decode import nanodet
from posekit.decode.centernet import decode_centernet
from posekit.decode.detection import persons
from posekit.estimators.registry import register
from posekit.network import load_network
from posekit.transforms import Affine, apply_affine, invert_affine, letterbox

#: Boxes narrower or shorter than this (image pixels, after clipping to the image) are dropped.
MIN_BOX_SIDE = 1.0


def boxes_to_image(boxes: np.ndarray, scores: np.ndarray, back: Affine, image_hw: tuple[int, int]
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Boxes (N, 4) x1, y1, x2, y2 in network-input pixels -> image pixels through ``back`` (input px -> image px,
    no rotation), clipped to the (h, w) image; boxes left thinner than `MIN_BOX_SIDE` (e.g. wholly in the letterbox
    padding) are dropped with their scores.  Returns float32 (M, 4) boxes and (M,) scores."""
    corners = apply_affine(np.asarray(boxes, dtype=np.float32).reshape(-1, 2), back).reshape(-1, 4)
    h, w = image_hw
    corners[:, [0, 2]] = corners[:, [0, 2]].clip(0, w)
    corners[:, [1, 3]] = corners[:, [1, 3]].clip(0, h)
    keep = (corners[:, 2] - corners[:, 0] > MIN_BOX_SIDE) & (corners[:, 3] - corners[:, 1] > MIN_BOX_SIDE)
    return corners[keep].astype(np.float32), np.asarray(scores, dtype=np.float32).reshape(-1)[keep]


class CocoPersons:
    """A zoo COCO-80 detector keeping people only.  Subclasses set ``name`` (the zoo network) and implement
    ``decode``; the network takes the letterboxed RGB pixels and normalises them itself.

    score_threshold: minimum box score; iou_threshold: NMS overlap; max_people: cap on boxes returned;
    threads: ONNX Runtime threads.
    """

    name: str

    def __init__(self, score_threshold: float = 0.3, iou_threshold: float = 0.6, max_people: int = 20,
                 threads: int | None = None) -> None:
        self.net = load_network(self.name, threads=threads, pixels=True)
        self.score_threshold = score_threshold
        self.iou_threshold = iou_threshold
        self.max_people = max_people

    def preprocess(self, image_rgb: np.ndarray) -> tuple[np.ndarray, Affine]:
        """RGB image -> (uint8 [1, size, size, 3] letterboxed pixels, zero padding; affine input px -> image px)."""
        resized, m = letterbox(image_rgb, self.net.inputs[0].shape[1:3])
        return resized[None], invert_affine(m)

    def decode(self, outputs: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Network outputs -> (boxes (N, 4) x1, y1, x2, y2 in input pixels, scores (N,), COCO class ids (N,))."""
        raise NotImplementedError

    def detect(self, image_rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, 4) x1, y1, x2, y2 boxes in image pixels (clipped to the image) and (N,) scores, best first."""
        x, back = self.preprocess(image_rgb)
        boxes, scores, classes = self.decode(self.net.run(x))
        boxes, scores = persons(boxes, scores, classes, self.score_threshold, self.iou_threshold, self.max_people)
        return boxes_to_image(boxes, scores, back, image_rgb.shape[:2])


class CenterNetPersons(CocoPersons):
    """The zoo's CenterNet (MobileNetV3, COCO classes, 512 x 512) keeping people only."""

    name = "centernet"

    def decode(self, outputs: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return decode_centernet(outputs)


class NanoDetPersons(CocoPersons):
    """The zoo's NanoDet (GFL head, COCO classes, 416 x 416, BGR mean / std input) keeping people only."""

    name = "nanodet"

    def decode(self, outputs: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return nanodet.decode_nanodet(outputs, score_thr=self.score_threshold)


@register("centernet", "CenterNet MobileNetV3 person detector (512x512), for detector+pose pipelines",
          kind="detector")
def centernet(**options) -> CenterNetPersons:
    return CenterNetPersons(**options)


@register("nanodet", "NanoDet (GFL) person detector (416x416), for detector+pose pipelines", kind="detector")
def nanodet_persons(**options) -> NanoDetPersons:
    return NanoDetPersons(**options)
