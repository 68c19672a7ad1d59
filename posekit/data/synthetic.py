"""A tiny synthetic keypoint dataset: articulated stick figures with exact keypoints over random backgrounds.

Each figure has a head, neck, hip, two hands and two feet (`STICK7`); left limbs and right limbs have
fixed, different colours so that left and right can be told apart.  `write_dataset` writes a COCO-format
keypoint dataset (PNG images + one annotation json) that the ordinary COCO loader reads.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np

from posekit.io import write_atomic
from posekit.skeleton import Skeleton

STICK7_NAMES = ("head", "neck", "hip", "left_hand", "right_hand", "left_foot", "right_foot")

STICK7 = Skeleton(
    name="stick7",
    keypoints=STICK7_NAMES,
    edges=((0, 1), (1, 2), (1, 3), (1, 4), (2, 5), (2, 6)),
    flip_pairs=((3, 4), (5, 6)),
    sigmas=(0.05, 0.079, 0.107, 0.062, 0.062, 0.089, 0.089),
)

# RGB colour per edge of STICK7 (torso white-ish, left limbs warm, right limbs cold).
_EDGE_COLORS = ((230, 230, 230), (230, 230, 230), (240, 40, 40), (40, 90, 250), (250, 200, 20), (30, 220, 90))
_HEAD_COLOR = (250, 170, 200)


def figure_keypoints(rng: np.random.Generator, center: np.ndarray, height: float) -> np.ndarray:
    """Random pose of a stick figure: (7, 2) float x, y in pixels.

    ``height`` is roughly the head-to-feet extent in pixels; the whole figure is rotated by up to 35 degrees.
    """
    torso = 0.38 * height
    arm, leg = torso * rng.uniform(0.8, 1.1), torso * rng.uniform(1.0, 1.3)
    # body frame: y down, figure upright, facing the camera (its left limbs on the image right)
    neck = np.array([0.0, -0.35 * torso])
    hip = neck + [0.0, torso]
    head = neck + [0.0, -0.3 * torso]
    # angles measured from straight down, positive towards the image right
    left_arm, right_arm = rng.uniform(20, 160), -rng.uniform(20, 160)
    left_leg, right_leg = rng.uniform(5, 60), -rng.uniform(5, 60)

    def limb(origin: np.ndarray, length: float, degrees: float) -> np.ndarray:
        a = np.deg2rad(degrees)
        return origin + length * np.array([np.sin(a), np.cos(a)])

    pts = np.stack([
        head, neck, hip,
        limb(neck, arm, left_arm), limb(neck, arm, right_arm),
        limb(hip, leg, left_leg), limb(hip, leg, right_leg),
    ])
    t = np.deg2rad(rng.uniform(-35, 35))
    rot = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    return pts @ rot.T + center


def random_background(rng: np.random.Generator, size: int) -> np.ndarray:
    """(size, size, 3) uint8 RGB: a colour gradient, a few random blobs and noise."""
    c0, c1 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    t = np.linspace(0.0, 1.0, size, dtype=np.float32)[:, None, None]
    img = (c0 * (1 - t) + c1 * t) * np.ones((1, size, 1), np.float32)
    for _ in range(rng.integers(2, 6)):
        x, y = (int(v) for v in rng.integers(0, size, 2))
        r = int(rng.integers(size // 16, size // 4))
        color = tuple(float(v) for v in rng.uniform(0, 255, 3))
        if rng.random() < 0.5:
            cv2.circle(img, (x, y), r, color, -1, cv2.LINE_AA)
        else:
            cv2.rectangle(img, (x - r, y - r), (x + r, y + r // 2), color, -1)
    img += rng.normal(0.0, 6.0, img.shape).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


def draw_figure(img: np.ndarray, pts: np.ndarray, thickness: int) -> None:
    """Draw the stick figure ``pts`` (7, 2) on ``img`` (RGB uint8) in place."""
    shift = 4  # sub-pixel drawing: coordinates in 1/16 pixels

    def p(i: int) -> tuple[int, int]:
        return int(round(pts[i, 0] * (1 << shift))), int(round(pts[i, 1] * (1 << shift)))

    for (a, b), color in zip(STICK7.edges, _EDGE_COLORS):
        cv2.line(img, p(a), p(b), color, thickness, cv2.LINE_AA, shift)
    radius = int(round(0.09 * np.linalg.norm(pts[0] - pts[2]) * (1 << shift)))
    cv2.circle(img, p(0), radius, _HEAD_COLOR, -1, cv2.LINE_AA, shift)


def render_sample(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    """One image with one figure: (size, size, 3) uint8 RGB and (7, 3) keypoints (x, y, v) with COCO visibility
    (2 = visible, 0 = outside the image, coordinates then 0)."""
    img = random_background(rng, size)
    height = rng.uniform(0.55, 0.9) * size
    center = rng.uniform(0.3 * size, 0.7 * size, 2)
    pts = figure_keypoints(rng, center, height)
    draw_figure(img, pts, thickness=int(rng.integers(3, 5)))
    inside = np.all((pts >= 0) & (pts <= size - 1), axis=1)
    kps = np.zeros((len(pts), 3), np.float32)
    kps[inside, :2] = pts[inside]
    kps[inside, 2] = 2
    return img, kps


def category(skeleton: Skeleton = STICK7) -> dict:
    """COCO 'person' category describing ``skeleton``, including posekit's 'flip_pairs' (names) and 'sigmas'."""
    names = list(skeleton.keypoints)
    cat: dict = {
        "id": 1, "name": "person", "supercategory": "person", "keypoints": names,
        "skeleton": [[a + 1, b + 1] for a, b in skeleton.edges],
        "flip_pairs": [[names[a], names[b]] for a, b in skeleton.flip_pairs],
    }
    if skeleton.sigmas is not None:
        cat["sigmas"] = list(skeleton.sigmas)
    return cat


def write_dataset(folder: str | os.PathLike, count: int, seed: int = 0, image_size: int = 96) -> Path:
    """Write ``count`` synthetic images to ``folder``/images and their COCO annotations to
    ``folder``/annotations.json; returns the annotation path.  The same seed gives the same files."""
    folder = Path(folder)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    images, annotations = [], []
    for i in range(count):
        img, kps = render_sample(rng, image_size)
        name = f"{i:06d}.png"
        cv2.imwrite(str(folder / "images" / name), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        vis = kps[kps[:, 2] > 0, :2]
        x1, y1 = np.maximum(vis.min(0) - 4, 0)
        x2, y2 = np.minimum(vis.max(0) + 4, image_size - 1)
        images.append({"id": i + 1, "file_name": name, "width": image_size, "height": image_size})
        annotations.append({
            "id": i + 1, "image_id": i + 1, "category_id": 1, "iscrowd": 0,
            "bbox": [round(float(v), 2) for v in (x1, y1, x2 - x1, y2 - y1)],
            "area": round(float((x2 - x1) * (y2 - y1)), 2),
            "num_keypoints": int((kps[:, 2] > 0).sum()),
            "keypoints": [round(float(v), 3) for v in kps.reshape(-1)],
        })
    doc = {"images": images, "annotations": annotations, "categories": [category()]}
    return write_atomic(folder / "annotations.json", json.dumps(doc))
