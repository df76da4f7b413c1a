"""Weight-sharing supernet of width search spaces (BCNet, AutoSlim, uniform single path).

The network itself is built by the space (:meth:`WidthSpace.build_supernet`)
from dynamic-width layers; this wrapper activates one subnet at a time by
setting the channel window of every searchable dimension.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from .base import Supernet

from typing import TYPE_CHECKING

from ..ops.dynamic import DynamicBatchNorm2d, DynamicConv2d, dynamic_modules, set_windows

if TYPE_CHECKING:
    from ..spaces.width import WidthSpace


class WidthSupernet(Supernet):
    """Weight-sharing supernet of a :class:`WidthSpace`; runs one subnet at a time.

    ``set_active(arch, side)`` activates the left (``[0, w)``) or right
    (``[C - w, C)``) channel windows of ``arch``; ``forward(x)`` maps
    ``[N, 3, H, W]`` images to ``[N, num_classes]`` logits of the active subnet.
    """

    def __init__(self, net: nn.Module, space: "WidthSpace"):
        super().__init__()
        self.net = net
        self.space = space
        self._dyn = dynamic_modules(net)
        self.active = None

    def set_active(self, arch, side: str = "left"):
        """Activate subnet ``arch`` on ``side`` ('left' or 'right')."""
        self.set_windows(self.space.windows(arch, side))
        self.active = (tuple(arch), side)

    def set_windows(self, windows):
        """Activate explicit per-dimension windows ``[(start, end), ...]``."""
        set_windows(self._dyn, windows)

    def set_sync_bn(self, enabled: bool):
        """Synchronise BN batch statistics across processes (DDP)."""
        for m in self._dyn:
            if isinstance(m, DynamicBatchNorm2d):
                m.sync = enabled

    def forward(self, x):
        return self.net(x)

    @torch.no_grad()
    def export(self, arch, side: str = "left") -> nn.Module:
        """Standalone network of ``arch`` with weights copied from the ``side`` window."""
        windows = self.space.windows(arch, side)
        sub = self.space.build(arch)
        subs = dict(sub.named_modules())
        for name, m in self.net.named_modules():
            if not hasattr(m, "out_win"):
                continue
            t = subs[name]
            (is_, ie) = windows[m.in_dim] if m.in_dim is not None else (0, None)
            (os_, oe) = windows[m.out_dim] if m.out_dim is not None else (0, None)
            if isinstance(m, DynamicBatchNorm2d):
                for key in ("weight", "bias", "running_mean", "running_var"):
                    getattr(t, key).copy_(getattr(m, key)[os_:oe])
            elif isinstance(m, DynamicConv2d) and m.depthwise:
                t.weight.copy_(m.weight[os_:oe])
            else:
                t.weight.copy_(m.weight[os_:oe, is_:ie])
                if m.bias is not None:
                    t.bias.copy_(m.bias[os_:oe])
        return sub
