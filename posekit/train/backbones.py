"""Backbones in plain torch: a MobileNetV2-style network and a small ResNet, optionally with CoordConv inputs.

Every backbone maps (N, C_in, H, W) to a feature map (N, out_channels, H / stride, W / stride).  ``output_stride``
below the natural 32 keeps later stages at full resolution with dilated convolutions instead of striding.
"""

from __future__ import annotations

import torch
from torch import nn


class CoordConv(nn.Module):
    """Append two channels holding the pixel's x and y, each from -1 (left / top) to 1 (right / bottom)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        ys = torch.linspace(-1.0, 1.0, h, dtype=x.dtype, device=x.device).view(1, 1, h, 1).expand(n, 1, h, w)
        xs = torch.linspace(-1.0, 1.0, w, dtype=x.dtype, device=x.device).view(1, 1, 1, w).expand(n, 1, h, w)
        return torch.cat([x, xs, ys], dim=1)


def conv_bn(cin: int, cout: int, k: int = 3, stride: int = 1, dilation: int = 1, groups: int = 1,
            act: type[nn.Module] | None = nn.ReLU6) -> nn.Sequential:
    """k x k convolution (same padding) + batch norm [+ activation]."""
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, k, stride, padding=dilation * (k - 1) // 2, dilation=dilation, groups=groups,
                  bias=False),
        nn.BatchNorm2d(cout),
    ]
    if act is not None:
        layers.append(act(inplace=True))
    return nn.Sequential(*layers)


class _StrideBudget:
    """Tracks the accumulated stride; strides past ``output_stride`` turn into dilation."""

    def __init__(self, output_stride: int) -> None:
        if output_stride not in (4, 8, 16, 32):
            raise ValueError(f"output_stride must be 4, 8, 16 or 32, got {output_stride}")
        self.limit, self.stride, self.dilation = output_stride, 1, 1

    def take(self, s: int) -> tuple[int, int]:
        """(stride, dilation) for a layer that would stride by ``s``."""
        dilation = self.dilation
        if self.stride * s > self.limit:
            self.dilation *= s
            return 1, dilation
        self.stride *= s
        return s, dilation


def _make_divisible(v: float, divisor: int = 8) -> int:
    return max(divisor, int(v + divisor / 2) // divisor * divisor)


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expand, 3x3 depthwise, 1x1 linear projection; residual when shapes match."""

    def __init__(self, cin: int, cout: int, stride: int, dilation: int, expand: int) -> None:
        super().__init__()
        hidden = cin * expand
        layers = [] if expand == 1 else [conv_bn(cin, hidden, 1)]
        layers += [conv_bn(hidden, hidden, 3, stride, dilation, groups=hidden), conv_bn(hidden, cout, 1, act=None)]
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x) if self.residual else self.block(x)


# (expansion, channels, repeats, stride) of MobileNetV2 (Sandler et al., 2018), without the final 1x1 conv
MOBILENETV2_STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
                      (6, 320, 1, 1))


class MobileNetV2(nn.Module):
    """MobileNetV2 features scaled by ``width``; out_channels = 320 * width (rounded to 8)."""

    def __init__(self, in_channels: int = 3, width: float = 1.0, output_stride: int = 32) -> None:
        super().__init__()
        budget = _StrideBudget(output_stride)
        cin = _make_divisible(32 * width)
        s, _ = budget.take(2)
        layers: list[nn.Module] = [conv_bn(in_channels, cin, 3, s)]
        for t, c, n, stride in MOBILENETV2_STAGES:
            cout = _make_divisible(c * width)
            for i in range(n):
                s, d = budget.take(stride if i == 0 else 1)
                layers.append(InvertedResidual(cin, cout, s, d, t))
                cin = cout
        self.features = nn.Sequential(*layers)
        self.out_channels, self.stride = cin, budget.stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


class BasicBlock(nn.Module):
    """ResNet basic block: two 3x3 convolutions with a (projected when needed) shortcut."""

    def __init__(self, cin: int, cout: int, stride: int, dilation: int) -> None:
        super().__init__()
        self.body = nn.Sequential(conv_bn(cin, cout, 3, stride, dilation, act=nn.ReLU),
                                  conv_bn(cout, cout, 3, 1, dilation, act=None))
        self.shortcut = nn.Identity() if stride == 1 and cin == cout else conv_bn(cin, cout, 1, stride, act=None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.shortcut(x))


class ResNet(nn.Module):
    """A small ResNet: a stride-4 stem of two 3x3 convolutions, then one stage per entry of ``widths`` with
    ``blocks`` basic blocks each (default one; the first stage keeps the resolution, the others halve it)."""

    def __init__(self, in_channels: int = 3, widths: tuple[int, ...] = (32, 64, 128, 256),
                 blocks: tuple[int, ...] = (), output_stride: int = 32) -> None:
        super().__init__()
        blocks = blocks or (1,) * len(widths)
        if len(widths) != len(blocks):
            raise ValueError(f"resnet widths {widths} and blocks {blocks} must have the same length")
        budget = _StrideBudget(output_stride)
        s1, _ = budget.take(2)
        s2, _ = budget.take(2)
        layers: list[nn.Module] = [conv_bn(in_channels, widths[0], 3, s1, act=nn.ReLU),
                                   conv_bn(widths[0], widths[0], 3, s2, act=nn.ReLU)]
        cin = widths[0]
        for i, (c, n) in enumerate(zip(widths, blocks)):
            for j in range(n):
                s, d = budget.take(2 if i > 0 and j == 0 else 1)
                layers.append(BasicBlock(cin, c, s, d))
                cin = c
        self.features = nn.Sequential(*layers)
        self.out_channels, self.stride = cin, budget.stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


def build_backbone(name: str, coordconv: bool = False, output_stride: int = 32, width: float = 1.0,
                   widths: tuple[int, ...] = (32, 64, 128, 256), blocks: tuple[int, ...] = ()) -> nn.Module:
    """A backbone by name ("mobilenetv2" uses ``width``; "resnet" uses ``widths`` and ``blocks``), with
    CoordConv channels in front when asked.  The result has ``out_channels`` and ``stride``."""
    cin = 5 if coordconv else 3
    if name == "mobilenetv2":
        net: nn.Module = MobileNetV2(cin, width, output_stride)
    elif name == "resnet":
        net = ResNet(cin, tuple(widths), tuple(blocks), output_stride)
    else:
        raise ValueError(f"unknown backbone {name!r}; use 'mobilenetv2' or 'resnet'")
    if not coordconv:
        return net
    wrapped = nn.Sequential(CoordConv(), net)
    wrapped.out_channels, wrapped.stride = net.out_channels, net.stride
    return wrapped
