"""Shared real-image check: run an estimator on the ground-truth boxes of ../shared's COCO images and measure
OKS and left/right agreement against the annotations."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from posekit.eval.metrics import oks
from posekit.io import read_image
from posekit.skeleton import COCO17
from posekit.types import Person

L_SHOULDER, R_SHOULDER = COCO17.index("left_shoulder"), COCO17.index("right_shoulder")


def gt_box_results(
    estimator: Callable[..., list[Person]],
    coco_mini: Path,
    to_coco: Callable[[Person], np.ndarray] = Person.to_coco,
    joints: np.ndarray | None = None,
    max_images: int | None = None,
    check: Callable[[Person, dict, np.ndarray], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(OKS per person, shoulder left/right agreement per frontal person) for people with >= 10 labelled joints.

    to_coco: person -> (17, 3) COCO-17 keypoints; joints: COCO indices to score (all by default);
    check(person, annotation, box): extra per-person assertions.
    """
    data = json.loads((coco_mini / "annotations" / "person_keypoints_train2017.json").read_text())
    files = {i["id"]: i["file_name"] for i in data["images"]}
    by_image: dict[int, list[dict]] = {}
    for a in data["annotations"]:
        if not a["iscrowd"] and a["num_keypoints"] >= 10:
            by_image.setdefault(a["image_id"], []).append(a)
    idx = np.arange(17) if joints is None else np.asarray(joints)
    sigmas = np.array(COCO17.sigmas)[idx]
    scores, sides_agree = [], []
    for image_id, anns in list(by_image.items())[:max_images]:
        image = read_image(coco_mini / "train2017" / files[image_id], apply_exif=False)
        boxes = np.array([[x, y, x + w, y + h] for x, y, w, h in (a["bbox"] for a in anns)], np.float32)
        people = estimator(image, boxes)
        assert len(people) == len(anns)
        for person, ann, box in zip(people, anns, boxes):
            np.testing.assert_array_equal(person.box, box)
            if check is not None:
                check(person, ann, box)
            gt = np.array(ann["keypoints"], np.float32).reshape(17, 3)
            found = to_coco(person)
            scores.append(oks(found[idx], gt[idx], ann["area"], sigmas))
            gt_dx = gt[L_SHOULDER, 0] - gt[R_SHOULDER, 0]
            if gt[L_SHOULDER, 2] and gt[R_SHOULDER, 2] and abs(gt_dx) > 0.1 * ann["bbox"][2]:  # not side-on
                sides_agree.append(np.sign(found[L_SHOULDER, 0] - found[R_SHOULDER, 0]) == np.sign(gt_dx))
    return np.array(scores), np.array(sides_agree)
