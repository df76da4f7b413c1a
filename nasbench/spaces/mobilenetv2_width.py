"""MobileNetV2 ImageNet width space (BCNet/BCNetV2, METHODS.md 1.2 and 1.5).

25 searchable dimensions, as traced by BCNetV2's ``get_channel_choices``: the
stem (shared with the first block's depthwise conv), the first block's output,
the hidden width of each of the 16 expansion blocks, the output of each of the
6 stages (tied by residual adds inside a stage) and the 1x1 head conv. Each
dimension has ``bins`` bins (20 in the papers); ``width_mult`` scales the
reference network (1.5 for BCNetV2's 1.5x supernet), and ``min_bins`` enlarges
the supernet by ``(bins + min_bins) / bins`` on top (METHODS.md 1.2).
Input 224x224, 1000 classes by default.
"""
from __future__ import annotations

import torch.nn as nn

from ..registry import SPACES
from .channel_bench_macro import InvertedResidual
from .width import WidthSpace

# (expansion t, output channels c, blocks n, first stride s) of MobileNetV2 after the first block.
_STAGES = [(6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]


def _divisible(v, d=8):
    """Round ``v`` to the nearest multiple of ``d`` (never below 90% of ``v``), as in MobileNetV2."""
    new = max(d, int(v + d / 2) // d * d)
    return new + d if new < 0.9 * v else new


class _FirstBlock(nn.Module):
    """MobileNetV2's t=1 block: 3x3 depthwise on the stem width, 1x1 project."""

    def __init__(self, b, in_dim, out_dim):
        super().__init__()
        self.conv = nn.Sequential(
            b.conv(in_dim, in_dim, 3, 1, depthwise=True), b.bn(in_dim), nn.ReLU6(inplace=True),
            b.conv(in_dim, out_dim, 1), b.bn(out_dim))

    def forward(self, x):
        return self.conv(x)


class MobileNetV2Width(nn.Module):
    """MobileNetV2 written against a width builder; ``plan`` lists (in, hidden, out, stride)."""

    def __init__(self, b, plan, head_in, head_dim, num_classes):
        super().__init__()
        self.stem = nn.Sequential(b.conv(None, 0, 3, 2), b.bn(0), nn.ReLU6(inplace=True))
        blocks = [_FirstBlock(b, 0, 1)]
        blocks += [InvertedResidual(b, i, h, o, s) for i, h, o, s in plan]
        self.features = nn.Sequential(*blocks)
        self.head = nn.Sequential(b.conv(head_in, head_dim, 1), b.bn(head_dim), nn.ReLU6(inplace=True),
                                  nn.AdaptiveAvgPool2d(1))
        self.classifier = b.linear(head_dim, num_classes)

    def forward(self, x):
        return self.classifier(self.head(self.features(self.stem(x))).flatten(1))


@SPACES.register("mobilenetv2_width")
class MobileNetV2WidthSpace(WidthSpace):
    """MobileNetV2 width space for ImageNet (25 dims, ``bins`` bins each).

    Args:
        bins, min_bins, num_classes: see :class:`~nasbench.spaces.width.WidthSpace`.
        width_mult: reference width multiplier (1.0 or BCNetV2's 1.5).
        input_size: input resolution in pixels (224 for ImageNet).
        variant: unused (accepted so configs can share a ``space`` section).
    """

    def __init__(self, bins: int = 20, min_bins: int = 0, num_classes: int = 1000,
                 width_mult: float = 1.0, input_size: int = 224, variant=None):
        self.name = f"mobilenetv2_width_{width_mult:g}x"
        self.input_size = int(input_size)
        ref = [_divisible(32 * width_mult), _divisible(16 * width_mult)]
        plan, prev_dim = [], 1
        for t, c, n, s in _STAGES:
            out_dim = len(ref)
            ref.append(_divisible(c * width_mult))
            for i in range(n):
                hid_dim = len(ref)
                ref.append(ref[prev_dim] * t)
                plan.append((prev_dim, hid_dim, out_dim, s if i == 0 else 1))
                prev_dim = out_dim
        self._plan, self._head_in = plan, prev_dim
        self._head_dim = len(ref)
        ref.append(_divisible(1280 * max(1.0, width_mult)))
        self.ref_channels = ref
        super().__init__(bins=bins, min_bins=min_bins, num_classes=num_classes)

    def network(self, builder):
        return MobileNetV2Width(builder, self._plan, self._head_in, self._head_dim, self.num_classes)
