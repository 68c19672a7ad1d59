"""MoveNet estimators: SinglePose Lightning / Thunder (whole image, or one square crop per person box) and
MultiPose Lightning (whole image, up to 6 people).

Single-pose models run the network cut at its four raw heads and decode them with
`posekit.decode.movenet.decode_single_heads` (``decode="heads"``, the default) or take the graph's own
``Identity:0`` (``decode="graph"``); both give the same keypoints to ~1e-6 of the input size.
"""

from __future__ import annotations

import math

import numpy as np

from posekit.decode import movenet as mn
from posekit.decode.detection import iou
from posekit.defaults import DEFAULTS
from posekit.errors import PosekitError
from posekit.estimators.base import Estimator, check_margin
from posekit.estimators.registry import register
from posekit.network import load_network, stack_batch
from posekit.skeleton import COCO17
from posekit.transforms import Affine, apply_affine, crop_box, invert_affine, whole_image
from posekit.types import Person, box_from_keypoints

#: Raw heads the single-pose network is cut at (names from the zoo registry).
SINGLE_HEADS = ("heatmap", "center", "regress", "offset")
#: Keypoints scoring above this span Person.box when no person box was given.
#: MultiPose input sides must be multiples of this.
MULTIPOSE_STRIDE = 32
#: MultiPose output: 17 x (y, x, score), then (ymin, xmin, ymax, xmax, score) per instance.
MULTIPOSE_KEYPOINT_VALUES = 17 * 3


class MoveNetSingle(Estimator):
    """MoveNet SinglePose (``model`` = "movenet-lightning" 192 px or "movenet-thunder" 256 px).

    Without boxes: the whole image, letterboxed, gives one Person; its box spans the keypoints scoring above
    ``DEFAULTS.box_min_score`` (all keypoints if none do).  With boxes ((N, 4) x1, y1, x2, y2 image pixels): each box is
    cropped square, ``margin`` x its longer side around its centre, and gives one Person, in order, whose box is
    the given box.  Person.score = mean keypoint score.  decode: "heads" (posekit decodes the raw heads) or
    "graph" (the graph's own post-processing).  threads: ONNX Runtime threads.
    """

    multi_person = False
    top_down = True
    skeleton = COCO17

    def __init__(self, model: str = "movenet-thunder", decode: str = "heads", margin: float = DEFAULTS.crop_margin,
                 threads: int | None = None) -> None:
        super().__init__()
        if decode not in ("heads", "graph"):
            raise PosekitError(f"decode must be 'heads' or 'graph', got {decode!r}")
        check_margin(margin)
        self.name = model
        self.decode = decode
        self.margin = float(margin)
        # raw heads: one batched run for all person crops; the graph's own decoder takes one image at a time
        heads = decode == "heads"
        self.network = load_network(model, heads=list(SINGLE_HEADS) if heads else None, threads=threads,
                                    pixels=True, batch=heads)
        self.size = int(self.network.inputs[0].shape[1])

    def predict(self, image_rgb: np.ndarray, boxes: np.ndarray | None = None) -> list[Person]:
        if boxes is None:
            (keypoints,) = self._keypoints(image_rgb, [None])
            box = box_from_keypoints(keypoints, DEFAULTS.box_min_score)
            return [Person(keypoints, box, float(keypoints[:, 2].mean()))]
        return [Person(keypoints, box, float(keypoints[:, 2].mean()))
                for keypoints, box in zip(self._keypoints(image_rgb, list(boxes)), boxes)]

    def _keypoints(self, image_rgb: np.ndarray, boxes: list[np.ndarray | None]) -> list[np.ndarray]:
        """(17, 3) x, y image pixels, score per box: the crop around it, or the whole image for None."""
        with self.stage("preprocess"):
            crops = [mn.preprocess(image_rgb, self.size, box_xyxy=box, margin=self.margin) for box in boxes]
            x = stack_batch([c[0] for c in crops])
        with self.stage("network"):
            if self.decode == "heads":
                out = self.network.run(x)
                outputs = [{k: out[self.network.spec.heads[k]][i] for k in SINGLE_HEADS} for i in range(len(x))]
            else:
                outputs = [self.network.run(x[i:i + 1])["Identity:0"][0, 0] for i in range(len(x))]
        with self.stage("decode"):
            poses = [mn.decode_single_heads(**o) for o in outputs] if self.decode == "heads" else outputs
            return [mn.to_image(pose, back, self.size) for pose, (_, back) in zip(poses, crops)]


def multipose_input_size(height: int, width: int, size: int) -> tuple[int, int]:
    """MultiPose input (h, w) for an image: the longer side ``size``, the shorter one scaled alike and rounded up
    to a multiple of `MULTIPOSE_STRIDE` (so letterboxing pads it only a little)."""
    short = size * min(height, width) / max(height, width)
    side = max(MULTIPOSE_STRIDE, math.ceil(short / MULTIPOSE_STRIDE - 1e-9) * MULTIPOSE_STRIDE)
    return (size, side) if height >= width else (side, size)


