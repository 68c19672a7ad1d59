"""COCO keypoint evaluation: run an estimator over a COCO-format set, write COCO results, score them.

Protocols: ``gt-boxes`` (``boxes="gt"``) hands every non-crowd ground-truth box to the estimator, which runs
top-down on them (isolates the pose model); ``end-to-end`` (``boxes="detector"``) runs the estimator on whole
images.  Scores: pycocotools' COCOeval (iouType 'keypoints', exactly as run by hand on the written results file),
plus PCK@0.2 normalised by torso size and per-joint PCK.  Estimator interface: ``est(image_rgb (H, W, 3) uint8,
boxes (N, 4) x1y1x2y2 pixels | None) -> list[Person]`` with an ``est.skeleton``.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from posekit.errors import PosekitError
from posekit.estimators.base import Estimator
from posekit.eval import metrics
from posekit.io import read_image, write_atomic
from posekit.skeleton import COCO17, COCO17_NAMES, MPII16
from posekit.types import Person

PROTOCOLS = {"gt": "gt-boxes", "detector": "end-to-end"}
STAT_NAMES = ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl")
#: End-to-end PCK pairs a prediction with a person only when their OKS reaches this (they overlap at all).
PCK_MATCH_OKS = 0.1
_SIGMAS = np.array(COCO17.sigmas)
_GT_KEYS = ("id", "image_id", "category_id", "keypoints", "num_keypoints", "area", "bbox", "iscrowd")


@dataclass
class CocoKeypoints:
    """A validated COCO person-keypoints annotation set (segmentations dropped: keypoint scoring never reads them).

    ``notes`` lists what was tolerated, e.g. annotations whose image id is not among the images.
    """

    path: Path
    category_id: int
    images: dict[int, dict[str, Any]]  # image id -> image record (id, file_name, width, height)
    annotations: list[dict[str, Any]]
    categories: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)
    by_image: dict[int, list[dict[str, Any]]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.by_image = {}
        for a in self.annotations:
            self.by_image.setdefault(a["image_id"], []).append(a)

    def as_coco_dict(self) -> dict[str, Any]:
        return {"images": list(self.images.values()), "annotations": self.annotations, "categories": self.categories}


def protocol_label(boxes: str) -> str:
    """'gt' -> 'gt-boxes', 'detector' -> 'end-to-end'; PosekitError otherwise."""
    if boxes not in PROTOCOLS:
        raise PosekitError(f"boxes must be one of {', '.join(PROTOCOLS)}, got {boxes!r}")
    return PROTOCOLS[boxes]


def read_json(path: Path, what: str, flag: str, expected: str = "a COCO-format file") -> Any:
    """Parse a JSON file; PosekitError (one line naming ``flag`` and the ``expected`` kind) if missing, empty or bad."""
    if not path.is_file():
        raise PosekitError(f"{what} {path} not found; pass an existing file with {flag}")
    try:
        if path.stat().st_size == 0:
            raise PosekitError(f"{what} {path} is empty; pass {expected} with {flag}")
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as exc:
        raise PosekitError(f"{what} {path} is not valid JSON ({exc.msg}, line {exc.lineno}); "
                           f"pass {expected} with {flag}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PosekitError(f"cannot read {what} {path} ({exc}); check the file and its permissions") from None


def load_annotations(path: str | Path) -> CocoKeypoints:
    """Read and validate a COCO person-keypoints json (e.g. person_keypoints_val2017.json); PosekitError if unfit."""
    path = Path(path)
    data = read_json(path, "annotation file", "--ann")
    fix = "pass a COCO person-keypoints file such as person_keypoints_val2017.json"
    if not isinstance(data, dict) or any(not isinstance(data.get(k), list) for k in ("images", "annotations",
                                                                                   "categories")):
        raise PosekitError(f"{path} is not a COCO annotation file (needs 'images', 'annotations' and 'categories' "
                           f"lists); {fix}")
    person = [c for c in data["categories"] if isinstance(c, dict) and len(c.get("keypoints", ())) == 17]
    if len(person) != 1:
        raise PosekitError(f"{path} has no single category with 17 keypoints (found {len(person)}); {fix}")
    if tuple(person[0]["keypoints"]) != COCO17_NAMES:
        raise PosekitError(f"{path}: the keypoints of category {person[0].get('name')!r} are not COCO-17 in COCO "
                           f"order ({', '.join(person[0]['keypoints'][:3])}, ...); {fix}")
    category_id = person[0]["id"]
    if not all(isinstance(im, dict) and "id" in im and "file_name" in im for im in data["images"]):
        raise PosekitError(f"{path}: every image needs an 'id' and a 'file_name'; {fix}")
    images = {im["id"]: {k: im[k] for k in ("id", "file_name", "width", "height") if k in im} for im in data["images"]}
    annotations = []
    for a in data["annotations"]:
        if not isinstance(a, dict) or a.get("category_id") != category_id:
            continue
        missing = [k for k in _GT_KEYS if k not in a and k != "iscrowd"]
        if missing or len(a["keypoints"]) != 51:
            what = f"lacks {', '.join(missing)}" if missing else f"has {len(a['keypoints'])} keypoint values, not 51"
            raise PosekitError(f"{path}: annotation {a.get('id')} {what}; {fix}")
        annotations.append({k: a[k] for k in _GT_KEYS if k in a})
    notes = []
    orphans = sum(a["image_id"] not in images for a in annotations)
    if orphans:
        notes.append(f"{orphans} annotations refer to image ids not in 'images'; not scored (as pycocotools does)")
    return CocoKeypoints(path, category_id, images, annotations, [person[0]], notes)


def image_files(dataset: CocoKeypoints, images_dir: str | Path) -> dict[int, Path]:
    """Image id -> file in images_dir; PosekitError if the folder or any listed image is missing."""
    root = Path(images_dir)
    if not root.is_dir():
        raise PosekitError(f"image folder {root} not found; pass the folder holding the images with --images")
    files = {i: root / im["file_name"] for i, im in dataset.images.items()}
    missing = sorted(str(p.name) for p in files.values() if not p.is_file())
    if missing:
        raise PosekitError(f"{len(missing)} of the {len(files)} images listed in {dataset.path.name} are not in "
                           f"{root} (first: {missing[0]}); pass the folder holding them with --images")
    return files


def _read_checked(path: Path, record: dict[str, Any]) -> np.ndarray:
    """(H, W, 3) uint8 RGB as stored (EXIF orientation ignored, as COCO's annotations are), size checked."""
    image = read_image(path, apply_exif=False)
    expected = (record.get("height"), record.get("width"))
    if None not in expected and image.shape[:2] != expected:
        raise PosekitError(f"image {path} is {image.shape[1]}x{image.shape[0]} but the annotations say "
                           f"{expected[1]}x{expected[0]}; pass the images these annotations were made for")
    return image


def gt_boxes(annotations: Sequence[dict[str, Any]]) -> tuple[np.ndarray, list[int]]:
    """(N, 4) x1y1x2y2 boxes of the non-crowd annotations (zero-keypoint people included) and their ids."""
    kept = [a for a in annotations if not a.get("iscrowd", 0)]
    boxes = np.array([[x, y, x + w, y + h] for x, y, w, h in (a["bbox"] for a in kept)], dtype=np.float32)
    return boxes.reshape(-1, 4), [a["id"] for a in kept]


def suppress(people: list[Person], min_score: float | None = None, oks_thr: float | None = None) -> list[Person]:
    """Drop people scoring below min_score, then OKS-NMS at oks_thr on their COCO-17 keypoints (None: step off)."""
    if min_score is not None:
        people = [p for p in people if p.score >= min_score]
    if oks_thr is None or len(people) < 2:
        return people
    poses = np.stack([p.to_coco() for p in people])
    areas = np.array([(p.box[2] - p.box[0]) * (p.box[3] - p.box[1]) for p in people])
    keep = metrics.oks_nms(poses, np.array([p.score for p in people]), areas, _SIGMAS, oks_thr)
    return [people[i] for i in keep]


@dataclass
class Predictions:
    """What a run produced: COCO results entries, and for gt-boxes the annotation id each entry came from."""

    results: list[dict[str, Any]]
    source_ids: list[int] | None
    images_run: int
    seconds_per_image: list[float]
    boxes_run: int


def run_timed(estimator: Estimator, image: np.ndarray, boxes: np.ndarray | None, times: list[float]
              ) -> list[Person]:
    """``estimator(image, boxes)``, its seconds appended to ``times``; the first call of a run (``times`` empty) is
    made twice, untimed first, as it may build sessions or caches.  With boxes, checks one Person per box."""
    if not times:
        estimator(image, boxes)
    start = time.perf_counter()
    people = estimator(image, boxes)
    times.append(time.perf_counter() - start)
    if boxes is not None and len(people) != len(boxes):
        raise PosekitError(f"the estimator returned {len(people)} people for {len(boxes)} boxes; given boxes "
                           f"it must return one Person per box, in order")
    return people


def predict(
    estimator: Estimator,
    dataset: CocoKeypoints,
    files: dict[int, Path],
    boxes: str = "gt",
    min_score: float | None = None,
    oks_thr: float | None = None,
    progress: bool = False,
) -> Predictions:
    """Run the estimator on every image under the protocol; end-to-end output goes through `suppress`."""
    from tqdm import tqdm

    label = protocol_label(boxes)
    results: list[dict[str, Any]] = []
    source_ids: list[int] | None = [] if boxes == "gt" else None
    times: list[float] = []
    boxes_run = 0
    for image_id in tqdm(sorted(dataset.images), desc=label, disable=not progress, leave=False):
        record = dataset.images[image_id]
        box_arr, ann_ids = gt_boxes(dataset.by_image.get(image_id, [])) if boxes == "gt" else (None, [])
        if boxes == "gt" and not ann_ids:
            continue
        people = run_timed(estimator, _read_checked(files[image_id], record), box_arr, times)
        if box_arr is None:
            people = suppress(people, min_score, oks_thr)
        else:
            source_ids.extend(ann_ids)
            boxes_run += len(ann_ids)
        results.extend(p.coco_record(image_id, dataset.category_id) for p in people)
    return Predictions(results, source_ids, len(times), times, boxes_run)


def write_results(path: str | Path, results: list[dict[str, Any]]) -> Path:
    """Write COCO results json atomically (temporary file in the same folder, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(results).encode("utf-8"))
    return path


def read_results(path: str | Path, dataset: CocoKeypoints) -> list[dict[str, Any]]:
    """Read a COCO keypoint results file and check it fits the annotations (clear error where pycocotools asserts)."""
    path = Path(path)
    results = read_json(path, "results file", "--results")
    entry_keys = ("image_id", "category_id", "keypoints", "score")
    if not isinstance(results, list) or not all(isinstance(r, dict) and all(k in r for k in entry_keys)
                                                and len(r["keypoints"]) == 51 for r in results):
        raise PosekitError(f"{path} is not a COCO keypoint results file (a list of {{image_id, category_id, "
                           f"keypoints: 51 numbers, score}}); write one with posekit eval --out")
    unknown = sorted({r["image_id"] for r in results} - set(dataset.images))
    if unknown:
        raise PosekitError(f"{path} has results for {len(unknown)} image ids that are not in {dataset.path.name} "
                           f"(first: {unknown[0]}); score it against the annotations it was made for")
    return results


def coco_stats(dataset: CocoKeypoints, results: list[dict[str, Any]]) -> dict[str, float | None]:
    """COCOeval keypoint summary (AP ... ARl) over all the set's images; None where no person falls in the range."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = copy.deepcopy(dataset.as_coco_dict())  # COCOeval writes into the annotations
        gt.createIndex()
        if results:
            dt = gt.loadRes(copy.deepcopy(results))  # loadRes writes into the entries
        else:  # pycocotools cannot load an empty list; an empty result set scores 0
            dt = COCO()
            dt.dataset = {"images": gt.dataset["images"], "annotations": [], "categories": gt.dataset["categories"]}
            dt.createIndex()
        evaluator = COCOeval(gt, dt, iouType="keypoints")
        evaluator.params.catIds = [dataset.category_id]
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return {name: (float(v) if v >= 0 else None) for name, v in zip(STAT_NAMES, evaluator.stats)}


def pck_stats(dataset: CocoKeypoints, results: list[dict[str, Any]], source_ids: list[int] | None = None,
              alpha: float = 0.2) -> dict[str, Any]:
    """PCK@alpha normalised by torso size, overall and per joint, over non-crowd people with a measurable torso.

    source_ids (one annotation id per result, gt-boxes protocol) pairs results with people directly; otherwise
    they are paired per image by OKS, best score first (as COCO matches, OKS >= PCK_MATCH_OKS).  A person with no
    prediction counts every labelled joint as missed.
    """
    people = [a for a in dataset.annotations
              if not a.get("iscrowd", 0) and a["num_keypoints"] > 0 and a["image_id"] in dataset.images]
    gts = np.array([a["keypoints"] for a in people], dtype=np.float64).reshape(-1, 17, 3)
    preds = np.full_like(gts, np.inf)
    row_of = {a["id"]: i for i, a in enumerate(people)}
    poses = np.array([r["keypoints"] for r in results], dtype=np.float64).reshape(-1, 17, 3)
    if source_ids is not None:
        for r, ann_id in enumerate(source_ids):
            if ann_id in row_of:
                preds[row_of[ann_id]] = poses[r]
    else:
        by_image: dict[int, list[int]] = {}
        for r, res in enumerate(results):
            by_image.setdefault(res["image_id"], []).append(r)
        for image_id, mine in by_image.items():
            rows = [row_of[a["id"]] for a in dataset.by_image.get(image_id, []) if a["id"] in row_of]
            if not rows:
                continue
            sim = metrics.oks_matrix(poses[mine], gts[rows], np.array([people[i]["area"] for i in rows]), _SIGMAS)
            for r, g in metrics.greedy_match(sim, [results[r]["score"] for r in mine], PCK_MATCH_OKS):
                preds[rows[g]] = poses[mine[r]]
    norm = metrics.torso_sizes(gts)
    vis = gts[..., 2] > 0
    per_joint = metrics.per_joint_pck(preds, gts, vis, norm, alpha)
    return {
        f"PCK@{alpha:g}": metrics.finite_or_none(metrics.pck(preds, gts, vis, norm, alpha)),
        "pck_people": int(np.isfinite(norm).sum()),
        "per_joint": {name: metrics.finite_or_none(v) for name, v in zip(COCO17_NAMES, per_joint)},
    }



def evaluate(dataset: CocoKeypoints, results: list[dict[str, Any]], source_ids: list[int] | None = None
             ) -> dict[str, Any]:
    """COCO keypoint stats plus PCK for results on a dataset (see `coco_stats` and `pck_stats`)."""
    return {**coco_stats(dataset, results), **pck_stats(dataset, results, source_ids),
            "images": len(dataset.images), "people": len(results), "notes": list(dataset.notes)}


def score_results(ann: str | Path, results: str | Path) -> dict[str, Any]:
    """Score an existing COCO keypoint results file (e.g. from `posekit eval --out` or another tool)."""
    dataset = load_annotations(ann)
    report = evaluate(dataset, read_results(results, dataset))
    return {"model": None, "protocol": "results file", "results": str(results), **report}


def load_estimator(model: str | Estimator, model_options: dict[str, Any]) -> tuple[Estimator, str]:
    """A zoo name (loaded with its options) or an estimator callable -> (estimator, name); it must give keypoints."""
    if isinstance(model, str):
        import posekit

        try:
            estimator = posekit.load(model, **model_options)
        except TypeError as exc:  # an option the model's constructor does not take
            if "unexpected keyword" not in str(exc):
                raise
            raise PosekitError(f"{model} does not take the option(s) {', '.join(model_options)}; drop them "
                               f"(see `posekit models`)") from None
        name = model
    elif model_options:
        raise TypeError(f"model options {sorted(model_options)} only apply when the model is given by name")
    else:
        if not isinstance(model, Estimator):
            raise PosekitError(f"{type(model).__name__} is not a posekit Estimator, so it gives no keypoints to "
                               "score; subclass posekit.estimators.base.Estimator (implement predict)")
        estimator, name = model, model.name
    return estimator, name


def with_flip(estimator: Estimator, flip: bool) -> Estimator:
    """The estimator with the flip test (``estimator.flipped()``) when flip is set."""
    return estimator.flipped() if flip else estimator


def _resolve(model: str | Estimator, boxes: str, flip: bool, model_options: dict[str, Any]) -> tuple[Estimator, str]:
    estimator, name = load_estimator(model, model_options)
    skeleton = estimator.skeleton
    if skeleton is MPII16:
        raise PosekitError(f"{name} outputs MPII-16 joints, which have no mapping to COCO-17 (no face points), so it "
                           f"cannot be scored with COCO keypoint AP; score it with PCKh on MPII-format annotations "
                           f"instead: posekit eval --model {name} --ann mpii_val.json --images DIR")
    if skeleton.to_coco is None:
        raise PosekitError(f"{name} outputs {skeleton.name} keypoints, which have no mapping to COCO-17, so it cannot "
                           f"be scored with COCO keypoint AP; evaluate a model with COCO-17 or BlazePose keypoints")
    if boxes == "gt" and not estimator.top_down:
        raise PosekitError(f"{name} is a whole-image (bottom-up) model, not a top-down one, so it has no gt-boxes "
                           f"score; use --boxes detector (end-to-end)")
    return with_flip(estimator, flip), name


def coco(
    model: str | Estimator,
    ann: str | Path,
    images: str | Path,
    boxes: str = "gt",
    flip: bool = False,
    out: str | Path | None = None,
    min_score: float | None = None,
    oks_nms: float | None = None,
    progress: bool = False,
    **model_options: Any,
) -> dict[str, Any]:
    """Evaluate a model on a COCO person-keypoints set and return the numbers as a dict.

    model: a zoo name (loaded with ``posekit.load(model, **model_options)``) or an estimator callable.
    boxes: "gt" (gt-boxes protocol) or "detector" (end-to-end).  flip: flip test (`posekit.estimators.flip.flip_test`).
    min_score, oks_nms: end-to-end only: drop people scoring below min_score; OKS-NMS at that OKS (None: off).
    out: also write the COCO results json there (atomically).  Keys: AP, AP50, AP75, APm, APl, AR, AR50, AR75,
    ARm, ARl (COCOeval, None where undefined), PCK@0.2, per_joint, pck_people, model, protocol, flip, options,
    images, images_run, people, seconds, ms_per_image, ms_per_person (gt-boxes), results, notes.
    """
    label = protocol_label(boxes)
    if boxes == "gt" and (min_score, oks_nms) != (None, None):
        raise PosekitError("the person score threshold and OKS-NMS apply to the end-to-end protocol only; "
                           "use --boxes detector with --min-score / --oks-nms")
    dataset = load_annotations(ann)
    files = image_files(dataset, images)
    estimator, name = _resolve(model, boxes, flip, model_options)
    start = time.perf_counter()
    run = predict(estimator, dataset, files, boxes, min_score, oks_nms, progress)
    seconds = time.perf_counter() - start
    if out is not None:
        write_results(out, run.results)
    report = evaluate(dataset, run.results, run.source_ids)
    options = {**model_options} if boxes == "gt" else {**model_options, "min_score": min_score, "oks_nms": oks_nms}
    model_time = float(np.sum(run.seconds_per_image)) if run.seconds_per_image else 0.0
    return {
        "model": name, "protocol": label, "flip": flip, "options": options, **report,
        "images_run": run.images_run, "seconds": seconds,
        "ms_per_image": 1000 * model_time / run.images_run if run.images_run else None,
        "ms_per_person": 1000 * model_time / run.boxes_run if run.boxes_run else None,
        "results": None if out is None else str(out),
    }
