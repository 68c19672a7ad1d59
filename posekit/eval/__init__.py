"""Evaluation: OKS, COCO keypoint AP (pycocotools), PCK; PCKh on MPII-format annotations."""

from posekit.eval.cocoeval import coco, evaluate, load_annotations, score_results
from posekit.eval.metrics import head_sizes, oks, oks_matrix, oks_nms, pck, pckh, per_joint_pck
from posekit.eval.mpiieval import load_mpii, mpii, score_predictions

__all__ = ["coco", "evaluate", "head_sizes", "load_annotations", "load_mpii", "mpii", "oks", "oks_matrix", "oks_nms",
           "pck", "pckh", "per_joint_pck", "score_predictions", "score_results"]
