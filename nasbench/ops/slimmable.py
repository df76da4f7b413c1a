"""Slimmable convolutions and switchable BatchNorm (Yu et al., "Slimmable Neural Networks", arXiv 1812.08928).

A slimmable layer owns the weights of its widest version and runs on the
*leftmost* channels: a conv with ``cin`` inputs and ``cout`` outputs uses
``weight[:cout, :cin]``. A switchable BatchNorm keeps one independent
``nn.BatchNorm2d`` per width (its own affine parameters and running
statistics), because the statistics of a narrow subnet differ from those of
the same channels inside a wider one. BossNAS's NATS-Bench Ss supernet uses
both (METHODS.md section 3.2).

Widths are chosen per call (the input width is read from the input tensor),
so one module serves every subnet without state.
"""
from __future__ import annotations

from typing import Sequence

import torch.nn as nn
import torch.nn.functional as F


class SlimmableConv2d(nn.Conv2d):
    """Conv2d on the leftmost channels: ``forward(x, cout)`` maps ``[N, cin, H, W]`` -> ``[N, cout, H', W']``.

    ``cin = x.shape[1]`` must be at most ``in_channels`` and ``cout`` at most
    ``out_channels``; ``cout=None`` means the full width.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int | None = None, bias: bool = False):
        super().__init__(in_channels, out_channels, kernel_size, stride,
                         kernel_size // 2 if padding is None else padding, bias=bias)

    def forward(self, x, cout: int | None = None):
        cin = x.shape[1]
        cout = self.out_channels if cout is None else int(cout)
        if cin > self.in_channels or not 0 < cout <= self.out_channels:
            raise ValueError(f"SlimmableConv2d({self.in_channels}, {self.out_channels}): cannot run "
                             f"{cin} -> {cout} channels")
        bias = None if self.bias is None else self.bias[:cout]
        return F.conv2d(x, self.weight[:cout, :cin], bias, self.stride, self.padding, self.dilation)


class SlimmableLinear(nn.Linear):
    """Linear layer on the leftmost input features: ``[N, fin]`` -> ``[N, out_features]``, ``fin = x.shape[1]``."""

    def forward(self, x):
        fin = x.shape[1]
        if fin > self.in_features:
            raise ValueError(f"SlimmableLinear({self.in_features}, {self.out_features}): input has {fin} features")
        return F.linear(x, self.weight[:, :fin], self.bias)


class SwitchableBatchNorm2d(nn.Module):
    """One ``nn.BatchNorm2d`` per width of ``widths``; the input's channel count picks it.

    ``bns[i]`` normalises inputs of ``widths[i]`` channels. ``forward(x)``
    raises ``ValueError`` for a channel count that is not one of ``widths``.
    """

    def __init__(self, widths: Sequence[int]):
        super().__init__()
        self.widths = tuple(int(w) for w in widths)
        if len(set(self.widths)) != len(self.widths):
            raise ValueError(f"SwitchableBatchNorm2d: repeated widths in {self.widths}")
        self.index = {w: i for i, w in enumerate(self.widths)}
        self.bns = nn.ModuleList(nn.BatchNorm2d(w) for w in self.widths)

    def bn(self, width: int) -> nn.BatchNorm2d:
        """The BatchNorm of ``width`` channels."""
        try:
            return self.bns[self.index[int(width)]]
        except KeyError:
            raise ValueError(f"SwitchableBatchNorm2d: no BN for {width} channels "
                             f"(widths {list(self.widths)})") from None

    def forward(self, x):
        return self.bn(x.shape[1])(x)


__all__ = ["SlimmableConv2d", "SlimmableLinear", "SwitchableBatchNorm2d"]
