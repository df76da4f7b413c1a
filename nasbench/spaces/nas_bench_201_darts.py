"""NAS-Bench-201 cells searched by differentiable NAS (DARTS, PC-DARTS, BNAS-v2's CLR).

The same cell space, encoding and arch strings as
:class:`~nasbench.spaces.nas_bench_201.NASBench201Space` (6 genes, one of 5
operations each), with a DARTS supernet
(:class:`~nasbench.supernets.nas_bench_201.NB201SearchNetwork`: the
NAS-Bench-201 macro skeleton with ``N`` cells per stage) so that the
``bnas_v2`` algorithm (first/second-order DARTS, CLR, partial channels) trains
it and ``tools/search.py`` reads the argmax cell. The found cell is looked up
in the shipped benchmark ``nas_bench_201/imagenet16_120`` (the only
NAS-Bench-201 data here): its accuracies are ImageNet16-120's, while the
search runs on CIFAR-10, so they are ground truth for the cell, not for the
search task (Dong & Yang report the transfer of cell rankings across the three
datasets as high, Kendall tau about 0.8; arXiv 2001.00326 section 3).
"""
from __future__ import annotations

from ..errors import ConfigError
from ..registry import SPACES
from .nas_bench_201 import NASBench201Space

__all__ = ["NASBench201DartsSpace"]


@SPACES.register("nas_bench_201_darts")
class NASBench201DartsSpace(NASBench201Space):
    """NAS-Bench-201 cells with a DARTS supernet (module doc).

    Args:
        search_channels: base width C of the supernet (16 in the benchmark).
        cells_per_stage: search cells per stage N (5 in the benchmark; 1 or 2 on a CPU).
        partial: PC-DARTS partial-channel factor K (1 = off); must divide C.
        num_classes: classes of the search data (the supernet's classifier; also the cost model's).
        input_size: image side in pixels (cost model; 32 for CIFAR-10).
        init_channels: width C of the standalone network :meth:`build` retrains (16 in the benchmark).
        eval_cells_per_stage: its cells per stage N (5 in the benchmark); :meth:`flops` and
            :meth:`params` count this network.

    Raises:
        ConfigError: non-positive sizes or a ``partial`` that does not divide ``search_channels``.
    """

    family = "darts"
    benchmark = "nas_bench_201/imagenet16_120"

    def __init__(self, search_channels: int = 16, cells_per_stage: int = 5, partial: int = 1,
                 num_classes: int = 10, input_size: int = 32, init_channels: int = 16,
                 eval_cells_per_stage: int = 5):
        super().__init__("imagenet16_120", num_classes=num_classes, input_size=input_size,
                         init_channels=init_channels, eval_cells_per_stage=eval_cells_per_stage)
        self.search_channels, self.cells_per_stage, self.partial = int(search_channels), int(cells_per_stage), int(partial)
        if min(self.search_channels, self.cells_per_stage, self.partial) <= 0:
            raise ConfigError(f"space nas_bench_201_darts: search_channels, cells_per_stage and partial must be "
                              f"positive, got {search_channels}, {cells_per_stage}, {partial}")
        if self.search_channels % self.partial:
            raise ConfigError(f"space nas_bench_201_darts: partial {partial} must divide search_channels "
                              f"{search_channels}")

    def build_supernet(self):
        """The DARTS supernet :class:`~nasbench.supernets.nas_bench_201.NB201SearchNetwork`
        (its ``genotype()`` is already this space's 6-gene encoding)."""
        from ..supernets.nas_bench_201 import NB201SearchNetwork
        net = NB201SearchNetwork(self.search_channels, self.cells_per_stage, self.num_classes, self.partial)
        net.space = self
        return net
