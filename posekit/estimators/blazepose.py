"""BlazePose GHUM (lite / full / heavy): MediaPipe's two-stage pipeline, 33 keypoints with 3-D world coordinates.

Stage 1, the BlazePose detector (224 x 224, SSD anchors, weighted NMS), finds people and, per person, the hip
centre and a full-body scale point; they give a rotated square region of interest (ROI).  Stage 2 crops that ROI
upright to 256 x 256 and runs the landmark model.  The maths lives in `posekit.decode.blazepose`; this module
wires it to the networks.

Timings: ``preprocess`` / ``network`` / ``decode`` add up both stages (the detector's letterbox or box crop, its
network, its decoding + NMS + ROIs; then the landmark crops, network and decoding).

Video (`BlazePose.track`, used by `posekit.pipeline.track_video`): as MediaPipe, each person's next ROI comes from
their last landmarks and only the landmark model runs; the detector looks again when someone is lost.

Flip test (``flip=True``, `BlazePose.flipped`): each ROI crop is also run mirrored and the two answers fused
(`posekit.estimators.flip.fuse_people`); mirroring the whole image instead would re-run the detector, whose ROI then
differs (that lowered AP on COCO).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import numpy as np

from posekit.decode import blazepose as bp
from posekit.decode.detection import iou
from posekit.errors import PosekitError
from posekit.estimators.base import Estimator
from posekit.estimators.flip import fuse_people
from posekit.estimators.registry import register
from posekit.io import as_rgb
from posekit.network import load_network, stack_batch
from posekit.results import Result
from posekit.skeleton import BLAZEPOSE33
from posekit.transforms import Affine, compose_affine, crop_box, invert_affine
from posekit.types import Person, box_from_keypoints

#: Keypoints with visibility above this span Person.box when no person box was given.
BOX_MIN_SCORE = 0.5
#: With person boxes, the detector looks at a square crop of this many times the box's longer side.
DETECTOR_CROP_MARGIN = 1.5
#: ROI side, as a multiple of the box's longer side, when the detector finds nobody in a box's crop (the
#: detector's own ROIs are 1.25 x the body's extent, and a COCO box spans the body).
BOX_ROI_MARGIN = 1.25
LANDMARK_MODELS = ("blazepose-lite", "blazepose-full", "blazepose-heavy")


def box_roi(box: np.ndarray, margin: float = BOX_ROI_MARGIN) -> bp.Roi:
    """Upright square ROI centred on ``box`` (x1, y1, x2, y2 pixels), side ``margin`` x its longer side."""
    x1, y1, x2, y2 = (float(v) for v in np.asarray(box).reshape(4))
    return bp.Roi(np.array([(x1 + x2) / 2, (y1 + y2) / 2], np.float32), margin * max(x2 - x1, y2 - y1), 0.0)


def roi_for_box(rois: list[bp.Roi], box: np.ndarray) -> bp.Roi:
    """The ROI of the person in ``box`` (x1, y1, x2, y2 pixels) among detector ROIs (same pixels): of those
    centred inside the box, the one whose square overlaps the box's upright ROI most; that upright ROI
    (`box_roi`) when none is centred inside."""
    x1, y1, x2, y2 = (float(v) for v in np.asarray(box).reshape(4))
    fallback = box_roi(box)
    inside = [r for r in rois if x1 <= r.center[0] <= x2 and y1 <= r.center[1] <= y2]
    if not inside:
        return fallback
    overlap = iou(np.stack([r.box for r in inside]), fallback.box)[:, 0]
    return inside[int(np.argmax(overlap))]


def person_score(lm: bp.BlazePoseLandmarks) -> float:
    """Person.score: mean visibility of the 17 COCO-mapped keypoints x the pose flag (the landmark model's
    probability that the crop holds a pose), so a doubtful crop ranks low even when its points look sure."""
    return float(BLAZEPOSE33.map_to_coco(lm.keypoints)[:, 2].mean() * lm.pose_score)


def to_person(lm: bp.BlazePoseLandmarks, box: np.ndarray | None = None) -> Person:
    """Person from landmarks in image pixels; box None: the box spans the points with visibility above
    `BOX_MIN_SCORE`.  extras: ``presence`` (33,) probability each point is inside the crop, ``pose_score``,
    ``roi_points`` (2, 2) image pixels: hip centre and scale point, the next frame's ROI (`BlazePose.track`)."""
    if box is None:
        box = box_from_keypoints(lm.keypoints, BOX_MIN_SCORE)
    return Person(lm.keypoints, box, person_score(lm), BLAZEPOSE33, keypoints_3d=lm.world,
                  extras={"presence": lm.presence, "pose_score": lm.pose_score, "roi_points": lm.aux})


