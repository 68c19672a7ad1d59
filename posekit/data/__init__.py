"""Datasets: COCO-format keypoints, augmentation, synthetic figures."""
