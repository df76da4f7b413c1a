"""The DARTS cell operations, the mixed operation and its partial-channel form.

Liu et al., "DARTS: Differentiable Architecture Search" (arXiv 1806.09055),
section 3 and appendix A.1: eight candidate operations per edge. Xu et al.,
"PC-DARTS" (arXiv 1907.05737), section 3.2: a mixed operation that runs on
``1/K`` of the channels and shuffles the result. BNAS-v2 (arXiv 2009.08886,
METHODS.md section 4) uses both in its broad convolutional network.

Every operation maps ``[N, C, H, W]`` to ``[N, C, H/s, W/s]`` (``s`` = stride,
1 or 2; ``H`` and ``W`` even when ``s`` = 2). ``affine=False`` is the search
setting (BN without learnable scale/shift), ``affine=True`` the retraining one.
"""
from __future__ import annotations

from collections import namedtuple

import torch
import torch.nn as nn

from ..errors import ConfigError

#: DARTS genotype: ``normal``/``reduce`` are ``[(op name, input state)] * 8``, the concats ``[2, 3, 4, 5]``
#: (BNAS-v2 calls the normal cell the convolution cell and the reduce cell the enhancement cell).
Genotype = namedtuple("Genotype", "normal normal_concat reduce reduce_concat")

#: candidate operations of a DARTS edge, in the order of the architecture weights' last axis
PRIMITIVES = ("none", "max_pool_3x3", "avg_pool_3x3", "skip_connect",
              "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5")


class Zero(nn.Module):
    """The ``none`` operation: zeros of the output shape (the edge is absent)."""

    def __init__(self, stride: int):
        super().__init__()
        self.stride = stride

    def forward(self, x):
        return x[:, :, ::self.stride, ::self.stride].mul(0.0)


class ReLUConvBN(nn.Module):
    """ReLU -> ``k x k`` conv (no bias) -> BN: ``[N, C_in, H, W]`` -> ``[N, C_out, H', W']``."""

    def __init__(self, C_in: int, C_out: int, kernel_size: int, stride: int, padding: int, affine: bool = True):
        super().__init__()
        self.op = nn.Sequential(nn.ReLU(inplace=False),
                                nn.Conv2d(C_in, C_out, kernel_size, stride, padding, bias=False),
                                nn.BatchNorm2d(C_out, affine=affine))

    def forward(self, x):
        return self.op(x)


class FactorizedReduce(nn.Module):
    """Halve H and W with two offset 1x1 stride-2 convs: ``[N, C_in, H, W]`` -> ``[N, C_out, H/2, W/2]``.

    The second conv sees the input shifted by one pixel, so together they cover
    every position. ``C_out`` must be even; ``H``, ``W`` even.
    """

    def __init__(self, C_in: int, C_out: int, affine: bool = True):
        super().__init__()
        if C_out % 2:
            raise ValueError(f"FactorizedReduce needs an even C_out, got {C_out}")
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = nn.Conv2d(C_in, C_out // 2, 1, stride=2, bias=False)
        self.conv_2 = nn.Conv2d(C_in, C_out // 2, 1, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(C_out, affine=affine)

    def forward(self, x):
        x = self.relu(x)
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(x[:, :, 1:, 1:])], dim=1))


class DilConv(nn.Module):
    """ReLU -> depthwise ``k x k`` conv (dilation ``d``) -> pointwise conv -> BN."""

    def __init__(self, C_in, C_out, kernel_size, stride, padding, dilation, affine=True):
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(C_in, C_in, kernel_size, stride, padding, dilation=dilation, groups=C_in, bias=False),
            nn.Conv2d(C_in, C_out, 1, bias=False),
            nn.BatchNorm2d(C_out, affine=affine))

    def forward(self, x):
        return self.op(x)


class SepConv(nn.Module):
    """Two stacked :class:`DilConv` with dilation 1; only the first has the stride (DARTS' separable conv)."""

    def __init__(self, C_in, C_out, kernel_size, stride, padding, affine=True):
        super().__init__()
        self.op = nn.Sequential(DilConv(C_in, C_in, kernel_size, stride, padding, 1, affine),
                                DilConv(C_in, C_out, kernel_size, 1, padding, 1, affine))

    def forward(self, x):
        return self.op(x)


