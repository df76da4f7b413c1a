"""Width (channel-number) search spaces and their weight-sharing supernets.

A width space has ``L`` searchable channel *dimensions* (convolutions tied by a
residual add share one dimension; a depthwise conv inherits its producer's).
Dimension ``l`` has a reference width ``C_l`` (the widest standalone network)
split into ``B`` channel bins. An architecture keeps ``c_l`` bins of each
dimension, ``c_l`` in ``[max(m, 1), B]`` where ``m`` is BCNetV2's minimum number
of bins (``m = 0`` for BCNet V1). Its standalone width is
``round(c_l * C_l / B)`` channels.

The supernet has ``B + m`` bins per dimension, i.e. it is ``(B + m) / B`` times
wider than the reference network (BCNetV2, arXiv 2203.13714, Sec. 3.3), so that
the left window ``[0, w)`` and the right window ``[C_sup - w, C_sup)`` of every
width together cover each channel equally often (METHODS.md 1.2).

A network family is written once against a *builder* (``conv``/``bn``/
``linear`` factories keyed by dimension ids); the same code yields the
standalone network (plain ``nn`` layers) and the supernet (dynamic layers), so
their parameter names match and a subnet can be exported from the supernet.
"""
from __future__ import annotations

import copy
import math
from typing import Sequence

import torch
import torch.nn as nn

from ..errors import ArchError
from ..ops.dynamic import DynamicBatchNorm2d, DynamicConv2d, DynamicLinear, dynamic_modules
from .base import SearchSpace


class StandaloneBuilder:
    """Builds plain layers; ``widths[dim]`` gives each dimension's channels."""

    def __init__(self, widths: Sequence[int], in_channels: int = 3):
        self.widths, self.in_channels = list(widths), in_channels

    def _ch(self, dim):
        return self.in_channels if dim is None else self.widths[dim]

    def conv(self, in_dim, out_dim, k, stride=1, depthwise=False):
        cout = self._ch(out_dim)
        groups = cout if depthwise else 1
        cin = cout if depthwise else self._ch(in_dim)
        return nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False)

    def bn(self, dim):
        return nn.BatchNorm2d(self._ch(dim))

    def linear(self, in_dim, num_classes):
        return nn.Linear(self._ch(in_dim), num_classes)


class SuperBuilder(StandaloneBuilder):
    """Builds dynamic-width layers of the supernet's widths, tagged with dims."""

    def conv(self, in_dim, out_dim, k, stride=1, depthwise=False):
        cout = self._ch(out_dim)
        cin = cout if depthwise else self._ch(in_dim)
        return DynamicConv2d(cin, cout, k, stride, k // 2, depthwise=depthwise,
                             in_dim=out_dim if depthwise else in_dim, out_dim=out_dim)

    def bn(self, dim):
        return DynamicBatchNorm2d(self._ch(dim), dim=dim)

    def linear(self, in_dim, num_classes):
        return DynamicLinear(self._ch(in_dim), num_classes, in_dim=in_dim)


