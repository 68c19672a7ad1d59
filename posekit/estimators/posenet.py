"""PoseNet (MobileNetV1, output stride 16): several people per image by PersonLab's greedy decoding, or one
person per image / per box by per-joint argmax."""

from __future__ import annotations

import numpy as np

from posekit.decode import posenet as pn
from posekit.defaults import DEFAULTS
from posekit.errors import PosekitError
from posekit.estimators.base import Estimator, check_margin
from posekit.estimators.registry import register
from posekit.network import load_network
from posekit.skeleton import COCO17
from posekit.transforms import Affine, apply_affine, crop_box, invert_affine, whole_image
from posekit.types import Person, box_from_keypoints

#: Keypoints scoring above this span Person.box when no person box was given.
#: Input sides offered in the error message for a bad ``size`` (any 16 k + 1 works).
SUGGESTED_SIZES = tuple(range(129, 802, 32))


class PoseNet(Estimator):
    """PoseNet MobileNetV1 at ``size`` x ``size`` input (a side of the form 16 k + 1; 385 is the graph's own).

    multi_person True: the whole image, letterboxed, is decoded into up to ``max_people`` people (root joints
    scoring at least ``score_threshold``, ``nms_radius`` input pixels apart), keeping those whose pose score
    (Person.score: mean score of the joints no earlier person claimed) is at least ``min_score``.
    multi_person False: one person per image by per-joint argmax, score = mean keypoint score.
    With boxes ((N, 4) x1, y1, x2, y2 image pixels) either way: each box is cropped square (``margin`` x its
    longer side) and decoded single-person, one Person per box, in order, whose box is the given box.  Without
    boxes Person.box spans the keypoints scoring above ``DEFAULTS.box_min_score`` (all if none do).
    """

    top_down = True
    skeleton = COCO17
    name = "posenet"

    def __init__(self, size: int = 385, multi_person: bool = True, max_people: int = 10,
                 score_threshold: float = 0.5, nms_radius: float = 20.0, min_score: float = 0.15,
                 margin: float = DEFAULTS.crop_margin,
                 threads: int | None = None) -> None:
        super().__init__()
        if not isinstance(size, int) or not pn.input_size_ok(size):
            raise PosekitError(f"posenet size must be 16 k + 1 pixels, got {size!r}; valid sizes include "
                               f"{', '.join(map(str, SUGGESTED_SIZES))} (257 is fastest of the usual, 385 the default)")
        check_margin(margin)
        self.size = size
        self.multi_person = bool(multi_person)
        self.max_people = int(max_people)
        self.score_threshold = float(score_threshold)
        self.nms_radius = float(nms_radius)
        self.min_score = float(min_score)
        self.margin = float(margin)
        self.network = load_network(self.name, input_shape=[1, size, size, 3], threads=threads, pixels=True)
        # "MobilenetV1/heatmap_2/BiasAdd:0" -> "heatmap", likewise offset, displacement_fwd, displacement_bwd
        self._heads = {tensor.split("/")[1].rsplit("_", 1)[0]: tensor for tensor in self.network.spec.outputs}

    def predict(self, image_rgb: np.ndarray, boxes: np.ndarray | None = None) -> list[Person]:
        if boxes is None:
            x, back = self._input(image_rgb, whole_image(image_rgb), 1.0)  # the whole image, letterboxed
            out = self._run(x)
            with self.stage("decode"):
                if self.multi_person:
                    poses = pn.decode_multi(out["heatmap"], out["offset"], out["displacement_fwd"],
                                            out["displacement_bwd"], max_people=self.max_people,
                                            score_threshold=self.score_threshold, nms_radius=self.nms_radius)
                    poses = [(pose, score) for pose, score in poses if score >= self.min_score]
                else:
                    pose = pn.decode_single(out["heatmap"], out["offset"])
                    poses = [(pose, float(pose[:, 2].mean()))]
                people = []
                for pose, score in poses:
                    keypoints = apply_affine(pose, back)
                    people.append(Person(keypoints, box_from_keypoints(keypoints, DEFAULTS.box_min_score), score))
                return people
        people = []
        for box in boxes:  # one crop per run: batched 385 px crops ran slower on CPU (BENCHMARKS.md)
            x, back = self._input(image_rgb, box, self.margin)
            out = self._run(x)
            with self.stage("decode"):
                keypoints = apply_affine(pn.decode_single(out["heatmap"], out["offset"]), back)
                people.append(Person(keypoints, box, float(keypoints[:, 2].mean())))
        return people

    def _input(self, image_rgb: np.ndarray, box: np.ndarray, margin: float) -> tuple[np.ndarray, Affine]:
        """Network input (uint8 pixels [1, size, size, 3]) for the square crop ``margin`` x the box's longer side
        around ``box``, and the affine input pixels -> image pixels."""
        with self.stage("preprocess"):
            crop, m = crop_box(image_rgb, box, (self.size, self.size), margin=margin)
            return crop[None], invert_affine(m)

    def _run(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Network outputs by head name (heatmap, offset, displacement_fwd/bwd), batch axis removed."""
        with self.stage("network"):
            out = self.network.run(x)
        return {name: out[tensor][0] for name, tensor in self._heads.items()}


@register("posenet", "PoseNet MobileNetV1: multi-person COCO-17 by greedy part decoding, 385x385 (option size: "
          "16 k + 1); single-person on boxes")
def posenet(**options) -> PoseNet:
    return PoseNet(**options)
