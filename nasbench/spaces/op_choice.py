"""Operator-choice search spaces: one candidate operator per searchable layer.

The base class of the SPOS-style spaces (NAS-Bench-Macro, the BN-NAS ImageNet
space). A subclass describes its layers (:meth:`OpChoiceSpace.layer_shapes`),
its candidate operators (:meth:`OpChoiceSpace.make_op`) and the fixed network
around them (:meth:`OpChoiceSpace.make_network`); from these the base class
builds both the standalone network of one architecture and the weight-sharing
:class:`~nasbench.supernets.choice.ChoiceSupernet`, and a per-(layer, op)
FLOPs lookup table measured by counting the candidate modules (BN-NAS's
``op_flops_dict``, METHODS.md 2.4, built for the exact shapes of the space).

Every candidate operator module exposes ``last_bn``: the BatchNorm after its
final convolution (None for a parameter-free identity), which BN-NAS trains
and scores.
"""
from __future__ import annotations

from functools import cached_property

import torch
import torch.nn as nn

from .base import SearchSpace


def conv_out_size(size: int, k: int, stride: int, pad: int) -> int:
    """Output side length of a ``k x k`` convolution with ``stride`` and ``pad`` on a ``size`` input."""
    return (size + 2 * pad - k) // stride + 1


def stage_layer_shapes(stages, first_channels: int, input_size: int) -> list[tuple[int, int, int, int]]:
    """``(inp, oup, stride, input H = W)`` of every searchable layer of a MobileNet-style body.

    ``stages``: ``(out channels, layers, first stride)`` per stage; the body starts after a
    stride-2 3x3 stem (and any fixed block that keeps the size) with ``first_channels``
    channels on an ``input_size`` image; every layer is a 3x3-padded convolution.
    """
    out, ch = [], first_channels
    size = conv_out_size(input_size, 3, 2, 1)
    for c, n, s in stages:
        for i in range(n):
            stride = s if i == 0 else 1
            out.append((ch, c, stride, size))
            ch, size = c, conv_out_size(size, 3, stride, 1)
    return out


class OpChoiceSpace(SearchSpace):
    """Base of operator-choice spaces (see module doc).

    Subclasses set ``name``, ``input_size``, ``identity_value`` (the gene value
    of the identity operator, or None) and ``benchmark`` (the tabular benchmark
    with ground truth, or None) and implement :meth:`choices`,
    :meth:`layer_shapes`, :meth:`make_op` and :meth:`make_network`.
    """

    family = "op_choice"
    identity_value: int | None = None
    input_size = 32
    num_classes = 10

    # -- subclass interface ---------------------------------------------------
    def layer_shapes(self) -> list[tuple[int, int, int, int]]:
        """Per searchable layer: ``(inp channels, oup channels, stride, input H = W)``."""
        raise NotImplementedError

    def make_op(self, layer: int, value: int) -> nn.Module:
        """Module of operator ``value`` at searchable layer ``layer`` (with a ``last_bn`` attribute)."""
        raise NotImplementedError

    def make_network(self, layers: list[nn.Module], num_classes: int) -> nn.Module:
        """The fixed network around ``layers`` (one module per searchable layer).

        The result has a ``features`` ``nn.Sequential`` that contains the given
        layer modules in order (it may hold fixed blocks too) and maps
        ``[N, 3, input_size, input_size]`` to ``[N, num_classes]``.
        """
        raise NotImplementedError

    # -- networks -------------------------------------------------------------
    def build(self, arch, num_classes: int | None = None) -> nn.Module:
        """Standalone network of ``arch``. Raises :class:`ArchError` for an illegal arch."""
        arch = self.validate(arch)
        layers = [self.make_op(i, v) for i, v in enumerate(arch)]
        return self.make_network(layers, self.num_classes if num_classes is None else num_classes)

    def build_supernet(self):
        """:class:`~nasbench.supernets.choice.ChoiceSupernet` with every candidate of every layer."""
        from ..supernets.choice import ChoiceBlock, ChoiceSupernet
        blocks = [ChoiceBlock({v: self.make_op(i, v) for v in self.choices(i)}) for i in range(self.num_genes)]
        return ChoiceSupernet(self.make_network(blocks, self.num_classes), self)

    def cost(self, arch) -> tuple[int, int]:
        """``(flops, params)`` of ``arch`` (MACs for one image, parameter count)."""
        return self.flops(arch), self.params(arch)

    # -- FLOPs lookup table ---------------------------------------------------
    def count_flops_lut(self) -> tuple[int, list[dict]]:
        """Per-(layer, op) MACs measured by counting modules on the meta device.

        Returns ``(base, table)``: ``table[l][v]`` are the conv + linear MACs
        of operator ``v`` at layer ``l`` for its input ``[1, inp, H, W]``;
        ``base`` are the MACs outside the searchable layers (stem, fixed
        blocks, head, classifier), measured as a whole network's count minus
        its layers. ``flops(arch) == base + sum_l table[l][arch[l]]``
        (checked against counting whole standalone networks in the tests).
        """
        from ..metrics.flops import count_macs
        table = []
        with torch.device("meta"):
            for i, (inp, _, _, size) in enumerate(self.layer_shapes()):
                table.append({v: count_macs(self.make_op(i, v), (inp, size, size)) for v in self.choices(i)})
            arch = tuple(self.choices(i)[0] for i in range(self.num_genes))
            total = count_macs(self.build(arch), (3, self.input_size, self.input_size))
        base = total - sum(table[i][v] for i, v in enumerate(arch))
        return int(base), table

    @cached_property
    def flops_lut(self) -> tuple[int, list[dict]]:
        """Cached :meth:`count_flops_lut`."""
        return self.count_flops_lut()

    def lut_flops(self, arch) -> int:
        """MACs of ``arch`` from the lookup table (no network is built)."""
        arch = self.validate(arch)
        base, table = self.flops_lut
        return int(base + sum(table[i][v] for i, v in enumerate(arch)))

    def count_params_lut(self) -> tuple[int, list[dict]]:
        """Per-(layer, op) parameter counts, counted on the meta device.

        Returns ``(base, table)``: ``table[l][v]`` = parameters of operator
        ``v`` at layer ``l``; ``base`` = everything outside the searchable
        layers (the network built with no layers).
        ``params(arch) == base + sum_l table[l][arch[l]]``.
        """
        from ..metrics.flops import count_params
        with torch.device("meta"):
            table = [{v: count_params(self.make_op(i, v)) for v in self.choices(i)} for i in range(self.num_genes)]
            base = count_params(self.make_network([], self.num_classes))
        return int(base), table

    @cached_property
    def params_lut(self) -> tuple[int, list[dict]]:
        """Cached :meth:`count_params_lut`."""
        return self.count_params_lut()

    def flops(self, arch) -> int:
        """Conv + linear MACs of ``arch`` for one ``input_size`` image (counted lookup table)."""
        return self.lut_flops(arch)

    def params(self, arch) -> int:
        """All parameters of ``arch``, BN affine and classifier bias included (counted lookup table)."""
        arch = self.validate(arch)
        base, table = self.params_lut
        return int(base + sum(table[i][v] for i, v in enumerate(arch)))

    @property
    def base_flops(self) -> int:
        """MACs outside the searchable layers (stem, fixed blocks, head, classifier)."""
        return self.flops_lut[0]

    @property
    def base_params(self) -> int:
        """Parameters outside the searchable layers."""
        return self.params_lut[0]
