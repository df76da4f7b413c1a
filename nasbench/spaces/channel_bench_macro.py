"""Channel-Bench-Macro width search spaces (``mobilenet`` and ``resnet``).

Source: xiusu/Channel-Bench-Macro ``model.py`` and ``README.md`` (BCNet,
arXiv 2105.10533, Sec. 5.1). An architecture is the benchmark's 7-digit key;
digit ``d_l`` in 1..4 keeps ``d_l / 4`` of layer ``l``'s maximum width, i.e. 4
bins per dimension. 4^7 = 16,384 networks per space, trained on CIFAR-10
(32x32 input). The standalone networks here reproduce the benchmark's
``params`` and ``flops`` (MACs of conv and linear layers) exactly for every key
(``tests/test_channel_bench_macro.py``).
"""
from __future__ import annotations

import torch.nn as nn

from ..errors import ArchError
from ..registry import SPACES
from .base import short_repr
from .width import WidthSpace


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expand, 3x3 depthwise (stride ``s``), 1x1 project.

    Dims ``(in, hidden, out)``; identity shortcut when ``in == out`` and stride 1.
    """

    def __init__(self, b, in_dim, hid_dim, out_dim, stride):
        super().__init__()
        self.conv = nn.Sequential(
            b.conv(in_dim, hid_dim, 1), b.bn(hid_dim), nn.ReLU(inplace=True),
            b.conv(hid_dim, hid_dim, 3, stride, depthwise=True), b.bn(hid_dim), nn.ReLU(inplace=True),
            b.conv(hid_dim, out_dim, 1), b.bn(out_dim))
        self.use_shortcut = in_dim == out_dim and stride == 1

    def forward(self, x):
        return x + self.conv(x) if self.use_shortcut else self.conv(x)


class BasicBlock(nn.Module):
    """ResNet block: two 3x3 conv+BN, ReLU after the (optional) residual add."""

    def __init__(self, b, in_dim, hid_dim, out_dim, stride, residual):
        super().__init__()
        self.conv = nn.Sequential(
            b.conv(in_dim, hid_dim, 3, stride), b.bn(hid_dim), nn.ReLU(inplace=True),
            b.conv(hid_dim, out_dim, 3), b.bn(out_dim))
        self.residual = residual
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.relu(x + self.conv(x)) if self.residual else self.relu(self.conv(x))


class CBMMobileNet(nn.Module):
    """Channel-Bench-Macro MobileNet: stem 3x3 s2 -> 4 inverted residuals -> 1x1 conv -> GAP -> FC.

    Dims: 0 stem/blocks 1-2 (tied by residuals), 1-3 hidden of blocks 1-3,
    4 output of blocks 3-4, 5 hidden of block 4, 6 head conv.
    Input ``[N, 3, 32, 32]`` -> logits ``[N, num_classes]``.
    """

    def __init__(self, b, num_classes=10):
        super().__init__()
        self.stem = nn.Sequential(b.conv(None, 0, 3, 2), b.bn(0), nn.ReLU(inplace=True))
        self.features = nn.Sequential(
            InvertedResidual(b, 0, 1, 0, 1), InvertedResidual(b, 0, 2, 0, 1),
            InvertedResidual(b, 0, 3, 4, 2), InvertedResidual(b, 4, 5, 4, 1))
        self.out = nn.Sequential(b.conv(4, 6, 1), b.bn(6), nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1))
        self.classifier = b.linear(6, num_classes)

    def forward(self, x):
        return self.classifier(self.out(self.features(self.stem(x))).flatten(1))


class CBMResNet(nn.Module):
    """Channel-Bench-Macro ResNet: stem 3x3 s2 -> 5 basic blocks -> GAP -> FC.

    Dims: 0 stem/blocks 1-2, 1-2 hidden of blocks 1-2, 3 hidden of the
    stride-2 block (no shortcut), 4 output of blocks 3-5, 5-6 hidden of blocks 4-5.
    Input ``[N, 3, 32, 32]`` -> logits ``[N, num_classes]``.
    """

    def __init__(self, b, num_classes=10):
        super().__init__()
        self.stem = nn.Sequential(b.conv(None, 0, 3, 2), b.bn(0), nn.ReLU(inplace=True))
        self.features = nn.Sequential(
            BasicBlock(b, 0, 1, 0, 1, True), BasicBlock(b, 0, 2, 0, 1, True),
            BasicBlock(b, 0, 3, 4, 2, False), BasicBlock(b, 4, 5, 4, 1, True),
            BasicBlock(b, 4, 6, 4, 1, True))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = b.linear(4, num_classes)

    def forward(self, x):
        return self.classifier(self.pool(self.features(self.stem(x))).flatten(1))


_VARIANTS = {
    "mobilenet": ([128, 768, 768, 768, 256, 1536, 1024], CBMMobileNet),
    "resnet": ([256, 256, 256, 512, 512, 512, 512], CBMResNet),
}


@SPACES.register("channel_bench_macro")
class ChannelBenchMacroSpace(WidthSpace):
    """Channel-Bench-Macro space ``variant`` in {'mobilenet', 'resnet'}.

    Keys are 7-digit strings such as ``"4432214"``; architectures are tuples
    of ints 1..4 (bins kept per layer, 4 bins = the benchmark's maximum width).
    ``bins`` must stay 4 to match the benchmark; ``min_bins`` enlarges the
    supernet as BCNetV2 does (min_bins=1: 5/4 of the maximum width) while the
    architectures and standalone networks stay the benchmark's.

    Raises:
        ArchError: unknown variant, bins != 4, or a malformed key.
    """

    input_size = 32

    def __init__(self, variant: str = "mobilenet", bins: int = 4, min_bins: int = 0,
                 num_classes: int = 10):
        if variant not in _VARIANTS:
            raise ArchError(f"channel_bench_macro: unknown variant {variant!r}; use one of {sorted(_VARIANTS)}")
        if bins != 4:
            raise ArchError("channel_bench_macro: the benchmark has 4 width choices per layer; set bins: 4")
        self.variant = variant
        self.name = self.benchmark = f"channel_bench_macro/{variant}"
        self.ref_channels, self._net_cls = _VARIANTS[variant]
        super().__init__(bins=bins, min_bins=min_bins, num_classes=num_classes)

    def network(self, builder):
        return self._net_cls(builder, self.num_classes)

    def encode(self, arch) -> str:
        return "".join(str(c) for c in self.validate(arch))

    def decode(self, key) -> tuple:
        key = str(key)
        if len(key) != self.num_genes or not (key.isascii() and key.isdigit()):
            raise ArchError(f"{self.name}: key {short_repr(key)} must be {self.num_genes} digits, each in 1..4")
        for i, ch in enumerate(key):
            if int(ch) not in self.choices(i):
                raise ArchError(f"{self.name}: key {short_repr(key)}: digit {i + 1} is {ch}, allowed values are 1..4")
        return tuple(int(ch) for ch in key)
