"""Losses of the three heads; each takes the head's named outputs and the batch's targets
(`posekit.data.targets`) and returns (total loss, {part name: detached value})."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def regression_loss(out: dict[str, torch.Tensor], batch: dict[str, torch.Tensor], coord_weight: float = 0.6,
                    visibility_weight: float = 0.4) -> tuple[torch.Tensor, dict[str, float]]:
    """coord_weight * masked MSE of the normalised coordinates (mean over x, y; unlabelled keypoints left out,
    normalised by the number of labelled ones) + visibility_weight * BCE of the visibility logits."""
    w = batch["coord_weight"]
    sq = ((out["coords"].float() - batch["coords"]) ** 2).mean(-1)
    mse = (sq * w).sum() / w.sum().clamp(min=1.0)
    bce = F.binary_cross_entropy_with_logits(out["visibility"].float(), batch["visible"])
    return coord_weight * mse + visibility_weight * bce, {"mse": mse.item(), "bce": bce.item()}


def heatmap_loss(out: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
    """SimpleBaseline's target-weighted MSE: 0.5 * mean over (N, K, h, w) of (weight_k (pred - target))^2."""
    w = batch["heatmap_weight"][:, :, None, None]
    mse = 0.5 * ((out["heatmaps"].float() - batch["heatmaps"]) * w).pow(2).mean()
    return mse, {"mse": mse.item()}


def grmi_loss(out: dict[str, torch.Tensor], batch: dict[str, torch.Tensor], offset_weight: float = 1.0,
              huber_delta: float = 0.5) -> tuple[torch.Tensor, dict[str, float]]:
    """G-RMI: sigmoid BCE of the heatmap logits against the disks + offset_weight * Huber loss of the offsets
    (in radius units, summed over dx, dy), averaged over the cells inside the disks only."""
    disks = batch["disks"]
    bce = F.binary_cross_entropy_with_logits(out["heatmaps"].float(), disks)
    n, k, h, w = disks.shape
    pred = out["offsets"].float().view(n, k, 2, h, w)
    huber = F.huber_loss(pred, batch["offsets"], reduction="none", delta=huber_delta).sum(2)
    off = (huber * disks).sum() / disks.sum().clamp(min=1.0)
    return bce + offset_weight * off, {"bce": bce.item(), "offset": off.item()}
