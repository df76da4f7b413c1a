"""NATS-Bench size search space (Ss), CIFAR-10.

Source: NATS-Bench (Dong et al., TPAMI 2021, arXiv 2009.00437) size search
space as used by BossNAS ([BOSS] changlin31/BossNAS,
``searching/bossnas/models/supernets/nats_supernet.py`` and
``ranking_nats/nats_cifar10_acc_rank.yml``). The cell topology is fixed (the
best topology-space cell); 5 layers have a searchable width, each one of
8, 16, ..., 64 channels, so the space has 8^5 = 32,768 architectures.

An architecture is the tuple of the 5 channel counts, e.g. ``(16, 16, 16, 16, 64)``;
its key is the benchmark's ``'c1:c2:c3:c4:c5'`` string, e.g. ``"16:16:16:16:64"``.

No standalone network or cost model is implemented yet: :meth:`build`,
:meth:`flops` and :meth:`params` raise :class:`NotImplementedError`.
"""
from __future__ import annotations

from ..errors import ArchError
from ..registry import SPACES
from .base import SearchSpace

#: Channel choices of every searchable layer (channels, ascending).
CHANNELS = (8, 16, 24, 32, 40, 48, 56, 64)
#: Number of searchable layers.
NUM_LAYERS = 5
#: Datasets this space is defined for here (the BossNAS ranking file is CIFAR-10).
VARIANTS = ("cifar10",)


@SPACES.register("nats_sss")
class NATSSizeSpace(SearchSpace):
    """NATS-Bench Ss: 5 genes, each a channel count in ``(8, 16, ..., 64)``.

    Args:
        variant: ``"cifar10"`` (or None/``""`` for it).
        num_classes: classifier outputs (10 for CIFAR-10); stored only.

    Raises:
        ArchError: unknown variant; malformed keys or out-of-range genes
            (from :meth:`decode` / :meth:`validate`).
    """

    name = "nats_sss/cifar10"
    input_size = 32

    def __init__(self, variant: str | None = None, num_classes: int = 10):
        if variant in (None, ""):
            variant = "cifar10"
        if variant not in VARIANTS:
            raise ArchError(f"nats_sss: unknown variant {variant!r}; use one of {list(VARIANTS)}")
        self.variant = variant
        self.name = f"nats_sss/{variant}"
        self.num_classes = int(num_classes)

    # -- genes ----------------------------------------------------------------
    @property
    def num_genes(self) -> int:
        return NUM_LAYERS

    def choices(self, i: int):
        if not 0 <= int(i) < NUM_LAYERS:
            raise IndexError(f"{self.name}: gene index {i} out of range 0..{NUM_LAYERS - 1}")
        return CHANNELS

    # -- keys -----------------------------------------------------------------
    def encode(self, arch) -> str:
        """Architecture (tuple or key) -> ``'c1:c2:c3:c4:c5'``; raises :class:`ArchError`."""
        return ":".join(str(c) for c in self.validate(arch))

    def decode(self, key) -> tuple:
        """``'c1:c2:c3:c4:c5'`` -> tuple of 5 channel counts.

        Raises:
            ArchError: not 5 ``:``-separated integers, or a count not in 8, 16, ..., 64
                (the message names the key and the bad position).
        """
        if not isinstance(key, str):
            raise ArchError(f"{self.name}: key {key!r} must be a string 'c1:c2:c3:c4:c5'")
        parts = key.split(":")
        if len(parts) != NUM_LAYERS:
            raise ArchError(f"{self.name}: key {key!r} must have {NUM_LAYERS} ':'-separated channel counts, "
                            f"got {len(parts)}")
        arch = []
        for i, p in enumerate(parts):
            if not p.isdigit():
                raise ArchError(f"{self.name}: key {key!r}: layer {i + 1} is {p!r}, not an integer")
            c = int(p)
            if c not in CHANNELS:
                raise ArchError(f"{self.name}: key {key!r}: layer {i + 1} has {c} channels, "
                                f"allowed values are {list(CHANNELS)}")
            arch.append(c)
        return tuple(arch)

    # -- cost and networks ----------------------------------------------------
    def build(self, arch, num_classes: int | None = None):
        raise NotImplementedError(f"{self.name}: no standalone network is implemented for the NATS-Bench "
                                  "size space (only tabular lookups are supported)")

    def flops(self, arch) -> int:
        raise NotImplementedError(f"{self.name}: no FLOPs model is implemented for the NATS-Bench size space "
                                  "(the BossNAS ranking file has accuracies only)")

    def params(self, arch) -> int:
        raise NotImplementedError(f"{self.name}: no parameter count is implemented for the NATS-Bench size "
                                  "space (the BossNAS ranking file has accuracies only)")


__all__ = ["NATSSizeSpace", "CHANNELS", "NUM_LAYERS"]
