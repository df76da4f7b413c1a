"""BNAS-v2 search space: two DARTS cells of a broad convolutional network (BCNN).

Ding et al., "BNAS-v2: Memory-efficient and Performance-collapse-prevented
Broad Neural Architecture Search" (arXiv 2009.08886; METHODS.md section 4).
Reference code: GitHub ``zixiangding/BNASv2``, ``BNASv2CLR/model_b.py``
(retraining network ``Network``, re-implemented here as :class:`BroadNetwork`)
and ``BNASv2CLR/genotypes.py`` (``Genotype``, found genotypes).

Cells
-----
Two DARTS cells are searched (DARTS, arXiv 1806.09055, section 2.1): the
**convolution cell** (stored in ``Genotype.normal``) used by the deep
convolution blocks, and the **enhancement cell** (stored in
``Genotype.reduce``; the names are swapped relative to their meaning, as in the
reference code). A cell has 2 input states (0, 1), 4 intermediate nodes
(states 2..5) and outputs the channel concat of states 2..5. Node ``i``
(0-based) sums two ops applied to two *different* earlier states
``j1 < j2 < i + 2``; an op is one of :data:`OPS7` (the DARTS primitives
without ``none``).

Architecture encoding (fixed; the supernet code depends on it)
---------------------------------------------------------------
A tuple of 24 ints; gene ``cell * 12 + node * 3 + k`` (cell 0 = convolution,
1 = enhancement; node 0..3) is

* ``k = 0``: pair index ``p`` into ``itertools.combinations(range(node + 2), 2)``
  (1, 3, 6, 10 choices for nodes 0..3); the pair gives the two inputs ``j1 < j2``;
* ``k = 1``: op of the edge from ``j1``, an index into :data:`OPS7` (7 choices);
* ``k = 2``: op of the edge from ``j2``, an index into :data:`OPS7`.

Genes are independent, so the base class's sampling, mutation and crossover
apply gene-wise. The space has (1*3*6*10 * 7**8)**2 ~ 1.3e17 architectures.

The gene logic lives in :class:`DartsCellSpace`, shared with DARTS' space
(:mod:`nasbench.spaces.darts`); both accept the names of :data:`GENOTYPES` as architectures.
With ``stem="imagenet"`` the retraining network is the reference's ImageNet network
``NetworkImageNet_b2`` (``BNASv2PC/model_b.py``) and the search network that of
``BNASv2PC/model_search_imagenet_b.py``.

String keys (:meth:`BNASv2Space.encode`) read like
``conv=sep_conv_3x3~0+sep_conv_3x3~1,sep_conv_3x3~1+avg_pool_3x3~2,...;enhance=...``:
per cell, 4 comma-separated nodes, each ``op~j1+op~j2``.
"""
from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field

import torch
import torch.nn as nn

from ..errors import ArchError, ConfigError
from ..ops.darts import (PRIMITIVES, STEMS, FactorizedReduce, Genotype, ReLUConvBN, add_stems, cell_plan, drop_path,
                         make_op, run_stems, stem_plan)
from ..registry import SPACES
from .base import SearchSpace, short_repr

#: DARTS' genotype format (``genotypes.py`` of DARTS and of the BNAS-v2 reference):
#: ``normal`` = convolution cell, ``reduce`` = enhancement cell; each a list of 8
#: ``(op_name, input_state)`` pairs, two per node; the concats are ``[2, 3, 4, 5]``.

#: the 7 operations an edge can carry, indexed by the op genes (DARTS' PRIMITIVES without ``none``)
OPS7 = tuple(PRIMITIVES[1:])
#: intermediate nodes per cell
NODES = 4
#: states concatenated to the cell output (DARTS' ``range(2, 6)``)
CONCAT = (2, 3, 4, 5)
#: per node, the possible input pairs ``(j1, j2)``, indexed by the pair gene
PAIRS = tuple(tuple(itertools.combinations(range(i + 2), 2)) for i in range(NODES))
#: short names of the two cells (string keys, error messages); cell 0 = Genotype.normal
CELLS = ("conv", "enhance")
_CELL_LONG = ("convolution cell (Genotype.normal)", "enhancement cell (Genotype.reduce)")
GENES_PER_CELL = 3 * NODES
NUM_GENES = 2 * GENES_PER_CELL

def _genotype(normal, reduce) -> Genotype:
    """A genotype with DARTS' concat ``[2, 3, 4, 5]`` for both cells."""
    return Genotype(normal=list(normal), normal_concat=list(CONCAT), reduce=list(reduce), reduce_concat=list(CONCAT))


