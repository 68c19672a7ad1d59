"""Top-down training augmentation: random scale, rotation, horizontal flip (swapping left/right keypoints),
half-body boxes and colour jitter.  The geometric part is one affine map applied to the image and the keypoints.

Every random draw comes from the ``rng`` passed in, so a sample seeded by (seed, epoch, index) is reproducible.
Affine maps follow `posekit.transforms`: (2, 3), continuous pixel coordinates, image -> network input.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from posekit.transforms import Affine, apply_affine, compose_affine, crop_box

# A keypoint whose name contains one of these belongs to the lower body (for half-body boxes).
LOWER_BODY_WORDS = ("hip", "knee", "ankle", "heel", "foot", "toe", "leg", "pelvis")


@dataclass(frozen=True)
class AugmentConfig:
    """Strengths of the random augmentations (0 switches one off).

    scale: box size factor drawn from [1 - scale, 1 + scale]; rotation: degrees, drawn from [-rotation, rotation]
    with probability ``rotation_prob``; flip, half_body: probabilities; color: brightness/contrast/saturation
    factors drawn from [1 - color, 1 + color].
    """

    scale: float = 0.25
    rotation: float = 30.0
    rotation_prob: float = 0.6
    flip: float = 0.5
    half_body: float = 0.3
    color: float = 0.2


def lower_body_mask(names: tuple[str, ...] | list[str]) -> np.ndarray:
    """(K,) bool: keypoints of the lower body, recognised by name (hip, knee, ankle, foot ...)."""
    return np.array([any(w in n for w in LOWER_BODY_WORDS) for n in names], dtype=bool)


def half_body_box(keypoints: np.ndarray, lower: np.ndarray, rng: np.random.Generator,
                  min_points: int = 2) -> np.ndarray | None:
    """Box (x1, y1, x2, y2) around the labelled keypoints of the upper or the lower body (chosen at random,
    falling back to the other half when it has fewer than ``min_points``), grown by 1.5x about its centre
    (the crop margin is added later); None when neither half has enough labelled keypoints."""
    labelled = keypoints[:, 2] > 0
    halves = [labelled & ~lower, labelled & lower]
    if rng.random() < 0.5:
        halves.reverse()
    for sel in halves:
        if sel.sum() >= min_points:
            pts = keypoints[sel, :2]
            lo, hi = pts.min(0), pts.max(0)
            centre, half = (lo + hi) / 2, np.maximum((hi - lo) / 2, 1.0) * 1.5
            return np.concatenate([centre - half, centre + half])
    return None


def flip_affine(width: int) -> Affine:
    """Mirror of an image ``width`` pixels wide: x -> width - x."""
    return np.array([[-1.0, 0.0, float(width)], [0.0, 1.0, 0.0]])


def jitter_colors(image: np.ndarray, strength: float, rng: np.random.Generator) -> np.ndarray:
    """Random brightness, contrast and saturation (factors in [1 - strength, 1 + strength]) of an RGB uint8 image."""
    img = image.astype(np.float32)
    b, c, s = rng.uniform(1 - strength, 1 + strength, 3)
    img *= b
    img = (img - img.mean()) * c + img.mean()
    gray = img @ np.array([0.299, 0.587, 0.114], np.float32)
    img = (img - gray[..., None]) * s + gray[..., None]
    return np.clip(img, 0, 255).astype(np.uint8)


def topdown_sample(
    image: np.ndarray,
    box_xyxy: np.ndarray,
    keypoints: np.ndarray,
    size_hw: tuple[int, int],
    margin: float,
    flip_perm: np.ndarray,
    lower: np.ndarray,
    cfg: AugmentConfig | None,
    rng: np.random.Generator | None,
) -> tuple[np.ndarray, np.ndarray, Affine]:
    """Crop one person for the network, augmented when ``cfg`` is given (else the plain box crop).

    image (H, W, 3) uint8 RGB; box_xyxy (4,) and keypoints (K, 3) x, y, v in image pixels; flip_perm (K,) the
    skeleton's `flip_permutation`; lower (K,) from `lower_body_mask`.  Returns the (H, W, 3) crop, the keypoints
    (K, 3) in crop pixels (v kept; set to 0 for labelled keypoints that fall outside the crop) and M image -> crop.
    """
    box = np.asarray(box_xyxy, dtype=np.float64)
    rotation, flip, scale = 0.0, False, 1.0
    if cfg is not None:
        if rng is None:
            raise ValueError("augmentation needs an rng")
        if cfg.half_body > 0 and rng.random() < cfg.half_body:
            half = half_body_box(keypoints, lower, rng)
            box = box if half is None else half
        scale = rng.uniform(1 - cfg.scale, 1 + cfg.scale)
        if cfg.rotation > 0 and rng.random() < cfg.rotation_prob:
            rotation = np.deg2rad(rng.uniform(-cfg.rotation, cfg.rotation))
        flip = cfg.flip > 0 and rng.random() < cfg.flip
    crop, m = crop_box(image, box, size_hw, margin=margin * scale, rotation=rotation)
    kps = apply_affine(np.asarray(keypoints, dtype=np.float32), m)
    if flip:
        crop = np.ascontiguousarray(crop[:, ::-1])
        m = compose_affine(flip_affine(size_hw[1]), m)
        kps = apply_affine(kps, flip_affine(size_hw[1]))[flip_perm]
    inside = (kps[:, 0] >= 0) & (kps[:, 0] < size_hw[1]) & (kps[:, 1] >= 0) & (kps[:, 1] < size_hw[0])
    kps[~inside, 2] = 0
    if cfg is not None and cfg.color > 0:
        crop = jitter_colors(crop, cfg.color, rng)
    return crop, kps, m
