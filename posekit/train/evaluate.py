"""Validation scores of a top-down model under the gt-boxes protocol, for any skeleton (no torch).

PCK@alpha here is normalised by the longer side of the ground-truth box (mmpose's convention, usable with any
skeleton); AP is COCO keypoint AP (pycocotools) with the skeleton's own OKS sigmas.
"""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np

from posekit.data.coco import KeypointDataset
from posekit.errors import PosekitError
from posekit.eval.metrics import pck
from posekit.transforms import apply_affine, invert_affine


def to_image(keypoints: np.ndarray, affines: np.ndarray) -> np.ndarray:
    """Keypoints (N, K, 3) in input pixels -> image pixels, given each sample's affine (N, 2, 3) image -> input."""
    return np.stack([apply_affine(k, invert_affine(m)) for k, m in zip(keypoints, affines)]).astype(np.float32)


def box_pck(data: KeypointDataset, indices: np.ndarray, preds: np.ndarray, alpha: float = 0.2) -> float:
    """PCK@alpha of predictions (N, K, 3+) in image pixels for the instances ``indices`` of ``data``,
    normalised by the longer side of each ground-truth box."""
    insts = [data.instances[i] for i in indices]
    gts = np.stack([inst.keypoints for inst in insts])
    norm = np.array([max(inst.box[2] - inst.box[0], inst.box[3] - inst.box[1]) for inst in insts])
    return pck(preds, gts, gts[..., 2] > 0, norm, alpha)


def keypoint_ap(data: KeypointDataset, indices: np.ndarray, preds: np.ndarray) -> float:
    """COCO keypoint AP (OKS 0.50:0.95) of one prediction per instance (gt-boxes protocol); a prediction's score
    is the mean of its keypoint scores.  Uses the skeleton's sigmas."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    sigmas = data.skeleton.sigmas
    if sigmas is None:
        raise PosekitError(f"skeleton {data.skeleton.name} has no OKS sigmas, so AP cannot be computed; add "
                           "'sigmas' to the dataset's category or set train.metric=pck")
    results = [{"image_id": data.instances[i].image_id, "category_id": data.category_id,
                "keypoints": [round(float(v), 3) for v in p[:, :3].reshape(-1)], "score": float(p[:, 2].mean())}
               for i, p in zip(indices, preds)]
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = json.loads(data.annotations.read_text())
        gt.createIndex()
        evaluator = COCOeval(gt, gt.loadRes(results), iouType="keypoints")
        evaluator.params.kpt_oks_sigmas = np.asarray(sigmas, dtype=np.float64)
        evaluator.params.catIds = [data.category_id]
        evaluator.params.imgIds = sorted({r["image_id"] for r in results})
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return max(float(evaluator.stats[0]), 0.0)


def score(data: KeypointDataset, indices: np.ndarray, preds: np.ndarray, with_ap: bool) -> dict[str, float]:
    """{"pck": PCK@0.2, "pck@0.1", and "ap" when asked} of predictions (N, K, 3) in image pixels."""
    out = {"pck": box_pck(data, indices, preds, 0.2), "pck@0.1": box_pck(data, indices, preds, 0.1)}
    if with_ap:
        out["ap"] = keypoint_ap(data, indices, preds)
    return out
