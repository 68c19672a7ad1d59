"""Pose heads on a backbone feature map (N, C, h, w); each returns its outputs as a tuple in the order of
`posekit.decode.heatmap.HEAD_OUTPUTS` so that torch, ONNX export and numpy decoding agree on names.

* `RegressionHead`: coords (N, K, 2) as 2x / W - 1, 2y / H - 1 (-1..1 across the input), visibility logits
  (N, K).
* `SimpleBaselineHead` (Xiao et al., 2018): deconvolutions + 1x1 conv -> heatmaps (N, K, h', w').
* `GRMIHead` (Papandreou et al., 2017): heatmap logits (N, K, h, w) + offsets (N, 2K, h, w) as (dx, dy) per keypoint.
"""

from __future__ import annotations

import torch
from torch import nn

from posekit.train.backbones import conv_bn


class RegressionHead(nn.Module):
    """Reduce channels with a 1x1 conv, flatten the (h, w) map (position-aware), two linear layers."""

    def __init__(self, cin: int, num_keypoints: int, feature_hw: tuple[int, int], reduce: int = 64,
                 hidden: int = 256) -> None:
        super().__init__()
        self.k = num_keypoints
        self.reduce = conv_bn(cin, reduce, 1, act=nn.ReLU)
        self.mlp = nn.Sequential(nn.Flatten(), nn.Linear(reduce * feature_hw[0] * feature_hw[1], hidden),
                                 nn.ReLU(inplace=True), nn.Linear(hidden, num_keypoints * 3))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.mlp(self.reduce(x)).view(-1, self.k, 3)
        return out[..., :2], out[..., 2]


class SimpleBaselineHead(nn.Module):
    """``layers`` x (ConvTranspose ``kernel`` x ``kernel`` stride 2 + BN + ReLU), then a 1x1 conv to K heatmaps."""

    def __init__(self, cin: int, num_keypoints: int, layers: int = 3, channels: int = 256, kernel: int = 4) -> None:
        super().__init__()
        if kernel not in (2, 3, 4):
            raise ValueError(f"deconvolution kernel must be 2, 3 or 4, got {kernel}")
        padding, output_padding = {4: (1, 0), 3: (1, 1), 2: (0, 0)}[kernel]
        blocks: list[nn.Module] = []
        for _ in range(layers):
            blocks += [nn.ConvTranspose2d(cin, channels, kernel, 2, padding, output_padding, bias=False),
                       nn.BatchNorm2d(channels), nn.ReLU(inplace=True)]
            cin = channels
        self.deconv = nn.Sequential(*blocks)
        self.final = nn.Conv2d(cin, num_keypoints, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor]:
        return (self.final(self.deconv(x)),)


class GRMIHead(nn.Module):
    """A 3x3 conv (``channels``), then 1x1 convs to K heatmap logits and 2K offsets."""

    def __init__(self, cin: int, num_keypoints: int, channels: int = 128) -> None:
        super().__init__()
        self.body = conv_bn(cin, channels, 3, act=nn.ReLU)
        self.heatmaps = nn.Conv2d(channels, num_keypoints, 1)
        self.offsets = nn.Conv2d(channels, 2 * num_keypoints, 1)
        nn.init.constant_(self.heatmaps.bias, -4.0)  # start near the disks' low prior instead of 0.5

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = self.body(x)
        return self.heatmaps(y), self.offsets(y)
