"""MPII-format evaluation: PCKh of an MPII-16 model on MPII-format annotations, gt-boxes protocol.

Annotations: the MPII JSON that HRNet and MMPose use (``valid.json`` / ``mpii_val.json``), a list of records
``{"image": file name, "center": [x, y], "scale": s, "joints": 16 x [x, y], "joints_vis": 16 x 0|1}`` with
joints in MPII order (= posekit's MPII16: 0 right_ankle ... 15 left_wrist) and 1 = labelled.  Coordinates are
MATLAB 1-based as in MPII's release (the top-left pixel's centre is (1, 1); in posekit pixels it is (0.5, 0.5)).
PCKh needs each person's head box: a ``"headbox": [x1, y1, x2, y2]`` per record, or MPII's ground-truth .mat
(``mpii_gt_val.mat``: ``headboxes_src``, in the records' order; needs scipy).

Protocol (gt-boxes, as HRNet and MMPose crop MPII people): the person box is the square of side 200 x scale
centred on (center x, center y + 15 x scale); the estimator adds its own margin (EfficientPose: 1.25, the padding
HRNet and MMPose apply).  Scores: `posekit.eval.metrics.pckh` at alpha 0.5 and 0.1, and per-joint PCKh@0.5.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from posekit.errors import PosekitError
from posekit.eval import metrics
from posekit.eval.cocoeval import Estimator, load_estimator, read_json, run_timed, with_flip, write_results
from posekit.io import read_image
from posekit.skeleton import MPII16, MPII16_NAMES

#: Annotation coordinate minus posekit pixel coordinate (MATLAB 1-based pixel centres vs continuous pixels).
MATLAB_ORIGIN = 0.5
#: The person box side is this many pixels per unit of an annotation's scale.
SCALE_PX = 200.0
#: HRNet / MMPose move the person centre this many pixels per unit scale down before cropping.
CENTER_SHIFT = 15.0
ALPHAS = (0.5, 0.1)
PROTOCOL = "gt-boxes"
_KEYS = ("image", "center", "scale", "joints", "joints_vis")
_FORMAT = "an MPII-format JSON (a list of {image, center, scale, joints: 16 x [x, y], joints_vis, headbox})"


@dataclass
class MpiiSet:
    """Validated MPII-format people, in file order; coordinates in posekit pixels (MATLAB origin removed)."""

    path: Path
    images: list[str]  # (N,) image file names
    centers: np.ndarray  # (N, 2) person centres, pixels
    scales: np.ndarray  # (N,) person box side / 200
    joints: np.ndarray  # (N, 16, 2) pixels, MPII order
    visible: np.ndarray  # (N, 16) bool: labelled
    headboxes: np.ndarray  # (N, 4) x1, y1, x2, y2 pixels
    notes: list[str] = field(default_factory=list)


def detect_format(path: str | Path) -> str:
    """'mpii' for a JSON list (MPII-format records), else 'coco' (a COCO dict, or a file the COCO reader rejects)."""
    try:
        with open(path, "rb") as f:
            head = f.read(4096).lstrip()
    except OSError:
        return "coco"
    return "mpii" if head.startswith(b"[") else "coco"


def _array(record: dict[str, Any], key: str, shape: tuple[int, ...], where: str) -> np.ndarray:
    try:
        value = np.asarray(record[key], dtype=np.float64)
    except (TypeError, ValueError):
        value = None
    if value is None or value.shape != shape or not np.isfinite(value).all():
        if key in ("joints", "joints_vis") and value is not None and value.ndim >= 1 and value.shape[0] != 16:
            raise PosekitError(f"{where} has {value.shape[0]} {key}, not the 16 of MPII (0 right_ankle ... "
                               f"15 left_wrist); pass {_FORMAT} with --ann")
        wanted = " x ".join(map(str, shape)) + " finite numbers" if shape else "a finite number"
        raise PosekitError(f"{where}: {key!r} is not {wanted}; pass {_FORMAT} with --ann")
    return value


def load_mpii(path: str | Path, headboxes: str | Path | None = None) -> MpiiSet:
    """Read and validate an MPII-format annotation JSON; head boxes from its records or the .mat ``headboxes``."""
    path = Path(path)
    data = read_json(path, "annotation file", "--ann", _FORMAT)
    if not isinstance(data, list) or not data or not all(isinstance(r, dict) for r in data):
        raise PosekitError(f"{path} is not {_FORMAT}" + (" (it is an empty list)" if data == [] else "")
                           + "; pass one with --ann")
    rows = {k: [] for k in (*_KEYS, "headbox")}
    for i, record in enumerate(data):
        where = f"{path.name}: record {i} ({record.get('image', 'no image')})"
        missing = [k for k in _KEYS if k not in record]
        if missing:
            test_set = " (MPII test annotations carry no joints and cannot be scored)" if missing == ["joints"] else ""
            raise PosekitError(f"{where} lacks {', '.join(missing)}{test_set}; pass {_FORMAT} with --ann")
        if not isinstance(record["image"], str) or not record["image"]:
            raise PosekitError(f"{where}: 'image' must be an image file name; pass {_FORMAT} with --ann")
        rows["image"].append(record["image"])
        rows["center"].append(_array(record, "center", (2,), where))
        scale = float(_array(record, "scale", (), where))
        if not scale > 0:
            raise PosekitError(f"{where}: scale {scale} is not positive (the person box side is 200 x scale px)")
        rows["scale"].append(scale)
        rows["joints"].append(_array(record, "joints", (16, 2), where))
        rows["joints_vis"].append(_array(record, "joints_vis", (16,), where))
        if headboxes is None and "headbox" in record:
            rows["headbox"].append(_array(record, "headbox", (4,), where))
    joints = np.stack(rows["joints"])
    visible = np.stack(rows["joints_vis"]) > 0
    if headboxes is not None:
        boxes = read_headboxes_mat(headboxes, joints, visible)
    elif len(rows["headbox"]) != len(data):
        raise PosekitError(f"{path}: {len(data) - len(rows['headbox'])} of {len(data)} records have no 'headbox' "
                           f"[x1, y1, x2, y2], which PCKh needs; add one per record or pass MPII's ground-truth "
                           f"mpii_gt_val.mat (headboxes_src) with --headboxes")
    else:
        boxes = np.stack(rows["headbox"])
    flat = np.flatnonzero(metrics.head_sizes(boxes) <= 0)
    if flat.size:
        raise PosekitError(f"{path}: the head box of record {flat[0]} ({rows['image'][flat[0]]}) has no size; PCKh "
                           f"divides by it, so every person needs a real head box")
    notes = []
    unlabelled = int((~visible.any(1)).sum())
    if unlabelled:
        notes.append(f"{unlabelled} records have no labelled joint: run, but they do not count")
    return MpiiSet(path, rows["image"], np.stack(rows["center"]) - MATLAB_ORIGIN, np.array(rows["scale"]),
                   joints - MATLAB_ORIGIN, visible, boxes - MATLAB_ORIGIN, notes)


def read_headboxes_mat(path: str | Path, joints: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """(N, 4) head boxes from MPII's ground-truth .mat (``headboxes_src`` (2, 2, N): corner, x/y, person).

    joints (N, 16, 2) annotation coordinates, visible (N, 16): the records the boxes belong to, in order; when the
    .mat also holds ``pos_gt_src`` (16, 2, N) its labelled joints must lie within 2 px of them (same order).
    """
    path = Path(path)
    from scipy.io import loadmat

    if not path.is_file():
        raise PosekitError(f"head box file {path} not found; pass MPII's mpii_gt_val.mat with --headboxes")
    try:
        mat = loadmat(str(path))
    except (ValueError, TypeError, OSError) as exc:
        raise PosekitError(f"cannot read {path} as a MATLAB .mat file ({exc}); pass mpii_gt_val.mat") from None
    src = np.asarray(mat.get("headboxes_src", np.empty(0)), dtype=np.float64)
    if src.ndim != 3 or src.shape[:2] != (2, 2):
        raise PosekitError(f"{path} has no 'headboxes_src' of shape (2, 2, N); pass MPII's mpii_gt_val.mat")
    if src.shape[2] != len(joints):
        raise PosekitError(f"{path} has {src.shape[2]} head boxes but the annotation file has {len(joints)} records; "
                           f"pass the .mat made with those records, in the same order")
    gt = np.asarray(mat.get("pos_gt_src", np.empty(0)), dtype=np.float64)
    if gt.shape == (16, 2, len(joints)) and visible.any():
        offset = np.linalg.norm(gt.transpose(2, 0, 1) - joints, axis=-1)[visible]
        if np.median(offset) > 2.0:
            raise PosekitError(f"the joints in {path} (pos_gt_src) are {np.median(offset):.0f} px (median) from the "
                               f"annotation file's: the records and the .mat do not line up; pass matching files")
    return np.concatenate([src[0].T, src[1].T], axis=1)


def person_boxes(centers: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """(N, 4) x1, y1, x2, y2 person boxes: squares of side 200 x scale around the centres moved 15 x scale down."""
    centers = np.asarray(centers, dtype=np.float64).reshape(-1, 2)
    scales = np.asarray(scales, dtype=np.float64).reshape(-1)
    c = centers + np.stack([np.zeros_like(scales), CENTER_SHIFT * scales], axis=1)
    half = (SCALE_PX / 2 * scales)[:, None]
    return np.concatenate([c - half, c + half], axis=1).astype(np.float32)


def image_paths(dataset: MpiiSet, images_dir: str | Path) -> dict[str, Path]:
    """Image name -> file in images_dir; PosekitError if the folder or any listed image is missing."""
    root = Path(images_dir)
    if not root.is_dir():
        raise PosekitError(f"image folder {root} not found; pass the folder holding the images with --images")
    files = {name: root / name for name in dict.fromkeys(dataset.images)}
    missing = [name for name, p in files.items() if not p.is_file()]
    if missing:
        raise PosekitError(f"{len(missing)} of the {len(files)} images listed in {dataset.path.name} are not in "
                           f"{root} (first: {missing[0]}); pass the folder holding them with --images")
    return files


def predict(estimator: Estimator, dataset: MpiiSet, files: dict[str, Path], progress: bool = False
            ) -> tuple[np.ndarray, np.ndarray, list[float]]:
    """Run the estimator on every image with its people's boxes.

    Returns poses (N, 16, 3) x, y pixels, score; person scores (N,); seconds per image (first call untimed).
    """
    from tqdm import tqdm

    boxes = person_boxes(dataset.centers, dataset.scales)
    by_image: dict[str, list[int]] = {}
    for i, name in enumerate(dataset.images):
        by_image.setdefault(name, []).append(i)
    poses = np.zeros((len(dataset.images), 16, 3))
    scores = np.zeros(len(dataset.images))
    times: list[float] = []
    for name, rows in tqdm(by_image.items(), desc=PROTOCOL, disable=not progress, leave=False):
        people = run_timed(estimator, read_image(files[name], apply_exif=False), boxes[rows], times)
        for row, person in zip(rows, people):
            poses[row] = person.keypoints
            scores[row] = person.score
    return poses, scores, times


def write_predictions(path: str | Path, dataset: MpiiSet, poses: np.ndarray, scores: np.ndarray) -> Path:
    """Write one record per annotation record, in order: image, joints 16 x [x, y] (the annotations' 1-based
    coordinates), joint scores, person score; atomically."""
    entries = [{"image": name,
                "joints": [[round(float(x) + MATLAB_ORIGIN, 2), round(float(y) + MATLAB_ORIGIN, 2)]
                           for x, y in pose[:, :2]],
                "joint_scores": [round(float(s), 4) for s in pose[:, 2]],
                "score": round(float(score), 5)}
               for name, pose, score in zip(dataset.images, poses, scores)]
    return write_results(path, entries)


def read_predictions(path: str | Path, dataset: MpiiSet) -> np.ndarray:
    """(N, 16, 2) pixels from a predictions file written by `write_predictions` for these annotations."""
    path = Path(path)
    fix = "score the predictions `posekit eval --out` wrote for these annotations"
    entries = read_json(path, "results file", "--results", "an MPII predictions file from posekit eval --out")
    if not isinstance(entries, list) or len(entries) != len(dataset.images):
        count = len(entries) if isinstance(entries, list) else "no list of"
        raise PosekitError(f"{path} has {count} predictions for the {len(dataset.images)} records of "
                           f"{dataset.path.name}; {fix}")
    poses = []
    for i, (entry, name) in enumerate(zip(entries, dataset.images)):
        if not isinstance(entry, dict) or entry.get("image") != name:
            raise PosekitError(f"{path}: prediction {i} is not for image {name} (record {i}); {fix}")
        poses.append(_array(entry, "joints", (16, 2), f"{path.name}: prediction {i}"))
    return np.stack(poses) - MATLAB_ORIGIN



def evaluate(dataset: MpiiSet, poses: np.ndarray) -> dict[str, Any]:
    """PCKh tables at `ALPHAS` (keys 'PCKh@0.5', 'PCKh@0.1'), per-joint PCKh@0.5 and counts; fractions, None
    where no joint counts.  poses (N, 16, 2+) pixels, in the dataset's record order."""
    size = metrics.head_sizes(dataset.headboxes)
    report: dict[str, Any] = {
        f"PCKh@{a:g}": {k: metrics.finite_or_none(v)
                        for k, v in metrics.pckh(poses, dataset.joints, dataset.visible, size, a).items()}
        for a in ALPHAS
    }
    per_joint = metrics.per_joint_pck(poses, dataset.joints, dataset.visible, size, ALPHAS[0])
    report["per_joint"] = {name: metrics.finite_or_none(v) for name, v in zip(MPII16_NAMES, per_joint)}
    return {**report, "joints_labelled": int(dataset.visible.sum()), "people": len(dataset.images),
            "images": len(set(dataset.images)), "notes": list(dataset.notes)}


