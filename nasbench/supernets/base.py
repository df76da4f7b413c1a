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

Both have ``space`` (their :class:`~nasbench.spaces.base.SearchSpace`) and
``set_sync_bn(enabled)`` (SyncBatchNorm under DDP where the supernet supports it).
"""
from __future__ import annotations

import torch.nn as nn

__all__ = ["Supernet", "DifferentiableSupernet"]


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
