"""Weight-sharing supernet of operator-choice spaces (SPOS, BN-NAS).

Every searchable layer is a :class:`ChoiceBlock` holding one module per
candidate operator; exactly one of them runs in a forward pass. The network
around the blocks (stem, head, classifier) is the space's own standalone
network class, so the supernet and a standalone subnet share parameter names
up to the ``candidates.<i>`` level and :meth:`ChoiceSupernet.export` copies
weights one to one.

Source: Guo et al., "Single Path One-Shot Neural Architecture Search with
Uniform Sampling" (arXiv 1904.00420), section 3; BN-NAS (arXiv 2108.07375)
builds on the same supernet (METHODS.md section 2).
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Iterator

import torch
import torch.nn as nn

from .base import Supernet

if TYPE_CHECKING:
    from ..spaces.op_choice import OpChoiceSpace

log = logging.getLogger(__name__)


class ChoiceBlock(nn.Module):
    """One searchable layer: candidate operators, one active at a time.

    Args:
        candidates: ``{gene value: module}`` in gene order; every module maps
            the layer's input ``[N, inp, H, W]`` to its output ``[N, oup, H/s, W/s]``.
    Raises:
        ValueError: no candidates.
    """

    def __init__(self, candidates: dict[int, nn.Module]):
        super().__init__()
        if not candidates:
            raise ValueError("ChoiceBlock needs at least one candidate operator")
        self.values = tuple(int(v) for v in candidates)
        self.index = {v: i for i, v in enumerate(self.values)}
        self.candidates = nn.ModuleList(candidates.values())
        self.active = self.values[0]

    def op(self, value: int) -> nn.Module:
        """The candidate module of gene ``value``."""
        return self.candidates[self.index[int(value)]]

    def forward(self, x):
        return self.candidates[self.index[self.active]](x)


class ChoiceSupernet(Supernet):
    """Single-path supernet of an :class:`~nasbench.spaces.op_choice.OpChoiceSpace`.

    ``set_active(arch)`` selects one candidate per layer; ``forward(x)`` maps
    ``[N, 3, H, W]`` images to ``[N, num_classes]`` logits of the active subnet.
    ``net.features[l]`` is the :class:`ChoiceBlock` of searchable layer ``l``.
    """

    def __init__(self, net: nn.Module, space: "OpChoiceSpace"):
        super().__init__()
        self.net = net
        self.space = space
        self.blocks = [m for m in net.features if isinstance(m, ChoiceBlock)]
        if len(self.blocks) != space.num_genes:
            raise ValueError(f"{space.name}: supernet has {len(self.blocks)} choice blocks, "
                             f"the space has {space.num_genes} genes")
        self.active = None

    def set_active(self, arch, side: str = "left"):
        """Activate subnet ``arch`` (validated). ``side`` exists for interface
        compatibility with width supernets and must be ``"left"``.

        Raises:
            ArchError: illegal architecture (wrong length, value or position).
            ValueError: ``side`` other than ``"left"``.
        """
        if side != "left":
            raise ValueError(f"operator-choice supernets have one path per architecture, got side={side!r}")
        arch = self.space.validate(arch)
        for block, v in zip(self.blocks, arch):
            block.active = v
        self.active = (arch, side)

    def set_sync_bn(self, enabled: bool):
        """Synchronise BN batch statistics across processes (DDP, CUDA only).

        Replaces every ``BatchNorm2d`` by ``nn.SyncBatchNorm`` in place (module
        identities change, so call it before building an optimizer). Every
        rank runs the same path, so the inactive candidates' BNs are skipped
        consistently. On CPU (gloo) the request is logged and ignored.
        """
        if not enabled:
            return
        if not torch.cuda.is_available():
            log.warning("sync_bn ignored for %s: nn.SyncBatchNorm needs CUDA", self.space.name)
            return
        self.net = nn.SyncBatchNorm.convert_sync_batchnorm(self.net)
        self.blocks = [m for m in self.net.features if isinstance(m, ChoiceBlock)]

    def forward(self, x):
        return self.net(x)

    def candidate_ops(self) -> Iterator[tuple[int, int, nn.Module]]:
        """``(layer, gene value, module)`` for every candidate operator."""
        for layer, block in enumerate(self.blocks):
            for v, m in zip(block.values, block.candidates):
                yield layer, v, m

    @torch.no_grad()
    def export(self, arch, side: str = "left") -> nn.Module:
        """Standalone network of ``arch`` (``space.build(arch)``) with the supernet's weights.

        Parameters and BN buffers of the stem/head and of the chosen candidate
        of every layer are copied; the result computes the same function as
        the supernet with ``arch`` active (tested).
        """
        arch = self.space.validate(arch)
        sub = self.space.build(arch)
        src = self.net.state_dict()
        feature_idx = {id(b): i for i, b in enumerate(self.net.features)}
        layer_of = {feature_idx[id(b)]: layer for layer, b in enumerate(self.blocks)}
        state = {}
        for key in sub.state_dict():
            parts = key.split(".")
            if parts[0] == "features" and int(parts[1]) in layer_of:
                layer = layer_of[int(parts[1])]
                i = self.blocks[layer].index[arch[layer]]
                src_key = ".".join(parts[:2] + ["candidates", str(i)] + parts[2:])
            else:
                src_key = key
            state[key] = src[src_key]
        sub.load_state_dict(state)
        return sub
