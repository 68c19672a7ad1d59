"""Draw people on an RGB image: limbs coloured by side (left warm, right cool, centre green), joints, boxes, ids."""

from __future__ import annotations

import cv2
import numpy as np

from posekit.defaults import DEFAULTS
from posekit.skeleton import Skeleton
from posekit.types import Person

# Hue families (RGB), light to dark; limbs of one side cycle through their family.
_LEFT = ((255, 170, 0), (255, 120, 0), (230, 70, 0), (200, 40, 40))
_RIGHT = ((0, 190, 255), (0, 130, 255), (40, 80, 230), (110, 60, 220))
_CENTRE = ((60, 220, 60), (30, 170, 90), (140, 220, 40))
_BOX = (255, 255, 255)


def _side(name: str) -> str:
    if "left" in name:
        return "left"
    return "right" if "right" in name else "centre"


def limb_colors(skeleton: Skeleton) -> list[tuple[int, int, int]]:
    """One RGB colour per skeleton edge: left-only limbs from the left family, right-only from the right, the
    rest (centre and left-right links) from the centre family. A skeleton's own ``colors`` win when given."""
    if skeleton.colors:
        return list(skeleton.colors)
    families = {"left": _LEFT, "right": _RIGHT, "centre": _CENTRE}
    used = {"left": 0, "right": 0, "centre": 0}
    out = []
    for a, b in skeleton.edges:
        sa, sb = _side(skeleton.keypoints[a]), _side(skeleton.keypoints[b])
        side = sa if sa == sb or sb == "centre" else (sb if sa == "centre" else "centre")
        out.append(families[side][used[side] % len(families[side])])
        used[side] += 1
    return out


def _joint_color(name: str) -> tuple[int, int, int]:
    return {"left": _LEFT[1], "right": _RIGHT[1], "centre": _CENTRE[0]}[_side(name)]


def draw(
    image_rgb: np.ndarray, people: list[Person], threshold: float = DEFAULTS.threshold, copy: bool = True,
    boxes: bool = True,
    min_joints: int = 2,
) -> np.ndarray:
    """Draw ``people`` on an RGB uint8 image (H, W, 3); returns the drawn image (the input itself if not ``copy``).

    Joints scoring below ``threshold`` and limbs touching them are not drawn; a person with fewer than
    ``min_joints`` joints above it is not drawn at all (no box either). Boxes (when ``boxes``) and track ids are
    drawn when present. Line width and joint size scale with the image size.
    """
    image = np.array(image_rgb, copy=True) if copy else image_rgb
    scale = max(image.shape[:2]) / 640
    thickness, radius = max(1, round(2 * scale)), max(2, round(3 * scale))
    for person in people:
        sk = person.skeleton
        kp = np.asarray(person.keypoints, dtype=np.float64)
        visible = kp[:, 2] >= threshold
        if visible.sum() < min(min_joints, len(kp)):
            continue
        pts = np.round(kp[:, :2]).astype(np.int64)
        for (a, b), color in zip(sk.edges, limb_colors(sk)):
            if visible[a] and visible[b]:
                cv2.line(image, tuple(map(int, pts[a])), tuple(map(int, pts[b])), color, thickness, cv2.LINE_AA)
        for i in np.flatnonzero(visible):
            cv2.circle(image, tuple(map(int, pts[i])), radius, _joint_color(sk.keypoints[i]), -1, cv2.LINE_AA)
        if person.box is None:
            continue
        x1, y1, x2, y2 = (int(round(float(v))) for v in person.box)
        if boxes:
            cv2.rectangle(image, (x1, y1), (x2, y2), _BOX, max(1, thickness // 2))
        if person.track_id is not None:
            cv2.putText(image, f"id {person.track_id}", (x1, max(y1 - 4, 10)), cv2.FONT_HERSHEY_SIMPLEX,
                        0.5 * max(scale, 0.6), _BOX, max(1, thickness // 2), cv2.LINE_AA)
    return image