class WidthSpace(SearchSpace):
    """Base class of width search spaces (see module docstring).

    Subclasses set ``ref_channels`` (list of ``C_l``), ``input_size`` (H = W of
    the input image, pixels) and implement :meth:`network`.

    Args:
        bins: ``B``, bins per dimension in the reference network.
        min_bins: ``m``, BCNetV2's minimum bins (0 = BCNet V1, no enlargement).
        num_classes: classifier outputs.
    Raises:
        ArchError: ``min_bins`` not in ``[0, bins]``.
    """

    name = "width"
    family = "width"
    ref_channels: Sequence[int] = ()
    input_size = 32

    def __init__(self, bins: int = 4, min_bins: int = 0, num_classes: int = 10):
        if not 0 <= min_bins <= bins:
            raise ArchError(f"{self.name}: min_bins={min_bins} must lie in [0, bins={bins}]")
        self.bins, self.min_bins, self.num_classes = int(bins), int(min_bins), int(num_classes)
        self._choices = tuple(range(max(self.min_bins, 1), self.bins + 1))
        self.total_bins = self.bins + self.min_bins
        self.super_channels = [int(math.ceil(c * self.total_bins / self.bins)) for c in self.ref_channels]
        self._cost = None

    # -- genes ----------------------------------------------------------------
    @property
    def num_genes(self) -> int:
        return len(self.ref_channels)

    def choices(self, i: int):
        return self._choices

    def channels(self, arch) -> list[int]:
        """Standalone channels per dimension: ``round(c_l * C_l / B)``."""
        arch = self.validate(arch)
        return [max(1, round(c * ref / self.bins)) for c, ref in zip(arch, self.ref_channels)]

    def windows(self, arch, side: str = "left") -> list[tuple[int, int]]:
        """Supernet channel window ``(start, end)`` per dimension.

        ``side='left'``: ``[0, w)``; ``side='right'``: ``[C_sup - w, C_sup)``,
        where ``w`` is the standalone width, so both paths have its exact shape.
        Raises ``ValueError`` for another side.
        """
        widths = self.channels(arch)
        if side == "left":
            return [(0, w) for w in widths]
        if side == "right":
            return [(cs - w, cs) for w, cs in zip(widths, self.super_channels)]
        raise ValueError(f"side must be 'left' or 'right', got {side!r}")

    # -- networks -------------------------------------------------------------
    def network(self, builder: StandaloneBuilder) -> nn.Module:
        """The family's network built with ``builder`` (implemented per space)."""
        raise NotImplementedError

    def build(self, arch, num_classes: int | None = None) -> nn.Module:
        """Standalone network of ``arch`` (the network the benchmark trained)."""
        space = self
        if num_classes is not None and num_classes != self.num_classes:
            space = copy.copy(self)
            space.num_classes, space._cost = int(num_classes), None
        return space.network(StandaloneBuilder(self.channels(arch)))

    def build_supernet(self):
        """Weight-sharing :class:`~nasbench.supernets.width.WidthSupernet` with
        ``(B + m) / B`` times the reference width."""
        from ..supernets.width import WidthSupernet
        return WidthSupernet(self.network(SuperBuilder(self.super_channels)), self)

    # -- cost model -----------------------------------------------------------
    def _layers(self):
        """Per dynamic layer: (kind, in_dim, out_dim, fixed in, fixed out, k*k, bias, H*W).

        Traced once from the supernet on the meta device (no memory, no compute).
        """
        if self._cost is None:
            with torch.device("meta"):
                net = self.network(SuperBuilder(self.super_channels))
            sizes = {}
            hooks = [m.register_forward_hook(
                lambda mod, inp, out: sizes.__setitem__(mod, out.shape[2] * out.shape[3] if out.dim() == 4 else 1))
                for m in dynamic_modules(net)]
            with torch.no_grad():
                net(torch.empty(1, 3, self.input_size, self.input_size, device="meta"))
            for h in hooks:
                h.remove()
            layers = []
            for m in dynamic_modules(net):
                if isinstance(m, DynamicBatchNorm2d):
                    layers.append(("bn", m.in_dim, m.in_dim, None, None, 0, False, 0))
                elif isinstance(m, DynamicConv2d):
                    kind = "dw" if m.depthwise else "conv"
                    layers.append((kind, m.in_dim, m.out_dim, m.in_channels, m.out_channels,
                                   m.kernel_size[0] * m.kernel_size[1], m.bias is not None, sizes[m]))
                else:
                    layers.append(("linear", m.in_dim, m.out_dim, m.in_features, m.out_features,
                                   1, m.bias is not None, 1))
            self._cost = layers
        return self._cost

    def cost(self, arch) -> tuple[int, int]:
        """``(flops, params)`` of the standalone network of ``arch``.

        FLOPs are multiply-accumulates of conv and linear layers for one
        ``input_size`` image (the Channel-Bench-Macro convention: BN, ReLU,
        pooling and bias additions are not counted); params count every
        parameter, BN affine ones included.
        """
        widths = self.channels(arch)
        flops = params = 0
        for kind, ind, outd, fin, fout, kk, bias, hw in self._layers():
            cin = fin if ind is None else widths[ind]
            cout = fout if outd is None else widths[outd]
            if kind == "bn":
                params += 2 * cin
                continue
            w = cout * kk if kind == "dw" else cin * cout * kk
            flops += w * hw
            params += w + (cout if bias else 0)
        return flops, params

    def flops(self, arch) -> int:
        return self.cost(arch)[0]

    def params(self, arch) -> int:
        return self.cost(arch)[1]

    def layer_flops(self) -> list[float]:
        """Full-width MACs attributed to each dimension (for BCNet's prior, METHODS.md 1.4).

        A layer coupling dims ``a -> b`` is attributed to its output dim ``b``
        (its input dim for the classifier). Returns a list of length ``L``.
        """
        out = [0.0] * self.num_genes
        for kind, ind, outd, fin, fout, kk, bias, hw in self._layers():
            if kind == "bn":
                continue
            cin = fin if ind is None else self.ref_channels[ind]
            cout = fout if outd is None else self.ref_channels[outd]
            w = cout * kk if kind == "dw" else cin * cout * kk
            out[outd if outd is not None else ind] += w * hw
        return out