#: Published genotypes, ``{name: Genotype}``, every op and input index as in the sources:
#: ``DARTS_V1``/``DARTS_V2`` from quark0/darts ``cnn/genotypes.py`` (first- and second-order DARTS;
#: ``normal``/``reduce`` = normal/reduction cell); the five BNAS-v2 genotypes from
#: zixiangding/BNASv2 ``BNASv2CLR/genotypes.py`` (``BNASv2_CLR_v1``, ``_v2``) and
#: ``BNASv2PC/genotypes.py`` (``BNASv2_PC_cifar_v1``, ``_v2``, ``BNASv2_PC_image``; there
#: ``normal``/``reduce`` = convolution/enhancement cell). Every space built on
#: :class:`DartsCellSpace` accepts these names as ``--arch`` (:meth:`~DartsCellSpace.named_architectures`).
GENOTYPES = {
    "DARTS_V1": _genotype(
        [("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("skip_connect", 0), ("sep_conv_3x3", 1),
         ("skip_connect", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("skip_connect", 2)],
        [("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 0),
         ("max_pool_3x3", 0), ("skip_connect", 2), ("skip_connect", 2), ("avg_pool_3x3", 0)]),
    "DARTS_V2": _genotype(
        [("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_3x3", 1),
         ("sep_conv_3x3", 1), ("skip_connect", 0), ("skip_connect", 0), ("dil_conv_3x3", 2)],
        [("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 1),
         ("max_pool_3x3", 0), ("skip_connect", 2), ("skip_connect", 2), ("max_pool_3x3", 1)]),
    "BNASv2_CLR_v1": _genotype(
        [("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("avg_pool_3x3", 2),
         ("sep_conv_5x5", 1), ("sep_conv_3x3", 3), ("sep_conv_3x3", 1), ("dil_conv_3x3", 2)],
        [("avg_pool_3x3", 0), ("dil_conv_3x3", 1), ("avg_pool_3x3", 0), ("avg_pool_3x3", 2),
         ("avg_pool_3x3", 2), ("avg_pool_3x3", 3), ("avg_pool_3x3", 2), ("max_pool_3x3", 1)]),
    "BNASv2_CLR_v2": _genotype(
        [("sep_conv_3x3", 1), ("max_pool_3x3", 0), ("max_pool_3x3", 1), ("sep_conv_3x3", 0),
         ("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 1), ("dil_conv_3x3", 4)],
        [("avg_pool_3x3", 0), ("dil_conv_5x5", 1), ("avg_pool_3x3", 2), ("avg_pool_3x3", 0),
         ("avg_pool_3x3", 2), ("avg_pool_3x3", 3), ("max_pool_3x3", 1), ("avg_pool_3x3", 3)]),
    "BNASv2_PC_cifar_v1": _genotype(
        [("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("dil_conv_5x5", 2), ("sep_conv_3x3", 1),
         ("sep_conv_3x3", 1), ("sep_conv_3x3", 2), ("sep_conv_5x5", 1), ("sep_conv_5x5", 2)],
        [("dil_conv_3x3", 0), ("skip_connect", 1), ("dil_conv_3x3", 1), ("skip_connect", 2),
         ("max_pool_3x3", 1), ("dil_conv_5x5", 0), ("skip_connect", 1), ("max_pool_3x3", 0)]),
    "BNASv2_PC_cifar_v2": _genotype(
        [("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_5x5", 1), ("sep_conv_5x5", 2),
         ("sep_conv_3x3", 1), ("sep_conv_3x3", 2), ("sep_conv_5x5", 1), ("dil_conv_3x3", 4)],
        [("skip_connect", 0), ("skip_connect", 1), ("dil_conv_3x3", 1), ("skip_connect", 0),
         ("max_pool_3x3", 0), ("skip_connect", 1), ("max_pool_3x3", 0), ("max_pool_3x3", 1)]),
    "BNASv2_PC_image": _genotype(
        [("sep_conv_5x5", 1), ("sep_conv_3x3", 0), ("skip_connect", 2), ("sep_conv_3x3", 1),
         ("sep_conv_5x5", 1), ("sep_conv_3x3", 3), ("sep_conv_3x3", 4), ("sep_conv_3x3", 3)],
        [("skip_connect", 1), ("dil_conv_5x5", 0), ("max_pool_3x3", 1), ("skip_connect", 2),
         ("skip_connect", 1), ("max_pool_3x3", 2), ("sep_conv_3x3", 1), ("dil_conv_3x3", 3)]),
}
#: ``BNASv2_CLR_v1`` (the reference ``train_b.py`` default)
BNASV2_CLR_V1 = GENOTYPES["BNASv2_CLR_v1"]


def gene_index(cell: int, node: int, k: int) -> int:
    """Position of gene ``k`` (0 pair, 1 first op, 2 second op) of ``node`` in ``cell``."""
    return cell * GENES_PER_CELL + node * 3 + k


# =====================================================================================
# the retraining network
# =====================================================================================
class BroadCell(nn.Module):
    """One DARTS cell of a fixed genotype (reference ``model_b.py`` ``Cell``).

    ``forward(s0, s1, drop_prob)``: ``s0`` ``[N, C_pp, H0, W0]``, ``s1``
    ``[N, C_p, H, W]`` -> ``[N, 4C, H/s, W/s]`` (``s`` = 2 for a reduction cell).
    ``s0`` is preprocessed by a 1x1 :class:`ReLUConvBN` to ``C`` channels, or by
    :class:`FactorizedReduce` when the previous cell reduced (then ``H0 = 2H``);
    ``s1`` by a 1x1 ReLUConvBN. In a reduction cell the edges leaving the two
    inputs have stride 2. Ops are built with ``affine=True``. In training, with
    ``drop_prob > 0``, every op output except an identity ``skip_connect`` goes
    through :func:`~nasbench.ops.darts.drop_path`.

    Args:
        edges: 8 ``(op_name, input_state)`` pairs, two per node (a genotype's cell list).
        C_pp, C_p: channels of ``s0`` and ``s1``; C: channels of every state inside the cell.
        reduction: stride-2 cell; reduction_prev: the previous cell was a reduction cell.
    """

    def __init__(self, edges, C_pp: int, C_p: int, C: int, reduction: bool, reduction_prev: bool):
        super().__init__()
        self.reduction = bool(reduction)
        self.preprocess0 = FactorizedReduce(C_pp, C) if reduction_prev else ReLUConvBN(C_pp, C, 1, 1, 0)
        self.preprocess1 = ReLUConvBN(C_p, C, 1, 1, 0)
        self.inputs = tuple(int(j) for _, j in edges)
        self.ops = nn.ModuleList(make_op(name, C, 2 if reduction and j < 2 else 1, affine=True)
                                 for name, j in edges)
        self.multiplier = len(CONCAT)

    def forward(self, s0, s1, drop_prob: float = 0.0):
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for n in range(len(self.ops) // 2):
            total = 0
            for e in (2 * n, 2 * n + 1):
                op = self.ops[e]
                h = op(states[self.inputs[e]])
                if self.training and drop_prob > 0.0 and not isinstance(op, nn.Identity):
                    h = drop_path(h, drop_prob)
                total = total + h
            states.append(total)
        return torch.cat([states[i] for i in CONCAT], dim=1)


@dataclass
class BroadPlan:
    """Channel bookkeeping of :class:`BroadNetwork` (reference ``model_b.py`` ``Network.__init__``).

    Attributes (channels are counts, cells are 0-based indices of conv cells):
        pool_layers: conv cells that reduce (stride 2) and double ``C``.
        conv_cells: per conv cell ``(C_pp, C_p, C, reduction, reduction_prev)`` (:func:`cell_plan`).
        gap_taps: ``(after_cell, C_in, C_out, n_reduce)``: a 1x1 ReLUConvBN on that cell's
            output, then ``n_reduce`` FactorizedReduce(C_out, C_out) down to the final resolution
            (reference ``restricted_convs_gap`` / ``reduction_convs_gap``).
        en_taps: the same for the enhancement inputs (``restricted_convs_en`` / ``reduction_convs_en``);
            the first enhancement cell reads the concat of all but the last as ``s0``, the last as ``s1``.
        en_cells: per enhancement cell ``(C_pp, C_p, C)`` (stride 1, never FactorizedReduce).
        en_gap_taps: per enhancement cell, the 1x1 ReLUConvBN ``(C_in, C_out)`` to the GAP
            (``restricted_ens_gap``).
        C_final: classifier input width = the sum of the gap and en-gap tap widths.
        C_stem: stem output width; stem: the stem kind (:data:`STEMS`).
    """

    pool_layers: list = field(default_factory=list)
    conv_cells: list = field(default_factory=list)
    gap_taps: list = field(default_factory=list)
    en_taps: list = field(default_factory=list)
    en_cells: list = field(default_factory=list)
    en_gap_taps: list = field(default_factory=list)
    C_final: int = 0
    C_stem: int = 0
    stem: str = "cifar"


def broad_plan(C: int, layers: int, en_layers: int, pool_time: int = 2, stem_multiplier: int = 3,
               stem: str = "cifar") -> BroadPlan:
    """Channel plan of the BCNN retraining network (see :class:`BroadNetwork` for the data flow).

    Follows ``BNASv2CLR/model_b.py`` ``Network.__init__`` exactly: reduction at conv cells
    ``(p + 1) * (layers // pool_time) - 1``; a GAP tap on the output of every conv cell that
    precedes a reduction cell (width = that cell's ``C``), an enhancement tap on the output of
    every reduction cell (width = its ``C``, but ``4C`` for the last one); the first enhancement
    cell reads the channel concat of all enhancement taps but the last as ``s0`` and the last
    tap as ``s1``; every enhancement cell has a GAP tap of width ``C`` except the last, whose
    tap keeps all ``4C`` channels. With ``pool_time=2`` (CIFAR, ``model_b.py`` ``Network``) ``s0``
    is just the first tap; the concat rule for more reductions is that of the reference's
    ``BNASv2PC/model_b.py`` ``NetworkImageNet_b5`` (the CIFAR class fails there: its first
    enhancement cell reads taps 0 and 1 and the channels no longer match).
    The convolution cells come from :func:`cell_plan`, the same plan as DARTS' networks;
    ``stem="imagenet"`` gives ``BNASv2PC/model_b.py`` ``NetworkImageNet_b2`` (stems of ``C``
    channels, cell 0 with FactorizedReduce on ``s0``).

    Raises:
        ConfigError: ``pool_time < 2`` (the first enhancement cell needs two taps),
            ``layers < pool_time``, ``en_layers < 1``, an odd ``C`` (FactorizedReduce halves it)
            or an unknown stem.
    """
    C, layers, en_layers, pool_time = int(C), int(layers), int(en_layers), int(pool_time)
    if pool_time < 2:
        raise ConfigError(f"bnas_v2: pool_time={pool_time} must be at least 2 (the first enhancement "
                          "cell reads the taps of two or more reduction cells)")
    if layers < pool_time:
        raise ConfigError(f"bnas_v2: layers={layers} must be at least pool_time={pool_time}")
    if en_layers < 1:
        raise ConfigError(f"bnas_v2: en_layers={en_layers} must be at least 1")
    if C < 2 or C % 2:
        raise ConfigError(f"bnas_v2: init_channels={C} must be a positive even number")
    mult = len(CONCAT)
    C_stem, red0, _ = stem_plan(stem, C, stem_multiplier)
    pools = [(p + 1) * (layers // pool_time) - 1 for p in range(pool_time)]
    plan = BroadPlan(pool_layers=pools, conv_cells=cell_plan(C, layers, pools, C_stem, red0),
                     C_stem=C_stem, stem=stem)
    for i, (_, _, C_cur, red, _) in enumerate(plan.conv_cells):
        later = sum(1 for p in pools if p > i)  # reductions still ahead = FactorizedReduces needed
        if i + 1 in pools:  # output of the cell before a reduction: a broad "conv block" output
            plan.gap_taps.append((i, mult * C_cur, C_cur, later))
        if red:
            plan.en_taps.append((i, mult * C_cur, mult * C_cur if i == pools[-1] else C_cur, later))
    C_cur = plan.conv_cells[-1][2]
    C_pp = C_p = mult * C_cur  # the first enhancement cell reads the taps instead of C_pp
    for j in range(en_layers):
        plan.en_cells.append((sum(t[2] for t in plan.en_taps[:-1]) if j == 0 else C_pp, C_p, C_cur))
        C_pp, C_p = C_p, mult * C_cur
        plan.en_gap_taps.append((C_p, C_p if j + 1 == en_layers else C_cur))
    plan.C_final = sum(t[2] for t in plan.gap_taps) + sum(t[1] for t in plan.en_gap_taps)
    return plan


class BroadNetwork(nn.Module):
    """BNAS-v2's broad convolutional network (BCNN) for retraining (reference ``model_b.py`` ``Network``).

    ``forward(x)``: ``x`` ``[N, in_channels, H, W]`` (``H``, ``W`` multiples of ``2**pool_time``) ->
    logits ``[N, num_classes]`` (no auxiliary head). Data flow for the paper's CIFAR
    setting ``layers=6, en_layers=2, pool_time=2`` (reductions at conv cells 2 and 5),
    written for init channels ``C`` (``C=48``: the widths below times 48):

    ======================================  =====================================  ==============
    step                                    output                                 reference name
    ======================================  =====================================  ==============
    stem: 3x3 conv + BN                     ``[N, 3C, H, W]``                      stem
    conv cells 0, 1 (C)                     ``[N, 4C, H, W]``                      conv_cells
    GAP tap A on cell 1: 1x1 RCB 4C->C      ``[N, C, H, W]``                       restricted_convs_gap[0]
    conv cell 2, reduction (2C)             ``[N, 8C, H/2, W/2]``                  conv_cells
    enh. tap E0 on cell 2: 1x1 RCB 8C->2C   ``[N, 2C, H/2, W/2]``                  restricted_convs_en[0]
    conv cells 3 (FactorizedReduce s0), 4   ``[N, 8C, H/2, W/2]``                  conv_cells
    GAP tap B on cell 4: 1x1 RCB 8C->2C     ``[N, 2C, H/2, W/2]``                  restricted_convs_gap[1]
    conv cell 5, reduction (4C)             ``[N, 16C, H/4, W/4]``                 conv_cells
    enh. tap E1 on cell 5: 1x1 RCB 16C->16C ``[N, 16C, H/4, W/4]``                 restricted_convs_en[1]
    A: 2x FactorizedReduce; B, E0: 1x       ``C``, ``2C``, ``2C`` at ``H/4``       reduction_convs_gap/_en
    enh. cell 0 (4C) on (E0, E1)            ``[N, 16C, H/4, W/4]``                 en_cells[0]
    its GAP tap: 1x1 RCB 16C->4C            ``[N, 4C, H/4, W/4]``                  restricted_ens_gap[0]
    enh. cell 1 (4C) on (cell 5, enh. 0)    ``[N, 16C, H/4, W/4]``                 en_cells[1]
    its GAP tap (last): 1x1 RCB 16C->16C    ``[N, 16C, H/4, W/4]``                 restricted_ens_gap[1]
    concat A, B, en-GAP taps -> GAP         ``[N, 23C]`` (C=48: 1104)              global_pooling
    Linear(23C, num_classes)                ``[N, num_classes]``                   classifier
    ======================================  =====================================  ==============

    (RCB = ReLU-conv-BN.) In general ``C_final = sum(gap tap widths) + (en_layers - 1) * C_f
    + 4 C_f`` with ``C_f`` the last conv cell's ``C``; :func:`broad_plan` holds the numbers.
    With ``pool_time > 2`` the first enhancement cell reads the concat of all enhancement taps
    but the last as ``s0`` (reference ``BNASv2PC/model_b.py`` ``NetworkImageNet_b5``).
    Oddities kept from the reference: GAP taps sit on the *inputs* of the reduction cells but
    enhancement taps on their *outputs*; the last enhancement tap and the last en-GAP tap keep
    all ``4 C_f`` channels while the others shrink to ``C``; enhancement cell 1 reads the last
    conv cell's raw output as ``s0``; enhancement cells are stride 1 with 1x1 preprocessing.
    The FactorizedReduce chains are applied at the end of the conv blocks rather than as the
    resolution drops (the same function of the taps).

    Drop path: set ``drop_path_prob`` (the reference's training script ramps it linearly,
    ``0.3 * epoch / epochs``); it acts only in training mode.

    Args:
        genotype: a :class:`Genotype` (``normal`` = convolution cell, ``reduce`` = enhancement cell).
        C: init channels (even); num_classes: classifier outputs; layers: conv cells;
        en_layers: enhancement cells; pool_time: reductions (>= 2); drop_path_prob: initial
        drop-path probability; in_channels: image channels (3, or 1 for MNIST as in the reference);
        stem: ``cifar`` (``model_b.py`` ``Network``) or ``imagenet`` (``BNASv2PC/model_b.py``
        ``NetworkImageNet_b2``: DARTS' ImageNet stems of ``C`` channels, ``H``, ``W`` then multiples
        of ``8 * 2**pool_time``; at 224 pixels the conv cells run at 28, 14 and 7 pixels).

    Raises:
        ConfigError: see :func:`broad_plan`.
    """

    def __init__(self, genotype: Genotype, C: int = 48, num_classes: int = 10, layers: int = 6,
                 en_layers: int = 2, pool_time: int = 2, drop_path_prob: float = 0.0, in_channels: int = 3,
                 stem: str = "cifar"):
        super().__init__()
        plan = self.plan = broad_plan(C, layers, en_layers, pool_time, stem=stem)
        self.drop_path_prob = float(drop_path_prob)
        add_stems(self, stem, plan.C_stem, in_channels)
        self.conv_cells = nn.ModuleList(BroadCell(genotype.normal, *spec) for spec in plan.conv_cells)
        self._gap_after = [t[0] for t in plan.gap_taps]
        self._en_after = [t[0] for t in plan.en_taps]

        def tap(c_in, c_out, n_reduce):
            return nn.Sequential(ReLUConvBN(c_in, c_out, 1, 1, 0),
                                 *[FactorizedReduce(c_out, c_out) for _ in range(n_reduce)])

        # taps: the 1x1 ReLUConvBN, then the FactorizedReduce chain to the final resolution
        self.gap_taps = nn.ModuleList(tap(*t[1:]) for t in plan.gap_taps)
        self.en_taps = nn.ModuleList(tap(*t[1:]) for t in plan.en_taps)
        self.en_cells = nn.ModuleList(BroadCell(genotype.reduce, cpp, cp, c, False, False)
                                      for cpp, cp, c in plan.en_cells)
        self.en_gap_taps = nn.ModuleList(ReLUConvBN(ci, co, 1, 1, 0) for ci, co in plan.en_gap_taps)
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(plan.C_final, num_classes)

    def forward(self, x):
        p = self.drop_path_prob
        s0, s1 = run_stems(self, x)
        gap_in, en_in = [], []
        for i, cell in enumerate(self.conv_cells):
            s0, s1 = s1, cell(s0, s1, p)
            if i in self._gap_after:
                gap_in.append(s1)
            if i in self._en_after:
                en_in.append(s1)
        outs = [t(h) for t, h in zip(self.gap_taps, gap_in)]
        en = [t(h) for t, h in zip(self.en_taps, en_in)]
        for j, (cell, t) in enumerate(zip(self.en_cells, self.en_gap_taps)):
            if j == 0:  # pool_time=2: inputs (E0, E1); more reductions: (concat(E0..), E_last)
                s0, s1 = s1, cell(torch.cat(en[:-1], dim=1) if len(en) > 2 else en[0], en[-1], p)
            else:
                s0, s1 = s1, cell(s0, s1, p)
            outs.append(t(s1))
        out = self.global_pooling(torch.cat(outs, dim=1))
        return self.classifier(out.flatten(1))


# =====================================================================================
# the search space
# =====================================================================================
_EDGE_RE = re.compile(r"^([A-Za-z0-9_]+)~(-?[0-9]{1,6})$")


class DartsCellSpace(SearchSpace):
    """Two DARTS cells as 24 genes = 2 cells x 4 nodes x (input pair, op, op) (module doc).

    The genes, genotypes, string keys, named genotypes (:data:`GENOTYPES`) and the cost
    cache shared by the spaces whose networks are made of two DARTS cells: BNAS-v2's broad
    network (:class:`BNASv2Space`, cells = convolution and enhancement cell) and DARTS'
    stacked network (:class:`~nasbench.spaces.darts.DartsSpace`, cells = normal and reduction
    cell). A subclass sets ``name``, ``cell_names`` (the two names of the string keys) and
    ``cell_long`` (for error messages) and implements ``build(arch)`` and ``build_supernet()``;
    it sets ``in_channels``, ``input_size`` and ``_cost_cache`` in its constructor.
    """

    family = "darts"
    benchmark = None
    #: names of cell 0 (``Genotype.normal``) and cell 1 (``Genotype.reduce``) in string keys
    cell_names = CELLS
    cell_long = _CELL_LONG

    # -- genes ----------------------------------------------------------------
    @property
    def num_genes(self) -> int:
        return NUM_GENES

    def choices(self, i: int):
        """Gene ``i``: ``range(1/3/6/10)`` for a pair gene of node 0/1/2/3, ``range(7)`` for an op gene."""
        i = int(i)
        if not 0 <= i < NUM_GENES:
            raise IndexError(f"{self.name}: gene index {i} out of range 0..{NUM_GENES - 1}")
        node, k = (i % GENES_PER_CELL) // 3, i % 3
        return range(len(PAIRS[node])) if k == 0 else range(len(OPS7))

    def gene_meaning(self, i: int) -> str:
        """What gene ``i`` decides, e.g. ``"conv cell, node 2, input pair"``."""
        cell, node, k = i // GENES_PER_CELL, (i % GENES_PER_CELL) // 3, i % 3
        what = ("input pair", "op of the edge from the first input", "op of the edge from the second input")[k]
        return f"{self.cell_names[cell]} cell, node {node}, {what}"

    def gene_error(self, arch: tuple, i: int) -> str:
        node, k = (i % GENES_PER_CELL) // 3, i % 3
        if k == 0:
            allowed = ", ".join(f"{p}={pair}" for p, pair in enumerate(PAIRS[node]))
        else:
            allowed = ", ".join(f"{v}={op}" for v, op in enumerate(OPS7))
        return f"{self.name}: gene {i} ({self.gene_meaning(i)}) of {arch!r} is {arch[i]}; allowed: {allowed}"

    # -- genotypes --------------------------------------------------------------
    def genotype(self, arch) -> Genotype:
        """Architecture -> :class:`Genotype` (each node's two edges in ascending input order).

        Raises:
            ArchError: an illegal architecture.
        """
        arch = self.validate(arch)
        cells = []
        for c in range(2):
            edges = []
            for n in range(NODES):
                p, o1, o2 = arch[gene_index(c, n, 0): gene_index(c, n, 0) + 3]
                j1, j2 = PAIRS[n][p]
                edges += [(OPS7[o1], j1), (OPS7[o2], j2)]
            cells.append(edges)
        return Genotype(normal=cells[0], normal_concat=list(CONCAT), reduce=cells[1], reduce_concat=list(CONCAT))

    def named_architectures(self) -> dict:
        """Every genotype of :data:`GENOTYPES` (DARTS_V1, DARTS_V2 and the five of BNAS-v2), by name.

        A genotype is two cells, so each is an architecture of every two-cell space: in the broad
        network its ``normal``/``reduce`` cells are the convolution/enhancement cells, in DARTS'
        network the normal/reduction cells (``--arch DARTS_V2`` works with both).
        """
        return {name: self.from_genotype(g) for name, g in GENOTYPES.items()}

    def from_genotype(self, g) -> tuple:
        """:class:`Genotype` (or its dict / list / JSON form) -> architecture tuple.

        Accepts a Genotype or any object with ``normal``/``reduce`` attributes, a dict with
        ``normal`` and ``reduce`` keys (concat keys optional), or a sequence
        ``(normal, normal_concat, reduce, reduce_concat)`` or ``(normal, reduce)``. Each node's
        two edges may come in any order; they are sorted by input state.

        Raises:
            ArchError: wrong structure; a concat other than ``[2, 3, 4, 5]``; within a cell/node
                the same input twice, an input outside ``0..node+1``, an op ``'none'`` or unknown.
                The message names the cell and node.
        """
        if isinstance(g, dict):
            missing = [k for k in ("normal", "reduce") if k not in g]
            if missing:
                raise ArchError(f"{self.name}: genotype dict lacks {missing}; keys: {sorted(map(str, g))}")
            parts = [(g["normal"], g.get("normal_concat")), (g["reduce"], g.get("reduce_concat"))]
        elif hasattr(g, "normal") and hasattr(g, "reduce"):
            parts = [(g.normal, getattr(g, "normal_concat", None)), (g.reduce, getattr(g, "reduce_concat", None))]
        elif isinstance(g, (list, tuple)) and len(g) == 4:
            parts = [(g[0], g[1]), (g[2], g[3])]
        elif isinstance(g, (list, tuple)) and len(g) == 2:
            parts = [(g[0], None), (g[1], None)]
        else:
            raise ArchError(f"{self.name}: cannot read a genotype from {short_repr(g)}; expected Genotype(normal, "
                            "normal_concat, reduce, reduce_concat), a dict or a list of that form")
        arch = []
        for c, (edges, concat) in enumerate(parts):
            where = f"{self.name}: {self.cell_long[c]}"
            if concat is not None:
                try:
                    ok = [int(x) for x in concat] == list(CONCAT)
                except (TypeError, ValueError):
                    ok = False
                if not ok:
                    raise ArchError(f"{where}: concat {short_repr(concat)} must be {list(CONCAT)}")
            try:
                edges = list(edges)
            except TypeError:
                raise ArchError(f"{where}: {short_repr(edges)} is not a list of (op, input) pairs") from None
            if len(edges) != 2 * NODES:
                raise ArchError(f"{where}: has {len(edges)} edges, expected {2 * NODES} (2 per node)")
            for n in range(NODES):
                arch += self._node_genes(edges[2 * n: 2 * n + 2], n, f"{where}, node {n}")
        return tuple(arch)

    @staticmethod
    def _node_genes(edges, n: int, where: str) -> list:
        """``[pair, op1, op2]`` of one node's two ``(op, input)`` edges; ArchError names ``where``."""
        parsed = []
        for e in edges:
            if isinstance(e, (str, bytes)) or not hasattr(e, "__len__") or len(e) != 2:
                raise ArchError(f"{where}: edge {short_repr(e)} is not an (op_name, input_state) pair")
            op, j = e
            if op == "none":
                raise ArchError(f"{where}: op 'none' is not allowed (a node has exactly two real edges); "
                                f"use one of {list(OPS7)}")
            if op not in OPS7:
                raise ArchError(f"{where}: unknown op {short_repr(op)}; allowed: {list(OPS7)}")
            if isinstance(j, bool) or not hasattr(j, "__index__"):
                raise ArchError(f"{where}: input {short_repr(j)} of edge {short_repr(e)} is not an integer state index")
            j = int(j)
            if not 0 <= j < n + 2:
                raise ArchError(f"{where}: input state {short_repr(j)} is out of range; node {n} reads states 0..{n + 1}")
            parsed.append((j, OPS7.index(op)))
        (j1, o1), (j2, o2) = sorted(parsed)
        if j1 == j2:
            raise ArchError(f"{where}: both edges read state {j1}; the two inputs must differ")
        return [PAIRS[n].index((j1, j2)), o1, o2]

    # -- keys -----------------------------------------------------------------
    def encode(self, arch) -> str:
        """Architecture -> ``conv=op~j1+op~j2,...(4 nodes);enhance=...`` (edges in ascending input order;
        the cell names are :attr:`cell_names`, ``normal``/``reduce`` in DARTS' space)."""
        g = self.genotype(arch)
        cells = []
        for name, edges in zip(self.cell_names, (g.normal, g.reduce)):
            nodes = [f"{edges[2 * n][0]}~{edges[2 * n][1]}+{edges[2 * n + 1][0]}~{edges[2 * n + 1][1]}"
                     for n in range(NODES)]
            cells.append(f"{name}=" + ",".join(nodes))
        return ";".join(cells)

    def decode(self, key) -> tuple:
        """String key (:meth:`encode`'s format, or the 24 genes joined by ``-``) -> architecture.

        Whitespace is ignored; the two cells may come in either order; a node's two edges in any order.

        Raises:
            ArchError: naming the part that is wrong (missing/duplicate cell, node count,
                edge syntax, or the genotype errors of :meth:`from_genotype`).
        """
        if not isinstance(key, str):
            raise ArchError(f"{self.name}: key {short_repr(key)} must be a string like "
                            f"'conv=sep_conv_3x3~0+skip_connect~1,...;enhance=...'")
        s = re.sub(r"\s+", "", key)
        if re.fullmatch(r"\d+(-\d+)*", s):
            return super().decode(s)
        cells = {}
        for part in s.split(";"):
            name, sep, body = part.partition("=")
            if not sep or name not in self.cell_names:
                raise ArchError(f"{self.name}: key {short_repr(key)}: part {short_repr(part)} must be "
                                f"'{self.cell_names[0]}=...' or '{self.cell_names[1]}=...'")
            if name in cells:
                raise ArchError(f"{self.name}: key {short_repr(key)}: cell {name!r} is given twice")
            nodes = body.split(",")
            if len(nodes) != NODES:
                raise ArchError(f"{self.name}: key {short_repr(key)}: {name} cell has {len(nodes)} nodes, expected {NODES}")
            edges = []
            for n, node in enumerate(nodes):
                pair = node.split("+")
                if len(pair) != 2:
                    raise ArchError(f"{self.name}: key {short_repr(key)}: {name} cell node {n} {short_repr(node)} must be 'op~j+op~k'")
                for e in pair:
                    m = _EDGE_RE.match(e)
                    if not m:
                        raise ArchError(f"{self.name}: key {short_repr(key)}: {name} cell node {n}: edge {short_repr(e)} "
                                        "must be 'op_name~input_state'")
                    edges.append((m.group(1), int(m.group(2))))
            cells[name] = edges
        missing = [c for c in self.cell_names if c not in cells]
        if missing:
            raise ArchError(f"{self.name}: key {short_repr(key)} lacks the {' and '.join(missing)} cell")
        return self.from_genotype({"normal": cells[self.cell_names[0]], "reduce": cells[self.cell_names[1]]})

    # -- cost ----------------------------------------------------------------------
    def cost(self, arch) -> tuple[int, int]:
        """``(flops, params)`` of ``arch``, counted once on the meta device and cached per architecture.

        FLOPs are conv + linear multiply-accumulates for one ``[in_channels, input_size,
        input_size]`` image in eval mode (:func:`~nasbench.metrics.flops.count_macs`); params are all
        parameters, BN affine and classifier bias included, without an auxiliary head
        (:func:`~nasbench.metrics.flops.count_params` minus :func:`~nasbench.metrics.flops.auxiliary_params`,
        the convention of DARTS' ``utils.count_parameters_in_MB``).
        """
        from ..metrics.flops import auxiliary_params, count_macs, count_params
        arch = self.validate(arch)
        if arch not in self._cost_cache:
            with torch.device("meta"):
                net = self.build(arch)
            macs = count_macs(net, (self.in_channels, self.input_size, self.input_size))
            self._cost_cache[arch] = (int(macs), int(count_params(net) - auxiliary_params(net)))
        return self._cost_cache[arch]

    def flops(self, arch) -> int:
        """Conv + linear MACs of one image at ``input_size`` (see :meth:`cost`)."""
        return self.cost(arch)[0]

    def params(self, arch) -> int:
        """Number of parameters of the standalone network (see :meth:`cost`)."""
        return self.cost(arch)[1]


@SPACES.register("bnas_v2")
class BNASv2Space(DartsCellSpace):
    """BNAS-v2 cell space: 24 genes = 2 cells x 4 nodes x (input pair, op, op) (module doc).

    Args:
        init_channels: ``C`` of the retraining network (48 for CIFAR in the reference ``train_b.py``).
        layers: convolution cells (6); en_layers: enhancement cells (2); pool_time: reductions (2; >= 2).
        num_classes: classifier outputs; drop_path_prob: initial drop-path probability of built networks.
        input_size: image side (pixels, multiple of 4) for :meth:`flops`; in_channels: image channels.
        search_channels, search_layers, search_en_layers: base width (16), convolution
            cells (2) and enhancement cells (1) of the search network (:meth:`build_supernet`).
        partial: PC-DARTS partial-channel factor K of the search network (1 = BNAS-v2 CLR, 4 = PC;
            2 on ImageNet, ``BNASv2PC/model_search_imagenet_b.py``).
        stem: ``cifar`` or ``imagenet`` (:data:`STEMS`), for both networks: the retraining network is
            then ``NetworkImageNet_b2`` (``BNASv2PC/model_b.py``; C=44 in ``train_imagenet_b.py``) and
            the search network that of ``model_search_imagenet_b.py`` (stems of ``3 * search_channels``).

    Raises:
        ConfigError: bad network settings (see :func:`broad_plan`) or ``input_size``.
    """

    name = "bnas_v2"

    def __init__(self, init_channels: int = 48, layers: int = 6, en_layers: int = 2, pool_time: int = 2,
                 num_classes: int = 10, drop_path_prob: float = 0.0, input_size: int = 32,
                 in_channels: int = 3, search_channels: int = 16, search_layers: int = 2,
                 search_en_layers: int = 1, partial: int = 1, stem: str = "cifar"):
        self.search_channels, self.search_layers = int(search_channels), int(search_layers)
        self.search_en_layers, self.partial = int(search_en_layers), int(partial)
        if self.partial < 1 or self.search_channels % self.partial:
            raise ConfigError(f"bnas_v2: partial={partial} must be >= 1 and divide search_channels={search_channels}")
        self.init_channels, self.layers, self.en_layers = int(init_channels), int(layers), int(en_layers)
        self.pool_time, self.num_classes = int(pool_time), int(num_classes)
        self.drop_path_prob, self.in_channels = float(drop_path_prob), int(in_channels)
        self.input_size, self.stem = int(input_size), str(stem)
        broad_plan(self.init_channels, self.layers, self.en_layers, self.pool_time, stem=self.stem)  # validates
        unit = 2 ** max(self.pool_time, self.search_layers) * stem_plan(self.stem, 1)[2]
        if self.input_size <= 0 or self.input_size % unit:
            raise ConfigError(f"bnas_v2: input_size={input_size} must be a positive multiple of {unit}")
        self._cost_cache: dict[tuple, tuple[int, int]] = {}

    def build_supernet(self):
        """The BCNN search network (:class:`~nasbench.supernets.darts.BroadSearchNetwork`).

        Its ``genotype()`` is turned into this space's encoding by :meth:`from_genotype`.
        """
        from ..supernets.darts import BroadSearchNetwork
        net = BroadSearchNetwork(self.search_channels, self.num_classes, self.search_layers,
                                 self.search_en_layers, partial=self.partial, stem=self.stem)
        net.space = self
        return net

    def build(self, arch, num_classes: int | None = None) -> BroadNetwork:
        """Standalone :class:`BroadNetwork` of ``arch`` (random init; ``drop_path_prob`` of the space).

        Raises:
            ArchError: an illegal architecture.
        """
        return BroadNetwork(self.genotype(arch), C=self.init_channels,
                            num_classes=self.num_classes if num_classes is None else int(num_classes),
                            layers=self.layers, en_layers=self.en_layers, pool_time=self.pool_time,
                            drop_path_prob=self.drop_path_prob, in_channels=self.in_channels, stem=self.stem)


__all__ = ["BNASv2Space", "DartsCellSpace", "BroadNetwork", "BroadCell", "BroadPlan", "broad_plan",
           "GENOTYPES", "Genotype",
           "OPS7", "PAIRS", "CONCAT", "CELLS", "BNASV2_CLR_V1", "gene_index"]
