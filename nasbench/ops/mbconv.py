"""The MobileNetV2 inverted residual block shared by the operator-choice spaces.

Sandler et al., "MobileNetV2" (arXiv 1801.04381), section 3.3; used as
``MB{t}_K{k}`` by NAS-Bench-Macro (ReLU) and by SPOS / BN-NAS (ReLU6).
"""
from __future__ import annotations

import torch.nn as nn


class MBConv(nn.Module):
    """Inverted residual ``MB{t}_K{k}``: [pw 1x1 + BN + act] -> dw kxk + BN + act -> pw-linear 1x1 + BN.

    ``[N, inp, H, W]`` -> ``[N, oup, H/s, W/s]`` with ``s = stride``; hidden
    width ``round(inp * t)``; the expand conv is omitted when ``t == 1``;
    identity shortcut when ``inp == oup`` and ``stride == 1``; no conv has a
    bias. Module names: ``conv.<i>`` of one ``nn.Sequential`` (with the expand
    conv: 0 pw conv, 1 BN, 2 act, 3 dw conv, 4 BN, 5 act, 6 pw-linear conv, 7 BN).

    Args:
        act: activation class (``nn.ReLU`` or ``nn.ReLU6``), built with ``inplace=True``.
    """

    def __init__(self, inp: int, oup: int, stride: int, t: float, k: int, act=nn.ReLU):
        super().__init__()
        hidden = round(inp * t)
        expand = [nn.Conv2d(inp, hidden, 1, 1, 0, bias=False), nn.BatchNorm2d(hidden), act(inplace=True)]
        self.conv = nn.Sequential(
            *(expand if t != 1 else []),
            nn.Conv2d(hidden, hidden, k, stride, k // 2, groups=hidden, bias=False), nn.BatchNorm2d(hidden),
            act(inplace=True),
            nn.Conv2d(hidden, oup, 1, 1, 0, bias=False), nn.BatchNorm2d(oup))
        self.use_shortcut = inp == oup and stride == 1

    @property
    def last_bn(self) -> nn.BatchNorm2d:
        """The BN after the pw-linear conv (the one BN-NAS trains and scores)."""
        return self.conv[-1]

    def forward(self, x):
        return x + self.conv(x) if self.use_shortcut else self.conv(x)
