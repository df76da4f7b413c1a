"""BossNAS view of the NATS-Bench size space: blocks, block keys and the slimmable supernet.

Source: [BOSS] changlin31/BossNAS, ``searching/bossnas/models/supernets/nats_supernet.py``,
``siamese_supernets/siamese_supernets_nats.py``, ``configs/nats_c10_*.py`` /
``nats_c100_*.py`` and ``ranking_nats/`` (METHODS.md section 3).

The architectures, keys (``c1:c2:c3:c4:c5``), standalone network and cost
model are NATS-Bench's and come unchanged from
:class:`~nasbench.spaces.nats_sss.NATSSizeSpace`; this space adds what only
BossNAS needs:

* the block grouping of the 5 searchable layers, which depends on the
  dataset: ``[2, 2, 1]`` for CIFAR-10 = (cell c1, res c2), (cell c3, res c4),
  (cell c5); ``[2, 1, 2]`` for CIFAR-100 = (cell c1, res c2), (cell c3), (res c4, cell c5);
* block keys, the format of the rating files: the width indices (0..7 for
  8..64 channels) of the block's layers concatenated, e.g. ``16:24:32:40:48``
  -> ``"12"``, ``"34"``, ``"5"`` on CIFAR-10 (:class:`~nasbench.spaces.blockwise.BlockwiseMixin`);
* :meth:`BossNASNATSSpace.build_supernet`: the weight-sharing
  :class:`~nasbench.supernets.bossnas_nats.BossNASNATSSupernet` (slimmable
  convs, switchable BN, per-block per-width 1x1 adapters to the projector width).

Why a separate registered space rather than more options on ``nats_sss``:
the grouping is a property of the BossNAS method (its block-wise training
and rating), not of the NATS-Bench space, whose benchmark, keys and
networks stay identical; keeping it here leaves ``nats_sss`` a plain
benchmark space that every other searcher uses, while ``bossnas_nats`` is a
subclass, so it is accepted wherever a ``nats_sss`` space is (same keys,
same ``benchmark``).
"""
from __future__ import annotations

from ..errors import ArchError
from ..registry import SPACES
from .blockwise import BlockwiseMixin
from .nats_sss import LAYER_KINDS, NATSSizeSpace

#: Block grouping (layers per block) of each dataset, from the reference supernet.
GROUPINGS = {"cifar10": (2, 2, 1), "cifar100": (2, 1, 2)}
#: Input width of the BossNAS projector (``NonLinearNeckSimCLR`` in_channels of the NATS configs).
PROJECTOR_CHANNELS = 2048


@SPACES.register("bossnas_nats")
class BossNASNATSSpace(BlockwiseMixin, NATSSizeSpace):
    """NATS-Bench Ss grouped into BossNAS blocks.

    Args:
        variant: ``"cifar10"`` (default) or ``"cifar100"``; picks the grouping
            and the number of classes.
        grouping: layers per block, overriding the dataset's (positive ints
            summing to 5), e.g. ``[2, 1, 2]``.
        projector_channels: output width of the per-block adapters (2048 in the reference).
        projector_hidden: hidden width of the per-block projector and predictor MLPs (4096 in the reference).
        projection_dim: output width of the projector and predictor (256 in the reference).
        num_classes: classifier outputs (default 10 or 100 by variant).

    Raises:
        ArchError: unknown variant, or a grouping that does not split the 5 layers.
    """

    family = "blockwise"

    def __init__(self, variant: str | None = None, grouping=None, projector_channels: int = PROJECTOR_CHANNELS,
                 num_classes: int | None = None, projector_hidden: int = 4096, projection_dim: int = 256):
        super().__init__(variant, num_classes=num_classes)
        self.name = f"bossnas_nats/{self.variant}"
        sizes = GROUPINGS[self.variant] if grouping is None else grouping
        try:
            sizes = tuple(int(n) for n in sizes)
        except (TypeError, ValueError):
            raise ArchError(f"{self.name}: grouping {grouping!r} is not a list of ints") from None
        if any(n < 1 for n in sizes) or sum(sizes) != len(LAYER_KINDS):
            raise ArchError(f"{self.name}: grouping {list(sizes)} must be positive layer counts summing to "
                            f"{len(LAYER_KINDS)}, e.g. {list(GROUPINGS[self.variant])}")
        self.block_sizes = sizes
        self.projector_channels = int(projector_channels)
        if self.projector_channels < 1:
            raise ArchError(f"{self.name}: projector_channels must be positive, got {projector_channels!r}")
        self.projector_hidden, self.projection_dim = int(projector_hidden), int(projection_dim)
        if self.projector_hidden < 1 or self.projection_dim < 1:
            raise ArchError(f"{self.name}: projector_hidden and projection_dim must be positive, got "
                            f"{projector_hidden!r}, {projection_dim!r}")

    def block_layers(self, block: int) -> list[str]:
        """Kinds (``"cell"``/``"res"``) of the layers of ``block``."""
        return list(LAYER_KINDS[self.block_slice(block)])

    def build_supernet(self, with_head: bool = True):
        """The :class:`~nasbench.supernets.bossnas_nats.BossNASNATSSupernet` of this space."""
        from ..supernets.bossnas_nats import BossNASNATSSupernet
        return BossNASNATSSupernet(self, with_head=with_head)


__all__ = ["BossNASNATSSpace", "GROUPINGS", "PROJECTOR_CHANNELS"]