class BlazePose(Estimator):
    """BlazePose with landmark model ``model`` ("blazepose-lite", "-full" or "-heavy").

    Without boxes: the detector runs on the whole (letterboxed) image; each of its best ``max_people``
    detections scoring at least ``detector_threshold`` gives an ROI, and each ROI whose pose flag is at least
    ``pose_threshold`` gives a Person (MediaPipe's defaults: 0.5 and 0.5), in detector order.
    With boxes ((N, 4) x1, y1, x2, y2 image pixels): exactly one Person per box, in order, with the given box:
    the detector runs on a square crop ``crop_margin`` x the box's longer side and the ROI centred in the box
    is kept (`roi_for_box`; an upright ROI from the box when the detector finds nobody there).
    Keypoints: (33, 3) image pixels + visibility; keypoints_3d: (33, 3) metres, hip-centred, image axes.
    Person.score: see `person_score`.  refine: heatmap refinement of the landmarks (as MediaPipe; off skips the
    heatmap head).  flip: flip test on each ROI crop (twice the landmark time).  The landmark network runs without
    its segmentation head.  threads: ONNX Runtime threads.
    """

    multi_person = True
    can_track = True
    top_down = True
    skeleton = BLAZEPOSE33

    def __init__(self, model: str = "blazepose-full", max_people: int = 5, detector_threshold: float = 0.5,
                 pose_threshold: float = 0.5, crop_margin: float = DETECTOR_CROP_MARGIN, refine: bool = True,
                 flip: bool = False, threads: int | None = None) -> None:
        super().__init__()
        if model not in LANDMARK_MODELS:
            raise PosekitError(f"BlazePose landmark model must be one of {', '.join(LANDMARK_MODELS)}, got {model!r}")
        if not (isinstance(max_people, int) and max_people >= 1):
            raise PosekitError(f"max_people must be a positive whole number (e.g. 5), got {max_people!r}")
        for option, value in (("detector_threshold", detector_threshold), ("pose_threshold", pose_threshold)):
            if not 0 <= value <= 1:
                raise PosekitError(f"{option} is a probability: give a value in [0, 1] (e.g. 0.5), got {value!r}")
        if not crop_margin >= 1:
            raise PosekitError(f"crop_margin must be at least 1 (the box's longer side; e.g. 1.5), got {crop_margin!r}")
        self.name = model
        self.max_people = max_people
        self.detector_threshold = float(detector_threshold)
        self.pose_threshold = float(pose_threshold)
        self.crop_margin = float(crop_margin)
        self.refine = bool(refine)
        self.flip = bool(flip)
        self.anchors = bp.generate_anchors()
        self.detector = load_network("blazepose-detector", threads=threads, pixels=True)
        # cut off the unused segmentation decoder (and the heatmap when not refining): less work per crop
        heads = ["ld_3d", "world_3d", "poseflag"] + (["heatmap"] if self.refine else [])
        self.landmarker = load_network(model, heads=[bp.LANDMARK_OUTPUTS[h] for h in heads], threads=threads,
                                       pixels=True)

    def predict(self, image_rgb: np.ndarray, boxes: np.ndarray | None = None) -> list[Person]:
        if boxes is None:
            (rois,) = self._rois([(image_rgb, None)])
            people = []
            for landmarks in self._landmarks(image_rgb, rois[: self.max_people]):
                if sum(lm.pose_score for lm in landmarks) / len(landmarks) >= self.pose_threshold:
                    people.append(self._person(landmarks))
            return people
        if not len(boxes):
            return []
        with self.stage("preprocess"):
            size = bp.DETECTOR_INPUT_SIZE
            crops = [crop_box(image_rgb, box, (size, size), margin=self.crop_margin) for box in boxes]
        rois_per_box = self._rois([(crop, invert_affine(m)) for crop, m in crops])
        with self.stage("decode"):
            rois = [roi_for_box(found, box) for found, box in zip(rois_per_box, boxes)]
        return [self._person(landmarks, box) for landmarks, box in zip(self._landmarks(image_rgb, rois), boxes)]

    def track(self, image: Any, people: Sequence[Person]) -> Result:
        """``people`` of the previous video frame found again in ``image`` as MediaPipe tracks them: the landmark
        model runs on the ROI each one's landmarks give (``extras["roi_points"]``: hip centre and scale point; the
        upright `box_roi` of its box for a person without them), the detector not at all.  One Person per given
        person, in order, its box spanning its keypoints; a lost person scores low (Person.score includes the pose
        flag), so the caller re-runs the detector (`posekit.pipeline.track_video` does)."""
        image_rgb = as_rgb(image)
        return self._timed(self._track, image_rgb, image_rgb, people)

    def _track(self, image_rgb: np.ndarray, people: Sequence[Person]) -> list[Person]:
        with self.stage("preprocess"):
            rois = [bp.alignment_roi(*p.extras["roi_points"]) if "roi_points" in p.extras else box_roi(p.box)
                    for p in people]
        return [self._person(landmarks) for landmarks in self._landmarks(image_rgb, rois)]

    def flipped(self) -> BlazePose:
        """This estimator (sharing its networks) with the flip test on each ROI crop."""
        twin = copy.copy(self)
        twin.flip = True
        return twin

    def _rois(self, images: list[tuple[np.ndarray, Affine | None]]) -> list[list[bp.Roi]]:
        """Detector ROIs, best first, on each image (one batched run), in its pixels, or mapped by its affine when
        given (from the image's pixels, e.g. of a crop, to the original image's)."""
        with self.stage("preprocess"):
            inputs = [bp.preprocess_detector(image) for image, _ in images]
            backs = [back if to_image is None else compose_affine(to_image, back)
                     for (_, back), (_, to_image) in zip(inputs, images)]
        with self.stage("network"):
            raw = self.detector.run(stack_batch([x for x, _ in inputs]))[bp.DETECTOR_OUTPUT]
        with self.stage("decode"):
            return [[bp.detection_to_roi(d) for d in bp.decode_detections(out, self.anchors, self.detector_threshold,
                                                                         back=back)]
                    for out, back in zip(raw, backs)]

    def _landmarks(self, image_rgb: np.ndarray, rois: list[bp.Roi]) -> list[list[bp.BlazePoseLandmarks]]:
        """Per ROI (image pixels), the landmarks of its person in image pixels: from the crop, and with the flip
        test also from the mirrored crop (un-mirrored); all crops in one batched run."""
        if not rois:
            return []
        with self.stage("preprocess"):
            inputs = [bp.preprocess_landmarks(image_rgb, roi) for roi in rois]
            crops = [x for x, _ in inputs] + ([x[:, :, ::-1] for x, _ in inputs] if self.flip else [])
            batch = stack_batch(crops)
        with self.stage("network"):
            out = self.landmarker.run(batch)
        with self.stage("decode"):
            results = []
            for i, (_, back) in enumerate(inputs):
                found = []
                for mirrored in (False, True) if self.flip else (False,):  # mirrors follow the crops in the batch
                    lm = bp.decode_landmark_outputs({k: v[i + mirrored * len(rois)] for k, v in out.items()},
                                                    self.refine)
                    found.append(bp.landmarks_to_image(bp.mirror_landmarks(lm) if mirrored else lm, back))
                results.append(found)
            return results

    def _person(self, landmarks: list[bp.BlazePoseLandmarks], box: np.ndarray | None = None) -> Person:
        """`to_person` of one set of landmarks, or the fusion of a flip test's two."""
        people = [to_person(lm, box) for lm in landmarks]
        return people[0] if len(people) == 1 else fuse_people(*people)


def _factory(model: str):
    def make(**options) -> BlazePose:
        return BlazePose(model, **options)

    return make


_VARIANTS = {
    "blazepose": ("blazepose-full", "BlazePose GHUM Full (alias of blazepose-full): detector + 33 landmarks with "
                  "3-D world coordinates, up to 5 people"),
    "blazepose-lite": ("blazepose-lite", "BlazePose GHUM Lite: fastest BlazePose, 33 keypoints + 3-D, detector + "
                       "landmarks (whole image, or one person per box)"),
    "blazepose-full": ("blazepose-full", "BlazePose GHUM Full: 33 keypoints + 3-D, detector + landmarks "
                       "(whole image, or one person per box)"),
    "blazepose-heavy": ("blazepose-heavy", "BlazePose GHUM Heavy: most accurate BlazePose, 33 keypoints + 3-D, "
                        "detector + landmarks (whole image, or one person per box)"),
}
for _name, (_model, _description) in _VARIANTS.items():
    register(_name, _description, networks=("blazepose-detector", _model))(_factory(_model))
