"""EfficientPose II Lite: one person, 16 MPII joints, from confidence maps at input resolution (368 x 368).

MPII-16 has no face points, so its people cannot be scored with COCO keypoint AP (``Person.to_coco`` raises);
`posekit.skeleton.MPII16_TO_COCO17` maps the 12 body joints both schemas share.
"""

from __future__ import annotations

import numpy as np

from posekit.defaults import DEFAULTS
from posekit.estimators.base import Estimator, check_margin
from posekit.estimators.registry import register
from posekit.network import load_network
from posekit.skeleton import MPII16
from posekit.transforms import apply_affine, crop_box, invert_affine, letterbox
from posekit.types import Person, box_from_keypoints

NAME = "efficientpose"
OUTPUT = "upscaled_confs/BiasAdd:0"
#: Keypoints scoring above this span Person.box when no person box was given.


def decode_confidence_maps(maps: np.ndarray, channels: tuple[int, ...] | None) -> np.ndarray:
    """Confidence maps (C, H, W) at input resolution -> (K, 3) x, y input pixels, score, in skeleton order.

    ``channels``: skeleton keypoint k is map ``channels[k]`` (None: the maps are in skeleton order).  Each
    joint is its map's argmax moved a quarter pixel towards the higher neighbour; pixel i is centred at
    i + 0.5; score = the peak value clipped to [0, 1] (the maps are not activated).
    """
    maps = np.asarray(maps, dtype=np.float32)
    c, h, w = maps.shape
    order = np.arange(c) if channels is None else np.asarray(channels)
    best = maps.reshape(c, h * w).argmax(axis=1)[order]
    y, x = np.divmod(best, w)
    xy = np.stack([x, y], axis=1).astype(np.float32) + np.float32(0.5)
    for axis, (fwd, bwd, inside) in enumerate((((y, np.minimum(x + 1, w - 1)), (y, np.maximum(x - 1, 0)),
                                                (x > 0) & (x < w - 1)),
                                               ((np.minimum(y + 1, h - 1), x), (np.maximum(y - 1, 0), x),
                                                (y > 0) & (y < h - 1)))):
        xy[:, axis] += np.where(inside, np.float32(0.25) * np.sign(maps[(order, *fwd)] - maps[(order, *bwd)]), 0)
    return np.column_stack([xy, np.minimum(np.maximum(maps[order, y, x], 0), 1)]).astype(np.float32)


class EfficientPose(Estimator):
    """EfficientPose II Lite (EfficientNet-Lite4 backbone), single person, MPII-16 joints.

    Without boxes: the whole image, letterboxed to 368 x 368, gives one Person whose box spans the joints
    scoring above ``DEFAULTS.box_min_score`` (all if none do).  With boxes ((N, 4) x1, y1, x2, y2 image pixels):
    each box
    is cropped square, ``margin`` x its longer side around its centre, and gives one Person, in order, whose box
    is the given box.  Person.score = mean joint score.  threads: ONNX Runtime threads.
    """

    multi_person = False
    top_down = True
    skeleton = MPII16
    name = NAME

    def __init__(self, margin: float = DEFAULTS.crop_margin, threads: int | None = None) -> None:
        super().__init__()
        check_margin(margin)
        self.margin = float(margin)
        self.network = load_network(NAME, threads=threads, pixels=True, nchw_outputs=[OUTPUT])
        self.spec = self.network.spec
        self.size = self.spec.input_size

    def predict(self, image_rgb: np.ndarray, boxes: np.ndarray | None = None) -> list[Person]:
        if boxes is None:
            keypoints = self._keypoints(image_rgb, None)
            box = box_from_keypoints(keypoints, DEFAULTS.box_min_score)
            return [Person(keypoints, box, float(keypoints[:, 2].mean()),
                           MPII16)]
        people = []
        for box in boxes:  # one crop per run: batched 368 px crops ran slower on CPU (BENCHMARKS.md)
            keypoints = self._keypoints(image_rgb, box)
            people.append(Person(keypoints, box, float(keypoints[:, 2].mean()), MPII16))
        return people

    def _keypoints(self, image_rgb: np.ndarray, box: np.ndarray | None) -> np.ndarray:
        """(16, 3) x, y image pixels, score for the whole image (box None) or the crop around ``box``."""
        with self.stage("preprocess"):
            if box is None:
                resized, m = letterbox(image_rgb, self.size)
            else:
                resized, m = crop_box(image_rgb, box, self.size, margin=self.margin)
        with self.stage("network"):
            maps = self.network.run(resized[None])[OUTPUT][0]
        with self.stage("decode"):
            return apply_affine(decode_confidence_maps(maps, self.spec.keypoint_channels), invert_affine(m))


@register(NAME, "EfficientPose II Lite: single-person MPII-16 joints (no face points, not COCO-scorable), "
          "368x368 (whole image, or one crop per box)")
def efficientpose(**options) -> EfficientPose:
    return EfficientPose(**options)
