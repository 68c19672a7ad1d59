"""Evaluation: OKS, COCO keypoint AP (pycocotools), PCK."""

from posekit.eval.cocoeval import coco, evaluate, load_annotations, score_results
from posekit.eval.metrics import oks, oks_matrix, oks_nms, pck, per_joint_pck

__all__ = ["coco", "evaluate", "load_annotations", "oks", "oks_matrix", "oks_nms", "pck", "per_joint_pck",
           "score_results"]