def score_predictions(ann: str | Path, results: str | Path, headboxes: str | Path | None = None) -> dict[str, Any]:
    """PCKh of an existing predictions file (from `posekit eval --out` on MPII-format annotations)."""
    dataset = load_mpii(ann, headboxes)
    return {"model": None, "protocol": "results file", "results": str(results),
            **evaluate(dataset, read_predictions(results, dataset))}


def mpii(
    model: str | Estimator,
    ann: str | Path,
    images: str | Path,
    flip: bool = False,
    out: str | Path | None = None,
    headboxes: str | Path | None = None,
    progress: bool = False,
    **model_options: Any,
) -> dict[str, Any]:
    """Evaluate an MPII-16 model on MPII-format annotations (gt-boxes protocol) and return PCKh as a dict.

    model: a zoo name (``posekit.load(model, **model_options)``) or an estimator callable with ``skeleton`` MPII16.
    flip: generic flip test.  out: also write the predictions (`write_predictions`).  headboxes: MPII's
    ground-truth .mat when the records carry no 'headbox'.  Keys: PCKh@0.5 and PCKh@0.1 (each Head, Shoulder,
    Elbow, Wrist, Hip, Knee, Ankle, Mean, Mean (all 16)), per_joint (PCKh@0.5), joints_labelled, people, images,
    model, protocol, flip, options, seconds, ms_per_image, ms_per_person, results, notes.
    """
    dataset = load_mpii(ann, headboxes)
    files = image_paths(dataset, images)
    estimator, name = load_estimator(model, model_options)
    if estimator.skeleton.keypoints != MPII16.keypoints:
        raise PosekitError(f"{name} outputs {estimator.skeleton.name} keypoints, but PCKh on MPII-format annotations "
                           f"scores MPII-16 models (e.g. efficientpose); score {name} on COCO person-keypoint "
                           f"annotations instead (--format coco)")
    if not estimator.top_down:
        raise PosekitError(f"{name} is a whole-image (bottom-up) model; MPII-format evaluation hands it person "
                           f"boxes (gt-boxes protocol), which it cannot use")
    start = time.perf_counter()
    poses, scores, times = predict(with_flip(estimator, flip), dataset, files, progress)
    seconds = time.perf_counter() - start
    if out is not None:
        write_predictions(out, dataset, poses, scores)
    model_time = float(np.sum(times))
    return {"model": name, "protocol": PROTOCOL, "flip": flip, "options": dict(model_options),
            **evaluate(dataset, poses), "images_run": len(times), "seconds": seconds,
            "ms_per_image": 1000 * model_time / len(times), "ms_per_person": 1000 * model_time / len(poses),
            "results": None if out is None else str(out)}
