"""DARTS' cell space with its standard evaluation networks (stacked normal and reduction cells).

Liu et al., "DARTS: Differentiable Architecture Search" (arXiv 1806.09055), section 3.3 and
appendix A.2; reference code quark0/darts ``cnn/model.py`` (``NetworkCIFAR``,
``NetworkImageNet``, ``AuxiliaryHeadCIFAR``, ``AuxiliaryHeadImageNet``), re-implemented here.

The architecture is the same 24-gene two-cell encoding as BNAS-v2's
(:class:`~nasbench.spaces.bnas_v2.DartsCellSpace`): ``Genotype.normal`` is the normal
cell, ``Genotype.reduce`` the reduction cell; string keys read ``normal=...;reduce=...``.
Every named genotype (DARTS_V1, DARTS_V2, the five BNAS-v2 ones) is accepted as ``--arch``.

The network shares its cell (:class:`~nasbench.spaces.bnas_v2.BroadCell`), its cell channel
plan (:func:`~nasbench.ops.darts.cell_plan`) and its stems
(:func:`~nasbench.ops.darts.add_stems`) with BNAS-v2's broad network. Where they differ:

* DARTS stacks ``layers`` cells and classifies the last one; reductions sit at cells
  ``layers // 3`` and ``2 * layers // 3``, and a reduction cell uses ``Genotype.reduce``.
* The broad network uses ``Genotype.normal`` for all its (deep) convolution cells, the
  reducing ones included, puts its reductions at the ends of ``pool_time`` equal blocks,
  and classifies the concatenation of taps from every block and from ``en_layers``
  stride-1 enhancement cells built from ``Genotype.reduce`` (its "broad" output).
* DARTS has an optional auxiliary head after the second reduction cell; the broad network has none.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch.nn as nn

from ..errors import ConfigError
from ..ops.darts import Genotype, add_stems, cell_plan, run_stems, stem_plan
from ..registry import SPACES
from .bnas_v2 import CONCAT, BroadCell, DartsCellSpace

#: names of the two cells in string keys and messages (cell 0 = Genotype.normal)
DARTS_CELLS = ("normal", "reduce")
_DARTS_CELL_LONG = ("normal cell (Genotype.normal)", "reduction cell (Genotype.reduce)")


class AuxiliaryHead(nn.Module):
    """DARTS' auxiliary classifier on the output of the second reduction cell.

    ``forward(x)``: ``[N, C, h, h]`` -> ``[N, num_classes]``. ReLU, 5x5 average pooling
    (stride 3 for ``cifar``, 2 for ``imagenet``; no padding), 1x1 conv to 128 + BN + ReLU,
    2x2 conv to 768 (+ BN for ``cifar`` only, as the reference, whose ImageNet head omits that
    BN) + ReLU, linear classifier. The pooling must leave 2x2 pixels: ``h`` = 8 (CIFAR at 32
    pixels) or ``h`` = 7 (ImageNet at 224); ``cnn/model.py`` ``AuxiliaryHeadCIFAR`` /
    ``AuxiliaryHeadImageNet``.
    """

    def __init__(self, C: int, num_classes: int, stem: str = "cifar"):
        super().__init__()
        imagenet = stem == "imagenet"
        layers = [nn.ReLU(inplace=True), nn.AvgPool2d(5, stride=2 if imagenet else 3, padding=0, count_include_pad=False),
                  nn.Conv2d(C, 128, 1, bias=False), nn.BatchNorm2d(128), nn.ReLU(inplace=True),
                  nn.Conv2d(128, 768, 2, bias=False)]
        if not imagenet:
            layers.append(nn.BatchNorm2d(768))
        layers.append(nn.ReLU(inplace=True))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(768, num_classes)

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))


@dataclass
class DartsPlan:
    """Channel plan of :class:`DartsNetwork`.

    Attributes:
        cells: per cell ``(C_pp, C_p, C, reduction, reduction_prev)`` (:func:`cell_plan`).
        reductions: the reduction cells (``layers // 3``, ``2 * layers // 3``).
        aux_after: the cell whose output feeds the auxiliary head (``2 * layers // 3``).
        C_aux: that output's channels; C_final: the last cell's output channels (classifier input).
        C_stem: stem output channels; stem: the stem kind.
    """

    cells: list = field(default_factory=list)
    reductions: tuple = ()
    aux_after: int = 0
    C_aux: int = 0
    C_final: int = 0
    C_stem: int = 0
    stem: str = "cifar"


def darts_plan(C: int, layers: int, stem: str = "cifar", stem_multiplier: int = 3) -> DartsPlan:
    """Channel plan of DARTS' evaluation network (``cnn/model.py`` ``NetworkCIFAR.__init__``).

    Raises:
        ConfigError: ``layers < 3`` (two distinct reduction cells are needed), an odd ``C``
            or an unknown stem.
    """
    C, layers = int(C), int(layers)
    if layers < 3:
        raise ConfigError(f"darts: layers={layers} must be at least 3 (reductions at layers//3 and 2*layers//3)")
    if C < 2 or C % 2:
        raise ConfigError(f"darts: init_channels={C} must be a positive even number")
    C_stem, red0, _ = stem_plan(stem, C, stem_multiplier)
    reductions = (layers // 3, 2 * layers // 3)
    cells = cell_plan(C, layers, reductions, C_stem, red0)
    mult = len(CONCAT)
    aux = 2 * layers // 3
    return DartsPlan(cells=cells, reductions=reductions, aux_after=aux, C_aux=mult * cells[aux][2],
                     C_final=mult * cells[-1][2], C_stem=C_stem, stem=stem)


class DartsNetwork(nn.Module):
    """DARTS' evaluation network: ``layers`` stacked cells of a genotype (``NetworkCIFAR`` / ``NetworkImageNet``).

    ``forward(x)``: ``x`` ``[N, in_channels, H, W]`` -> logits ``[N, num_classes]``; in training
    mode with an auxiliary head it returns ``(logits, aux_logits)`` (both ``[N, num_classes]``),
    which the retraining loss weights by ``retrain.auxiliary_weight``
    (:class:`~nasbench.algorithms.supervised.StandardAlgorithm`). Data flow (``stem="cifar"``,
    CIFAR-10, ``C=36``, ``layers=20``): stem 3x3 conv to ``3C`` at 32 px; cells 0-5 at ``C``
    (output ``4C``), cell 6 reduces to 16 px at ``2C``, cells 7-12, cell 13 reduces to 8 px at
    ``4C``, the auxiliary head reads cell 13's ``16C`` = 576 channels, cells 14-19, global
    average pooling, linear classifier on ``16C``. ``stem="imagenet"`` (``C=48``, ``layers=14``):
    the two-conv stems to ``C`` channels (``s0`` at 56 px, ``s1`` at 28 px from 224), the first cell
    reads ``s0`` through FactorizedReduce, reductions at cells 4 and 9 (14 and 7 px), the
    auxiliary head at 7 px. The reference pools the ImageNet output with ``AvgPool2d(7)``; here the
    pooling is global (the same at 224 pixels, and defined for any size).

    Drop path: ``drop_path_prob`` (the trainer ramps it per epoch from ``retrain.drop_path``);
    training mode only, never on identity skips (as ``cnn/model.py``).

    Args:
        genotype: a :class:`Genotype` (``normal`` = normal cell, ``reduce`` = reduction cell).
        C: init channels (36 CIFAR, 48 ImageNet); num_classes; layers: cells (20, 14);
        auxiliary: build the auxiliary head; stem: ``cifar`` | ``imagenet``;
        drop_path_prob: initial drop-path probability; in_channels: image channels.

    Raises:
        ConfigError: see :func:`darts_plan`.
    """

    def __init__(self, genotype: Genotype, C: int = 36, num_classes: int = 10, layers: int = 20,
                 auxiliary: bool = True, stem: str = "cifar", drop_path_prob: float = 0.0, in_channels: int = 3):
        super().__init__()
        plan = self.plan = darts_plan(C, layers, stem)
        self.drop_path_prob = float(drop_path_prob)
        add_stems(self, stem, plan.C_stem, in_channels)
        self.cells = nn.ModuleList(BroadCell(genotype.reduce if spec[3] else genotype.normal, *spec)
                                   for spec in plan.cells)
        self.auxiliary_head = AuxiliaryHead(plan.C_aux, num_classes, stem) if auxiliary else None
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(plan.C_final, num_classes)

    def forward(self, x):
        s0, s1 = run_stems(self, x)
        aux = None
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, self.drop_path_prob)
            if i == self.plan.aux_after and self.auxiliary_head is not None and self.training:
                aux = self.auxiliary_head(s1)
        logits = self.classifier(self.global_pooling(s1).flatten(1))
        return logits if aux is None else (logits, aux)


@SPACES.register("darts")
class DartsSpace(DartsCellSpace):
    """DARTS' cell space (normal + reduction cell, 24 genes) with DARTS' evaluation network as ``build``.

    Args:
        init_channels: ``C`` (36 for CIFAR-10, ``cnn/train.py``; 48 for ImageNet, ``train_imagenet.py``).
        layers: cells (20 CIFAR, 14 ImageNet). auxiliary: build the auxiliary head (both papers' settings).
        stem: ``cifar`` or ``imagenet`` (:data:`~nasbench.ops.darts.STEMS`).
        num_classes: classifier outputs; drop_path_prob: initial drop-path probability of built networks.
        input_size: image side in pixels for :meth:`flops` (a multiple of 4, or of 32 with ImageNet stems);
        in_channels: image channels.
        search_channels, search_layers: base width (16) and cells (8) of the search network
            (:meth:`build_supernet`, CIFAR stem); partial: its PC-DARTS factor K (1 = DARTS, 4 = PC-DARTS).

    ``params(arch)`` excludes the auxiliary head (DARTS' convention); ``tools/model_info.py``
    prints both.

    Raises:
        ConfigError: bad network settings (see :func:`darts_plan`) or ``input_size``.
    """

    name = "darts"
    cell_names = DARTS_CELLS
    cell_long = _DARTS_CELL_LONG

    def __init__(self, init_channels: int = 36, layers: int = 20, auxiliary: bool = True, stem: str = "cifar",
                 num_classes: int = 10, drop_path_prob: float = 0.0, input_size: int = 32, in_channels: int = 3,
                 search_channels: int = 16, search_layers: int = 8, partial: int = 1):
        self.search_channels, self.search_layers, self.partial = int(search_channels), int(search_layers), int(partial)
        if self.partial < 1 or self.search_channels % self.partial:
            raise ConfigError(f"darts: partial={partial} must be >= 1 and divide search_channels={search_channels}")
        if self.search_layers < 3:
            raise ConfigError(f"darts: search_layers={search_layers} must be at least 3")
        self.init_channels, self.layers, self.auxiliary = int(init_channels), int(layers), bool(auxiliary)
        self.stem, self.num_classes = str(stem), int(num_classes)
        self.drop_path_prob, self.input_size, self.in_channels = float(drop_path_prob), int(input_size), int(in_channels)
        darts_plan(self.init_channels, self.layers, self.stem)  # validates
        unit = 4 * stem_plan(self.stem, 1)[2]
        if self.input_size <= 0 or self.input_size % unit:
            raise ConfigError(f"darts: input_size={input_size} must be a positive multiple of {unit}")
        self._cost_cache: dict[tuple, tuple[int, int]] = {}

    def build_supernet(self):
        """DARTS' search network (:class:`~nasbench.supernets.darts.DartsSearchNetwork`): ``search_layers``
        cells at width ``search_channels``, PC-DARTS with ``partial > 1``. Its ``genotype()`` is
        turned into this space's encoding by :meth:`from_genotype`."""
        from ..supernets.darts import DartsSearchNetwork
        net = DartsSearchNetwork(self.search_channels, self.num_classes, self.search_layers, partial=self.partial)
        net.space = self
        return net

    def build(self, arch, num_classes: int | None = None) -> DartsNetwork:
        """Standalone :class:`DartsNetwork` of ``arch`` (random init; ``drop_path_prob`` of the space).

        Raises:
            ArchError: an illegal architecture.
        """
        return DartsNetwork(self.genotype(arch), C=self.init_channels,
                            num_classes=self.num_classes if num_classes is None else int(num_classes),
                            layers=self.layers, auxiliary=self.auxiliary, stem=self.stem,
                            drop_path_prob=self.drop_path_prob, in_channels=self.in_channels)


__all__ = ["DartsSpace", "DartsNetwork", "AuxiliaryHead", "DartsPlan", "darts_plan", "DARTS_CELLS"]