def decode_multipose(output: np.ndarray, back: Affine, input_hw: tuple[int, int]
                     ) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """MultiPose ``Identity:0`` without its batch axis, (N, 56) -> per instance (keypoints (17, 3) x, y image
    pixels, score; box (4,) x1, y1, x2, y2 image pixels; instance score), in the graph's order.

    back: affine input pixels -> image pixels; input_hw: the input's (h, w).
    """
    ih, iw = input_hw
    out = []
    for row in np.asarray(output, dtype=np.float32):
        keypoints = mn.to_image(row[:MULTIPOSE_KEYPOINT_VALUES].reshape(17, 3), back, input_hw)
        ymin, xmin, ymax, xmax, score = row[MULTIPOSE_KEYPOINT_VALUES:]
        corners = apply_affine(np.array([[xmin * iw, ymin * ih], [xmax * iw, ymax * ih]]), back)
        out.append((keypoints, corners.reshape(4).astype(np.float32), float(score)))
    return out


class MoveNetMulti(Estimator):
    """MoveNet MultiPose Lightning: up to 6 people on the whole image.

    The image is letterboxed to ``size`` (a multiple of 32) on its longer side and the shorter side's multiple of
    32 (256 is Google's default; 384 scores better on COCO, at about twice the time).  People whose instance score
    is at least ``threshold`` are returned, best first, at most ``max_people``; Person.box is the model's box.
    With boxes, each box is cropped square (``margin`` x its longer side, ``size`` pixels) and the instance
    overlapping the box most (by IoU) is that box's Person, whose box is the given box.
    """

    multi_person = True
    top_down = False
    skeleton = COCO17
    name = "movenet-multipose"

    def __init__(self, size: int = 256, threshold: float = 0.2, max_people: int = 6,
                 margin: float = DEFAULTS.crop_margin,
                 threads: int | None = None) -> None:
        super().__init__()
        if not isinstance(size, int) or size < MULTIPOSE_STRIDE or size % MULTIPOSE_STRIDE:
            raise PosekitError(f"movenet-multipose size must be a multiple of {MULTIPOSE_STRIDE} (e.g. 192, 256, 384, "
                               f"512), got {size!r}")
        check_margin(margin)
        self.size = size
        self.threshold = float(threshold)
        self.max_people = int(max_people)
        self.margin = float(margin)
        self.network = load_network(self.name, input_shape=[1, None, None, 3], threads=threads, pixels=True)

    def predict(self, image_rgb: np.ndarray, boxes: np.ndarray | None = None) -> list[Person]:
        if boxes is None:
            with self.stage("preprocess"):
                input_hw = multipose_input_size(*image_rgb.shape[:2], self.size)
                resized, m = crop_box(image_rgb, whole_image(image_rgb), input_hw, margin=1.0)  # = letterbox
            instances = self._run(resized, invert_affine(m), input_hw)
            with self.stage("decode"):
                kept = sorted((i for i in instances if i[2] >= self.threshold), key=lambda i: -i[2])
                return [Person(k, b, s) for k, b, s in kept[: self.max_people]]
        people = []
        for box in boxes:
            with self.stage("preprocess"):
                crop, m = crop_box(image_rgb, box, (self.size, self.size), margin=self.margin)
            instances = self._run(crop, invert_affine(m), (self.size, self.size))
            with self.stage("decode"):
                overlap = iou(np.stack([b for _, b, _ in instances]), box)[:, 0]
                best = np.lexsort(([s for _, _, s in instances], overlap))[-1]  # most overlap, then best score
                keypoints, _, score = instances[best]
                people.append(Person(keypoints, box, score))
        return people

    def _run(self, resized: np.ndarray, back: Affine, input_hw: tuple[int, int]
             ) -> list[tuple[np.ndarray, np.ndarray, float]]:
        with self.stage("network"):
            out = self.network.run(resized[None])["Identity:0"][0]
        with self.stage("decode"):
            return decode_multipose(out, back, input_hw)


@register("movenet-lightning", "MoveNet SinglePose Lightning: fastest single-person COCO-17, 192x192 "
          "(whole image, or one crop per box)")
def movenet_lightning(**options) -> MoveNetSingle:
    return MoveNetSingle("movenet-lightning", **options)


@register("movenet-thunder", "MoveNet SinglePose Thunder: accurate single-person COCO-17, 256x256 "
          "(whole image, or one crop per box)")
def movenet_thunder(**options) -> MoveNetSingle:
    return MoveNetSingle("movenet-thunder", **options)


@register("movenet-multipose", "MoveNet MultiPose Lightning: up to 6 people, COCO-17, whole image "
          "(longer side `size`, default 256)")
def movenet_multipose(**options) -> MoveNetMulti:
    return MoveNetMulti(**options)
