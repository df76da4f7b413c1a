"""The Supernet protocol: one module holding the shared weights of a search space.

Two kinds exist (DESIGN.md, "Four small protocols"):

* :class:`Supernet` runs **one subnet at a time** (``single_path = True``):
  ``set_active(arch, side)`` selects it (BCNet's left/right channel window,
  SPOS's operator per layer), ``forward(x)`` runs it, ``export(arch, side)``
  returns the standalone network of ``arch`` with the shared weights copied.
* :class:`DifferentiableSupernet` runs **every path at once**, weighted by
  architecture parameters (DARTS): ``arch_parameters()`` are optimised by the
  algorithm (the weight optimizer leaves them out) and ``genotype()`` reads
  the discrete architecture they select.

A single-path supernet that BossNAS trains block by block also derives from
:class:`BlockwiseSupernet` (``forward_block``, ``project``, ``predict``,
``block_modules``, ``block_parameters``).

All have ``space`` (their :class:`~nasbench.spaces.base.SearchSpace`) and
``set_sync_bn(enabled)`` (SyncBatchNorm under DDP where the supernet supports it).
"""
from __future__ import annotations

import torch.nn as nn

__all__ = ["Supernet", "DifferentiableSupernet", "BlockwiseSupernet"]


class Supernet(nn.Module):
    """Base class of single-path supernets (width windows, operator choices).

    Subclasses implement :meth:`set_active` and :meth:`export`; ``forward``
    maps ``[N, 3, H, W]`` images to ``[N, num_classes]`` logits of the active subnet.
    """

    #: runs one subnet at a time (evaluators such as BN recalibration + accuracy need this)
    single_path = True
    space = None

    def set_active(self, arch, side: str = "left") -> None:
        """Activate subnet ``arch`` (``side``: ``"left"``/``"right"`` channel window for width
        supernets; operator supernets have only ``"left"``). Raises ArchError for an illegal arch."""
        raise NotImplementedError

    def export(self, arch, side: str = "left") -> nn.Module:
        """Standalone network of ``arch`` (``space.build(arch)``) with the shared weights copied."""
        raise NotImplementedError

    def set_sync_bn(self, enabled: bool) -> None:
        """Synchronise BN batch statistics across processes (DDP); default: no BN to sync."""


class DifferentiableSupernet(nn.Module):
    """Base class of DARTS-style supernets: every path runs, mixed by architecture parameters."""

    single_path = False
    space = None

    def arch_parameters(self) -> list[nn.Parameter]:
        """The architecture parameters (alpha, and beta with partial channels)."""
        raise NotImplementedError

    def genotype(self):
        """The discrete architecture the architecture parameters select (DARTS' argmax rule)."""
        raise NotImplementedError

    def set_sync_bn(self, enabled: bool) -> None:
        """Synchronise BN batch statistics across processes (DDP); default: no BN to sync."""


class BlockwiseSupernet:
    """Mixin of supernets trained block by block with a projector and predictor per block
    (BossNAS, METHODS.md 3.3; ``space.family == "blockwise"``). Used beside :class:`Supernet`.

    ``x`` below is the images ``[N, 3, H, W]`` for block 0 and the previous block's output
    for block ``b > 0``; ``path`` is the block's path (genes or block key; None: the active
    architecture's).
    """

    def forward_block(self, x, block: int, path=None):
        """Output feature map of ``block`` run on ``x`` with ``path``. Raises ArchError for a bad path."""
        raise NotImplementedError

    def project(self, x, block: int, path=None):
        """Projection ``[N, D]`` of ``block`` (block, adapter, projector) run on ``x`` with ``path``."""
        raise NotImplementedError

    def predict(self, x, block: int, path=None):
        """Online prediction ``[N, D]``: :meth:`project` followed by the block's predictor."""
        raise NotImplementedError

    def block_modules(self, block: int) -> list[nn.Module]:
        """Modules :meth:`predict` runs for ``block`` (a rating recalibrates their BNs)."""
        raise NotImplementedError

    def block_parameters(self, block: int):
        """Parameters that training ``block`` updates: those of :meth:`block_modules`, each once
        (modules may share weights, e.g. the projections of a layer's candidates)."""
        seen = set()
        for m in self.block_modules(block):
            for p in m.parameters():
                if id(p) not in seen:
                    seen.add(id(p))
                    yield p
