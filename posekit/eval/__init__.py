"""Evaluation: OKS, COCO keypoint AP (pycocotools), PCK."""
