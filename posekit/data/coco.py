"""COCO-format keypoint datasets with any skeleton, checked up front.

The keypoint schema comes from the file's keypoint category: ``keypoints`` (names), ``skeleton`` (1-based edges),
and posekit's optional ``flip_pairs`` (pairs of names; by default every left_X/right_X pair) and ``sigmas``
(OKS constants; by default those of a built-in skeleton with the same names).  A `Skeleton` passed in instead must
have the file's keypoint names.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from posekit.errors import PosekitError
from posekit.skeleton import SKELETONS, Skeleton, lr_pairs


@dataclass(frozen=True)
class Instance:
    """One annotated person: box (4,) x1, y1, x2, y2 and keypoints (K, 3) x, y, v in image pixels."""

    ann_id: int
    image_id: int
    box: np.ndarray
    keypoints: np.ndarray
    area: float


@dataclass
class KeypointDataset:
    """Persons of a COCO keypoint file: ``files`` maps image id -> image path."""

    annotations: Path
    skeleton: Skeleton
    category_id: int
    files: dict[int, Path]
    instances: list[Instance]

    def __len__(self) -> int:
        return len(self.instances)


def _keypoint_category(doc: dict, path: Path) -> dict:
    cats = [c for c in doc.get("categories", []) if c.get("keypoints")]
    if len(cats) != 1:
        raise PosekitError(f"{path}: expected exactly one category with 'keypoints', found {len(cats)}; "
                           "a keypoint dataset needs one person category listing its keypoint names")
    return cats[0]


def skeleton_from_category(cat: dict, path: Path | str = "dataset") -> Skeleton:
    """The `Skeleton` a COCO keypoint category describes (see the module docstring for the defaults)."""
    names = tuple(cat["keypoints"])
    builtin = next((s for s in SKELETONS.values() if s.keypoints == names), None)
    try:
        if "flip_pairs" in cat:
            flips = tuple((names.index(a), names.index(b)) for a, b in cat["flip_pairs"])
        else:
            flips = lr_pairs(names)
        edges = tuple((a - 1, b - 1) for a, b in cat.get("skeleton", []))
        sigmas = cat.get("sigmas", builtin.sigmas if builtin else None)
        return Skeleton(
            name=str(cat.get("name", "person")) if builtin is None else builtin.name,
            keypoints=names, edges=edges, flip_pairs=flips,
            sigmas=None if sigmas is None else tuple(float(s) for s in sigmas),
            to_coco=builtin.to_coco if builtin else None,
        )
    except (ValueError, TypeError) as exc:
        raise PosekitError(f"{path}: the keypoint category is inconsistent ({exc}); "
                           "fix its 'flip_pairs' (pairs of keypoint names), 'skeleton' or 'sigmas'") from None


def check_skeleton(skeleton: Skeleton, names: tuple[str, ...], path: Path | str) -> None:
    """Raise a PosekitError unless ``skeleton`` describes the keypoints ``names`` of a dataset file."""
    if skeleton.keypoints != tuple(names):
        raise PosekitError(
            f"skeleton {skeleton.name!r} ({skeleton.num_keypoints} keypoints) does not match {path} "
            f"({len(names)} keypoints: {', '.join(names[:6])}{', ...' if len(names) > 6 else ''}); "
            "set data.skeleton to the dataset's schema or leave it out to use the file's category")


def load_coco(annotations: str | os.PathLike, images: str | os.PathLike, skeleton: Skeleton | None = None,
              min_keypoints: int = 1) -> KeypointDataset:
    """Read a COCO keypoint file; keep non-crowd persons with a positive box and >= ``min_keypoints`` labelled
    keypoints.  Raises PosekitError for a missing file or image, a malformed file, or a skeleton mismatch."""
    path, root = Path(annotations), Path(images)
    if not path.is_file():
        raise PosekitError(f"annotation file {path} not found; check the dataset path in the config")
    if not root.is_dir():
        raise PosekitError(f"image folder {root} not found; check the dataset path in the config")
    try:
        doc = json.loads(path.read_text())
        cat = _keypoint_category(doc, path)
        file_skeleton = skeleton_from_category(cat, path)
        if skeleton is not None:
            check_skeleton(skeleton, file_skeleton.keypoints, path)
        skel = skeleton or file_skeleton
        k = skel.num_keypoints
        sizes = {im["id"]: (im["width"], im["height"]) for im in doc["images"]}
        names = {im["id"]: im["file_name"] for im in doc["images"]}
        instances = []
        for ann in doc["annotations"]:
            if ann.get("category_id") != cat["id"] or ann.get("iscrowd", 0):
                continue
            kps = np.asarray(ann["keypoints"], dtype=np.float32)
            if kps.size != 3 * k:
                raise PosekitError(f"{path}: annotation {ann['id']} has {kps.size // 3} keypoints, the category "
                                   f"lists {k}; fix the file")
            kps = kps.reshape(k, 3)
            x, y, w, h = (float(v) for v in ann["bbox"])
            width, height = sizes[ann["image_id"]]
            box = np.array([max(x, 0), max(y, 0), min(x + w, width), min(y + h, height)], np.float32)
            if (kps[:, 2] > 0).sum() < min_keypoints or box[2] <= box[0] + 1 or box[3] <= box[1] + 1:
                continue
            instances.append(Instance(int(ann["id"]), int(ann["image_id"]), box, kps,
                                      float(ann.get("area", w * h))))
    except (KeyError, TypeError, ValueError, json.JSONDecodeError) as exc:
        raise PosekitError(f"{path} is not a valid COCO keypoint file ({type(exc).__name__}: {exc}); "
                           "fix or regenerate it") from None
    used = sorted({inst.image_id for inst in instances})
    files = {i: root / names[i] for i in used}
    missing = [p for p in files.values() if not p.is_file()]
    if missing:
        raise PosekitError(f"{len(missing)} image(s) listed in {path} are missing from {root}, e.g. "
                           f"{', '.join(p.name for p in missing[:3])}; fix the image folder or the file")
    return KeypointDataset(path, skel, int(cat["id"]), files, instances)