def make_op(name: str, C: int, stride: int, affine: bool) -> nn.Module:
    """The operation ``name`` (one of :data:`PRIMITIVES`) on ``C`` channels.

    Raises:
        ValueError: unknown name.
    """
    if name == "none":
        return Zero(stride)
    if name == "max_pool_3x3":
        return nn.MaxPool2d(3, stride=stride, padding=1)
    if name == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False)
    if name == "skip_connect":
        return nn.Identity() if stride == 1 else FactorizedReduce(C, C, affine=affine)
    if name in ("sep_conv_3x3", "sep_conv_5x5"):
        k = int(name[-1])
        return SepConv(C, C, k, stride, k // 2, affine=affine)
    if name in ("dil_conv_3x3", "dil_conv_5x5"):
        k = int(name[-1])
        return DilConv(C, C, k, stride, (k // 2) * 2, 2, affine=affine)
    raise ValueError(f"unknown DARTS operation {name!r}; expected one of {', '.join(PRIMITIVES)}")


#: stems of DARTS-cell networks: ``cifar`` (one 3x3 conv + BN, full resolution, ``s0 = s1``) and
#: ``imagenet`` (DARTS' ``NetworkImageNet``: two stride-2 3x3 convs for ``s0`` at 1/4, a third for ``s1`` at 1/8)
STEMS = ("cifar", "imagenet")


def stem_plan(stem: str, C: int, stem_multiplier: int = 3) -> tuple[int, bool, int]:
    """``(C_stem, reduction_prev of cell 0, total stride)`` of a stem kind (:data:`STEMS`).

    ``cifar``: ``stem_multiplier * C`` channels at full resolution (stride 1); ``imagenet``:
    ``C`` channels, ``s0`` at 1/4 and ``s1`` at 1/8 (stride 8), as DARTS' ``NetworkImageNet``.

    Raises:
        ConfigError: an unknown stem kind.
    """
    if stem == "cifar":
        return stem_multiplier * int(C), False, 1
    if stem == "imagenet":
        return int(C), True, 8
    raise ConfigError(f"stem must be one of {list(STEMS)}, got {stem!r}")


def add_stems(net: nn.Module, stem: str, C_stem: int, in_channels: int = 3) -> None:
    """Give ``net`` its stem modules, named as the references name them.

    ``cifar``: ``net.stem`` = 3x3 conv (``in_channels -> C_stem``) + BN. ``imagenet``:
    ``net.stem0`` = 3x3 conv stride 2 to ``C_stem // 2`` + BN + ReLU + 3x3 conv stride 2 to
    ``C_stem`` + BN; ``net.stem1`` = ReLU + 3x3 conv stride 2 + BN (DARTS ``NetworkImageNet``,
    BNAS-v2 ``NetworkImageNet_b2`` and ``model_search_imagenet_b.py``). :func:`run_stems` applies them.
    """
    if stem == "cifar":
        net.stem = nn.Sequential(nn.Conv2d(in_channels, C_stem, 3, padding=1, bias=False), nn.BatchNorm2d(C_stem))
        return
    stem_plan(stem, C_stem)  # validates the kind
    net.stem0 = nn.Sequential(
        nn.Conv2d(in_channels, C_stem // 2, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(C_stem // 2),
        nn.ReLU(inplace=True),
        nn.Conv2d(C_stem // 2, C_stem, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(C_stem))
    net.stem1 = nn.Sequential(nn.ReLU(inplace=True), nn.Conv2d(C_stem, C_stem, 3, stride=2, padding=1, bias=False),
                              nn.BatchNorm2d(C_stem))


def run_stems(net: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(s0, s1)`` of the stems :func:`add_stems` gave ``net``: ``x`` ``[N, in, H, W]`` ->
    ``[N, C_stem, H, W]`` twice (cifar) or ``[N, C_stem, H/4, W/4]``, ``[N, C_stem, H/8, W/8]`` (imagenet)."""
    if hasattr(net, "stem"):
        s = net.stem(x)
        return s, s
    s0 = net.stem0(x)
    return s0, net.stem1(s0)


def cell_plan(C: int, layers: int, reductions, C_stem: int, reduction_prev: bool = False,
              multiplier: int = 4) -> list:
    """Per cell ``(C_pp, C_p, C, reduction, reduction_prev)`` of a chain of DARTS cells (one channel plan).

    The bookkeeping of DARTS ``cnn/model.py`` (``NetworkCIFAR``/``NetworkImageNet``) and of the
    BNAS-v2 ``model_b.py`` convolution block, which share it: a cell in ``reductions`` doubles
    ``C`` and has stride 2; every cell outputs ``multiplier * C`` channels (the concat of its 4 nodes); cell
    ``i`` reads the outputs of cells ``i-2`` and ``i-1``, the first cells the stem outputs
    (``C_stem`` channels each). ``reduction_prev`` of cell 0 is True when the stem's ``s0`` has twice
    the resolution of ``s1`` (the ImageNet stems), so its ``s0`` goes through FactorizedReduce.
    """
    C_pp = C_p = int(C_stem)
    C_cur, red_prev, out = int(C), bool(reduction_prev), []
    for i in range(int(layers)):
        red = i in reductions
        if red:
            C_cur *= 2
        out.append((C_pp, C_p, C_cur, red, red_prev))
        C_pp, C_p, red_prev = C_p, multiplier * C_cur, red
    return out


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """ShuffleNet's channel shuffle: ``[N, g*c, H, W]`` viewed as ``[N, g, c, H, W]``, transposed, flattened."""
    n, ch, h, w = x.shape
    return x.view(n, groups, ch // groups, h, w).transpose(1, 2).reshape(n, ch, h, w)


class MixedOp(nn.Module):
    """All :data:`PRIMITIVES` on one edge, mixed by architecture weights (DARTS eq. 2).

    ``forward(x, weights)``: ``x`` ``[N, C, H, W]``, ``weights`` ``[len(PRIMITIVES)]``
    (softmax of the edge's alphas) -> ``[N, C, H/s, W/s]``. Pooling outputs get a
    non-affine BN, as in DARTS' search network.

    With ``partial > 1`` (PC-DARTS, ``K``) the candidates run on the first
    ``C/K`` channels only; the other channels bypass them (2x2 max-pooled when
    ``stride`` = 2), are concatenated behind, and the result is channel-shuffled
    with ``K`` groups.

    Raises:
        ValueError: ``C`` not divisible by ``partial``.
    """

    def __init__(self, C: int, stride: int, partial: int = 1):
        super().__init__()
        if C % partial:
            raise ValueError(f"partial channels: C={C} is not divisible by K={partial}")
        self.partial, self.stride = int(partial), stride
        c = C // self.partial
        ops = []
        for name in PRIMITIVES:
            op = make_op(name, c, stride, affine=False)
            if "pool" in name:
                op = nn.Sequential(op, nn.BatchNorm2d(c, affine=False))
            ops.append(op)
        self._ops = nn.ModuleList(ops)
        self.bypass_pool = nn.MaxPool2d(2, 2) if stride == 2 and self.partial > 1 else None

    def forward(self, x, weights):
        if self.partial == 1:
            return sum(w * op(x) for w, op in zip(weights, self._ops))
        c = x.shape[1] // self.partial
        head, rest = x[:, :c], x[:, c:]
        out = sum(w * op(head) for w, op in zip(weights, self._ops))
        if self.bypass_pool is not None:
            rest = self.bypass_pool(rest)
        return channel_shuffle(torch.cat([out, rest], dim=1), self.partial)


def drop_path(x: torch.Tensor, drop_prob: float, generator=None) -> torch.Tensor:
    """Zero whole samples of ``x`` ``[N, ...]`` with probability ``drop_prob`` and rescale the rest."""
    if drop_prob <= 0.0:
        return x
    keep = 1.0 - drop_prob
    mask = torch.empty(x.shape[0], *([1] * (x.dim() - 1)), device=x.device, dtype=x.dtype)
    mask.bernoulli_(keep, generator=generator)
    return x / keep * mask
