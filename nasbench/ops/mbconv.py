"""Inverted residual blocks shared by the operator-choice spaces.

:class:`MBConv`: Sandler et al., "MobileNetV2" (arXiv 1801.04381), section
3.3; used as ``MB{t}_K{k}`` by NAS-Bench-Macro (ReLU) and by SPOS / BN-NAS
(ReLU6). :class:`MBConvSE` / :class:`DepthwiseSeparableSE`: the
EfficientNet-style blocks with squeeze-and-excitation and swish (SiLU) of
the DNA / BossNAS MBConv space (Tan & Le, arXiv 1905.11946; [BOSS]
``searching/bossnas/models/operations/mbconv_ops.py``).
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


# ---------------------------------------------------------------------------- MBConv with SE (EfficientNet style)
def make_divisible(v: float, divisor: int = 8) -> int:
    """``v`` rounded to the nearest multiple of ``divisor`` (at least ``divisor``), never below 90% of ``v``.

    The channel rounding of MnasNet/EfficientNet (and of timm, which the
    BossNAS MBConv ops use for the expanded width).
    """
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return int(new_v)


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation: ``x * sigmoid(expand(act(reduce(mean_hw(x)))))``.

    ``[N, channels, H, W]`` -> same shape; ``reduce``/``expand`` are 1x1 convs
    with bias, ``channels -> reduced -> channels``.
    """

    def __init__(self, channels: int, reduced: int, act=nn.SiLU):
        super().__init__()
        self.conv_reduce = nn.Conv2d(channels, reduced, 1, bias=True)
        self.act = act(inplace=True)
        self.conv_expand = nn.Conv2d(reduced, channels, 1, bias=True)

    def forward(self, x):
        s = x.mean((2, 3), keepdim=True)
        return x * self.conv_expand(self.act(self.conv_reduce(s))).sigmoid()


def projection_shortcut(inp: int, oup: int, stride: int) -> nn.Module | None:
    """BossNAS's MBConv shortcut for a shape change: [AvgPool2d(2, ceil) if stride 2] + [conv1x1 + BN if inp != oup].

    None (identity) when ``stride == 1`` and ``inp == oup``.
    """
    layers = []
    if stride == 2:
        layers.append(nn.AvgPool2d(2, 2, ceil_mode=True, count_include_pad=False))
    elif stride != 1:
        raise ValueError(f"projection_shortcut: stride must be 1 or 2, got {stride}")
    if inp != oup:
        layers += [nn.Conv2d(inp, oup, 1, bias=False), nn.BatchNorm2d(oup)]
    return nn.Sequential(*layers) if layers else None


class MBConvSE(nn.Module):
    """Inverted residual with SE, ``MB{t}_k{k}``: pw 1x1 + BN + act -> dw kxk + BN + act -> SE -> pw-linear 1x1 + BN.

    ``[N, inp, H, W]`` -> ``[N, oup, H/s, W/s]``. Hidden width
    ``make_divisible(inp * t, 8)``; SE reduces to ``round(inp * se_ratio)``
    channels (of the *input* width, as timm's ``resolve_se_args`` does); no
    conv has a bias except the SE's.

    Shortcut:
        ``"projection"`` (BossNAS's supernet op): always residual; when the
        shape changes the input goes through ``downsample`` (given, so that
        the candidates of one layer can share it, or built by
        :func:`projection_shortcut`).
        ``"identity"`` (EfficientNet/timm): residual only when ``stride == 1``
        and ``inp == oup``.
    """

    def __init__(self, inp: int, oup: int, stride: int, t: float, k: int, se_ratio: float = 0.25, act=nn.SiLU,
                 shortcut: str = "projection", downsample: nn.Module | None = None):
        super().__init__()
        if shortcut not in ("projection", "identity"):
            raise ValueError(f"MBConvSE: shortcut must be 'projection' or 'identity', got {shortcut!r}")
        mid = make_divisible(inp * t)
        self.conv_pw = nn.Conv2d(inp, mid, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(mid)
        self.act1 = act(inplace=True)
        self.conv_dw = nn.Conv2d(mid, mid, k, stride, k // 2, groups=mid, bias=False)
        self.bn2 = nn.BatchNorm2d(mid)
        self.act2 = act(inplace=True)
        self.se = SqueezeExcite(mid, max(1, round(inp * se_ratio)), act) if se_ratio else None
        self.conv_pwl = nn.Conv2d(mid, oup, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(oup)
        same = stride == 1 and inp == oup
        self.has_residual = shortcut == "projection" or same
        if shortcut == "projection" and not same and downsample is None:
            downsample = projection_shortcut(inp, oup, stride)
        self.downsample = downsample if self.has_residual and not same else None

    @property
    def last_bn(self) -> nn.BatchNorm2d:
        """The BN after the pw-linear conv."""
        return self.bn3

    def forward(self, x):
        y = self.act1(self.bn1(self.conv_pw(x)))
        y = self.act2(self.bn2(self.conv_dw(y)))
        if self.se is not None:
            y = self.se(y)
        y = self.bn3(self.conv_pwl(y))
        if not self.has_residual:
            return y
        return y + (x if self.downsample is None else self.downsample(x))


class DepthwiseSeparableSE(nn.Module):
    """``MB1_k{k}`` with SE: dw kxk + BN + act -> SE -> pw 1x1 + BN (no activation after it).

    ``[N, inp, H, W]`` -> ``[N, oup, H/s, W/s]``; residual only when ``stride == 1`` and ``inp == oup``.
    """

    def __init__(self, inp: int, oup: int, stride: int = 1, k: int = 3, se_ratio: float = 0.25, act=nn.SiLU):
        super().__init__()
        self.conv_dw = nn.Conv2d(inp, inp, k, stride, k // 2, groups=inp, bias=False)
        self.bn1 = nn.BatchNorm2d(inp)
        self.act1 = act(inplace=True)
        self.se = SqueezeExcite(inp, max(1, round(inp * se_ratio)), act) if se_ratio else None
        self.conv_pw = nn.Conv2d(inp, oup, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(oup)
        self.has_residual = stride == 1 and inp == oup

    def forward(self, x):
        y = self.act1(self.bn1(self.conv_dw(x)))
        if self.se is not None:
            y = self.se(y)
        y = self.bn2(self.conv_pw(y))
        return x + y if self.has_residual else y
