"""Top-down samples: one person box -> (augmented) network input, its keypoints and the head's targets.

A map-style dataset that torch's DataLoader can run in worker processes; it needs no torch.  Training items are
keyed ``(epoch, i)``: sample ``i`` of epoch ``e`` draws its augmentation from a generator seeded by (seed, e, i),
so a run is reproducible whatever the number of workers, and resuming mid-run replays the same samples.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from posekit.data.augment import AugmentConfig, lower_body_mask, topdown_sample
from posekit.data.coco import KeypointDataset
from posekit.data.targets import encode_targets
from posekit.defaults import DEFAULTS
from posekit.io import read_image


@dataclass(frozen=True)
class InputSpec:
    """How a crop becomes network input: size (H, W), box margin, and per-channel RGB mean / std (0..255 units):
    input = (rgb - mean) / std, laid out (3, H, W)."""

    size_hw: tuple[int, int]
    margin: float = DEFAULTS.crop_margin
    mean: tuple[float, float, float] = (123.675, 116.28, 103.53)
    std: tuple[float, float, float] = (58.395, 57.12, 57.375)

    def normalize(self, crops: np.ndarray) -> np.ndarray:
        """(..., H, W, 3) uint8 RGB -> (..., 3, H, W) float32 network input."""
        x = (crops.astype(np.float32) - np.float32(self.mean)) / np.float32(self.std)
        return np.ascontiguousarray(np.moveaxis(x, -1, -3))


class TopDownDataset:
    """Samples for training (``augment`` given) or evaluation (plain box crops) of one head.

    Each item is a dict of numpy arrays: ``image`` (3, H, W) float32, ``keypoints`` (K, 3) in input pixels,
    ``affine`` (2, 3) image -> input, ``index`` (), plus the head's targets (see `posekit.data.targets`).
    """

    def __init__(self, data: KeypointDataset, spec: InputSpec, head: dict, augment: AugmentConfig | None = None,
                 seed: int = 0, cache_images: bool = False) -> None:
        self.data, self.spec, self.head, self.augment, self.seed = data, spec, head, augment, seed
        self._cache: dict[int, np.ndarray] | None = {} if cache_images else None
        self._flip_perm = data.skeleton.flip_permutation()
        self._lower = lower_body_mask(data.skeleton.keypoints)

    def __len__(self) -> int:
        return len(self.data.instances)

    def image(self, image_id: int) -> np.ndarray:
        """(H, W, 3) uint8 RGB as stored (annotations refer to stored pixels: no EXIF rotation), cached if asked."""
        if self._cache is not None and image_id in self._cache:
            return self._cache[image_id]
        image = read_image(self.data.files[image_id], apply_exif=False)
        if self._cache is not None:
            self._cache[image_id] = image
        return image

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, np.ndarray]:
        """Item ``key`` = instance index i, or (epoch, i) for a training draw."""
        epoch, i = key if isinstance(key, tuple) else (0, key)
        inst = self.data.instances[i]
        image = self.image(inst.image_id)
        rng = np.random.default_rng([self.seed, epoch, i]) if self.augment else None
        crop, kps, m = topdown_sample(image, inst.box, inst.keypoints, self.spec.size_hw, self.spec.margin,
                                      self._flip_perm, self._lower, self.augment, rng)
        return {
            "image": self.spec.normalize(crop),
            "keypoints": kps.astype(np.float32),
            "affine": m.astype(np.float64),
            "index": np.int64(i),
            **encode_targets(self.head, kps, self.spec.size_hw),
        }
