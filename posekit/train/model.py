"""A trainable pose network = backbone + head, built from a `Config`, and the head description that travels with
it (in checkpoints and exported files) so that targets and decoding agree with the network."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from posekit.decode.heatmap import HEAD_OUTPUTS
from posekit.train.backbones import build_backbone
from posekit.train.config import Config
from posekit.train.heads import GRMIHead, RegressionHead, SimpleBaselineHead


class PoseModel(nn.Module):
    """(N, 3, H, W) normalised input -> the head's outputs as a tuple (names: `HEAD_OUTPUTS[kind]`)."""

    def __init__(self, backbone: nn.Module, head: nn.Module, kind: str) -> None:
        super().__init__()
        self.backbone, self.head, self.kind = backbone, head, kind

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return self.head(self.backbone(x))

    def named(self, outputs: tuple[torch.Tensor, ...]) -> dict[str, torch.Tensor]:
        """The forward outputs keyed by name."""
        return dict(zip(HEAD_OUTPUTS[self.kind], outputs))


def _map_hw(module: nn.Module, channels: int, size_hw: tuple[int, int]) -> tuple[int, ...]:
    """Shape (C, h, w) of ``module``'s first output on a zero input of ``size_hw``."""
    was_training = module.training
    module.eval()
    with torch.no_grad():
        out = module(torch.zeros(1, channels, *size_hw))
    module.train(was_training)
    return tuple((out[0] if isinstance(out, tuple) else out).shape[1:])


def build_backbone_from_config(cfg: Config) -> nn.Module:
    """The configured backbone (a zoo network when model.backbone is "zoo:NAME")."""
    m = cfg.model
    if m.backbone.startswith("zoo:"):
        from posekit.convert.torch_emit import ZooBackbone

        return ZooBackbone(m.backbone[4:], m.cut, cfg.input.mean, cfg.input.std)
    return build_backbone(m.backbone, m.coordconv, m.output_stride, m.width, m.widths, m.blocks)


def build_model(cfg: Config, num_keypoints: int) -> tuple[PoseModel, dict[str, Any]]:
    """The configured network and its head description {"type", "num_keypoints", "stride" (input pixels per output
    cell), plus "sigma" and "refine" (simplebaseline) or "radius" (grmi)}."""
    h = cfg.head
    size = tuple(cfg.input.size)
    backbone = build_backbone_from_config(cfg)
    cin, fh, fw = _map_hw(backbone, 3, size)
    if h.type == "regression":
        head: nn.Module = RegressionHead(cin, num_keypoints, (fh, fw), h.reduce, h.hidden)
    elif h.type == "simplebaseline":
        head = SimpleBaselineHead(cin, num_keypoints, h.deconv_layers, h.deconv_channels, h.deconv_kernel)
    else:
        head = GRMIHead(cin, num_keypoints, h.channels)
    model = PoseModel(backbone, head, h.type)
    meta: dict[str, Any] = {"type": h.type, "num_keypoints": num_keypoints}
    if h.type != "regression":
        _, mh, _ = _map_hw(model, 3, size)
        meta["stride"] = size[0] / mh
    if h.type == "simplebaseline":
        meta.update(sigma=h.sigma, refine=h.refine)
    if h.type == "grmi":
        meta["radius"] = h.radius
    return model, meta
