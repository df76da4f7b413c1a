"""DARTS-cell search networks: BNAS-v2's broad network (BCNN) and DARTS' / PC-DARTS' standard one.

:class:`DartsSearchNetwork` is DARTS' 8-cell search network (quark0/darts ``cnn/model_search.py``;
with ``partial = 4`` PC-DARTS', yuhuixu1993/PC-DARTS ``model_search.py``). Both networks keep their
architecture parameters and the genotype rule in :class:`TwoCellSearchNetwork`. The rest of this
docstring describes the broad network.

Ding et al., "BNAS-v2: Memory-efficient and performance-collapse-prevented
broad neural architecture search" (arXiv 2009.08886), section III and the
reference search network ``BNASv2CLR/model_search_b.py`` / ``BNASv2PC/model_search_b.py``
(METHODS.md section 4.2). Every edge is a :class:`~nasbench.ops.darts.MixedOp`
weighted by the softmax of its architecture parameters (DARTS' continuous
relaxation), so every path is trained at every step.

Data flow for ``layers`` = L convolution cells and ``en_layers`` = E
enhancement cells, input ``[N, 3, H, W]``, base width ``C``:

* stem: 3x3 conv to ``3C`` + BN, ``H x W``.
* convolution block ``i`` (``i = 0..L-1``): one stride-2 *convolution cell*
  with ``2^(i+1) C`` channels per node (output ``4 * 2^(i+1) C`` channels).
  Before it, its input is tapped for the broad output ("GAP tap": 1x1
  ReLU-conv-BN to ``C`` for ``i = 0``, else to ``2^i C``); after it, its output
  is tapped for the enhancement block ("enhancement tap": 1x1 ReLU-conv-BN to
  ``2^(i+1) C``, and to the full ``4 * 2^L C`` for the last block). Every tap is
  brought to the final resolution ``H / 2^L`` by one FactorizedReduce per
  halving.
* enhancement block: E stride-1 *enhancement cells* with ``2^L C`` channels per
  node; the first takes the first and the last enhancement taps as its two
  inputs, later ones the two previous cells. Each cell's output is tapped (1x1
  ReLU-conv-BN; the last keeps its full width).
* broad output: concatenation of all GAP taps and enhancement-cell taps ->
  global average pool -> linear classifier.

For the reference setting (L = 2, E = 1) this is the reference network exactly
(same modules, widths and wiring). The reference code calls the convolution
cells' parameters ``alphas_normal`` and the enhancement cells'
``alphas_reduce``; here they are :attr:`BroadSearchNetwork.alpha_conv` and
:attr:`alpha_enhance` (``[14, 8]`` each, columns in
:data:`~nasbench.ops.darts.PRIMITIVES` order). With ``partial = K > 1``
(BNAS-v2 PC) every edge runs on ``1/K`` of its channels and the edges into a
node are mixed by ``softmax(beta)`` over that node's incoming edges
(PC-DARTS' edge normalisation): :attr:`beta_conv`, :attr:`beta_enhance`
(``[14]`` each).
"""
from __future__ import annotations

import logging

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..ops.darts import (PRIMITIVES, FactorizedReduce, Genotype, MixedOp, ReLUConvBN, add_stems, cell_plan,
                         run_stems, stem_plan)
from .base import DifferentiableSupernet

log = logging.getLogger(__name__)

STEPS = 4  # intermediate nodes per cell
NUM_EDGES = sum(2 + i for i in range(STEPS))  # 14


def _chain(c: int, n: int) -> nn.Module:
    """``n`` FactorizedReduce(c, c) in a row (``n`` halvings; identity for ``n = 0``)."""
    return nn.Sequential(*[FactorizedReduce(c, c) for _ in range(n)])


class SearchCell(nn.Module):
    """A DARTS cell with a :class:`MixedOp` on each of its 14 edges.

    ``forward(s0, s1, weights, edge_weights)``: the two input states
    ``[N, C_pp, H0, W0]`` and ``[N, C_p, H, W]`` (``H0 = 2H`` when the
    previous cell reduced), ``weights`` ``[14, 8]`` (softmax over operations),
    ``edge_weights`` ``[14]`` or None (PC edge normalisation) ->
    ``[N, 4C, H/s, W/s]``, the concatenation of the four intermediate nodes.
    """

    def __init__(self, C_pp: int, C_p: int, C: int, reduction: bool, reduction_prev: bool, partial: int = 1):
        super().__init__()
        self.reduction = reduction
        self.preprocess0 = (FactorizedReduce(C_pp, C, affine=False) if reduction_prev
                            else ReLUConvBN(C_pp, C, 1, 1, 0, affine=False))
        self.preprocess1 = ReLUConvBN(C_p, C, 1, 1, 0, affine=False)
        self.edges = nn.ModuleList(
            MixedOp(C, 2 if reduction and j < 2 else 1, partial)
            for i in range(STEPS) for j in range(2 + i))

    def forward(self, s0, s1, weights, edge_weights=None):
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        offset = 0
        for i in range(STEPS):
            node = 0
            for j, h in enumerate(states):
                out = self.edges[offset + j](h, weights[offset + j])
                node = node + (out if edge_weights is None else edge_weights[offset + j] * out)
            offset += len(states)
            states.append(node)
        return torch.cat(states[2:], dim=1)


class TwoCellSearchNetwork(DifferentiableSupernet):
    """Architecture parameters of a search network with two DARTS cell types (the shared part).

    A subclass names its cell types in :attr:`cell_kinds` (cell 0 = ``Genotype.normal``,
    cell 1 = ``Genotype.reduce``), builds its modules and then calls :meth:`_init_arch`, which
    creates ``alpha_<kind>`` (``[14, 8]``, columns in :data:`~nasbench.ops.darts.PRIMITIVES`
    order) for both kinds and, with partial channels (``self.partial > 1``), ``beta_<kind>``
    (``[14]``, PC-DARTS' edge normalisation). :class:`BroadSearchNetwork` has the kinds
    ``conv``/``enhance``, :class:`DartsSearchNetwork` ``normal``/``reduce``.
    """

    cell_kinds = ("conv", "enhance")
    partial = 1

    def _init_arch(self, alpha_init_std: float) -> None:
        """``alpha_<kind> = alpha_init_std * randn(14, 8)`` (and ``beta_<kind>`` ``[14]`` with partial channels)."""
        k = len(PRIMITIVES)
        for kind in self.cell_kinds:
            setattr(self, f"alpha_{kind}", nn.Parameter(alpha_init_std * torch.randn(NUM_EDGES, k)))
        for kind in self.cell_kinds:
            setattr(self, f"beta_{kind}", nn.Parameter(alpha_init_std * torch.randn(NUM_EDGES))
                    if self.partial > 1 else None)

    def set_sync_bn(self, enabled: bool) -> None:
        """Synchronise BN batch statistics across processes (DDP, CUDA only; call before
        building an optimizer). On CPU (gloo) the request is logged and ignored."""
        if not enabled:
            return
        if not torch.cuda.is_available():
            log.warning("sync_bn ignored for the DARTS-cell search network: nn.SyncBatchNorm needs CUDA")
            return
        for name, child in list(self.named_children()):
            setattr(self, name, nn.SyncBatchNorm.convert_sync_batchnorm(child))

    # -- architecture parameters ------------------------------------------------
    def arch_parameters(self) -> list[nn.Parameter]:
        """alpha (and, with partial channels, beta) of both cell types; the weight optimizer skips them."""
        names = [f"alpha_{k}" for k in self.cell_kinds] + [f"beta_{k}" for k in self.cell_kinds]
        return [p for p in (getattr(self, n) for n in names) if p is not None]

    @staticmethod
    def edge_normalisation(beta: torch.Tensor) -> torch.Tensor:
        """``[14]`` -> ``[14]``: softmax of beta over each node's incoming edges (PC-DARTS eq. 4)."""
        parts, start = [], 0
        for i in range(STEPS):
            parts.append(F.softmax(beta[start:start + 2 + i], dim=-1))
            start += 2 + i
        return torch.cat(parts)

    def cell_weights(self, cell: str) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(op weights [14, 8], edge weights [14] or None)`` of ``cell`` (one of :attr:`cell_kinds`)."""
        alpha, beta = getattr(self, f"alpha_{cell}"), getattr(self, f"beta_{cell}")
        return F.softmax(alpha, dim=-1), (None if beta is None else self.edge_normalisation(beta))

    @torch.no_grad()
    def parameter_free_shares(self) -> dict:
        """``pfree_<kind>`` per cell type: :func:`parameter_free_share` of its op weights."""
        return {f"pfree_{cell}": parameter_free_share(self.cell_weights(cell)[0]) for cell in self.cell_kinds}

    def genotype(self):
        """The discrete cells as a DARTS :class:`~nasbench.ops.darts.Genotype`.

        ``normal`` is cell type 0 (the convolution / normal cell), ``reduce`` cell type 1 (the
        enhancement / reduction cell), each ``[(op, input state)] * 8``, concat ``[2, 3, 4, 5]``.

        DARTS' rule (reference ``genotype()``): for every node keep the two
        incoming edges with the largest non-``none`` weight (with partial
        channels: weight times the edge normalisation) and on each the
        strongest non-``none`` operation. Pairs are listed per node in
        ascending input order.
        """
        out = []
        none = PRIMITIVES.index("none")
        for cell in self.cell_kinds:
            w, e = self.cell_weights(cell)
            w = w.detach().cpu()
            if e is not None:
                w = w * e.detach().cpu()[:, None]
            gene, start = [], 0
            for i in range(STEPS):
                rows = w[start:start + 2 + i].clone()
                rows[:, none] = -1.0
                strength = rows.max(dim=1).values
                keep = sorted(sorted(range(2 + i), key=lambda j: -float(strength[j]))[:2])
                gene += [(PRIMITIVES[int(rows[j].argmax())], j) for j in keep]
                start += 2 + i
            out.append(gene)
        concat = list(range(2, 2 + STEPS))
        return Genotype(normal=out[0], normal_concat=concat, reduce=out[1], reduce_concat=concat)


class BroadSearchNetwork(TwoCellSearchNetwork):
    """The BCNN search network with DARTS architecture parameters (see module doc).

    ``forward(x)``: ``[N, 3, H, W]`` -> logits ``[N, num_classes]``; ``H`` and
    ``W`` divisible by ``2^layers``.

    Args:
        C: base width (the reference's ``init_channels``, 16).
        num_classes: classifier outputs.
        layers: convolution cells, each a stride-2 cell (reference: 2).
        en_layers: enhancement cells (reference: 1).
        partial: PC-DARTS partial-channel factor ``K`` (1 = BNAS-v2 CLR, 4 = BNAS-v2 PC);
            it also switches on edge normalisation.
        alpha_init_std: std of the normal initialisation of alpha (and beta), 1e-3.
        stem: ``cifar`` (one 3x3 conv to ``3C``) or ``imagenet``: DARTS' ImageNet stems to ``3C``
            (``s0`` at 1/4, ``s1`` at 1/8 of the input) and FactorizedReduce on the first cell's
            ``s0``, as ``BNASv2PC/model_search_imagenet_b.py`` (:func:`~nasbench.ops.darts.add_stems`).

    Raises:
        ValueError: ``layers < 2`` (the enhancement block needs two taps) or a width
            not divisible by ``partial``.
    """

    def __init__(self, C: int = 16, num_classes: int = 10, layers: int = 2, en_layers: int = 1,
                 partial: int = 1, alpha_init_std: float = 1e-3, stem: str = "cifar"):
        super().__init__()
        if layers < 2 or en_layers < 1:
            raise ValueError(f"BCNN needs layers >= 2 and en_layers >= 1, got {layers}, {en_layers}")
        self.C, self.layers, self.en_layers, self.partial = C, layers, en_layers, int(partial)
        _, reduction_prev, _ = stem_plan(stem, C)
        add_stems(self, stem, 3 * C)
        self.gap_taps, self.gap_reduce = nn.ModuleList(), nn.ModuleList()
        self.en_taps, self.en_reduce = nn.ModuleList(), nn.ModuleList()
        self.conv_cells = nn.ModuleList()
        c_pp = c_p = 3 * C
        c = C
        gap_widths = []
        for i in range(layers):
            gap_out = C if i == 0 else c
            self.gap_taps.append(ReLUConvBN(c_p, gap_out, 1, 1, 0))
            self.gap_reduce.append(_chain(gap_out, layers - i))  # halvings still to come
            gap_widths.append(gap_out)
            c *= 2
            self.conv_cells.append(SearchCell(c_pp, c_p, c, True, reduction_prev, self.partial))
            reduction_prev = True
            c_pp, c_p = c_p, 4 * c
            en_out = 4 * c if i == layers - 1 else c
            self.en_taps.append(ReLUConvBN(c_p, en_out, 1, 1, 0))
            self.en_reduce.append(_chain(en_out, layers - 1 - i))
        first_en_width = self.en_taps[0].op[1].out_channels
        self.en_cells, self.en_out_taps = nn.ModuleList(), nn.ModuleList()
        en_widths = []
        for j in range(en_layers):
            self.en_cells.append(SearchCell(first_en_width if j == 0 else c_pp, c_p, c, False, False, self.partial))
            c_pp, c_p = c_p, 4 * c
            out = c_p if j == en_layers - 1 else c
            self.en_out_taps.append(ReLUConvBN(c_p, out, 1, 1, 0))
            en_widths.append(out)
        self.classifier = nn.Linear(sum(gap_widths) + sum(en_widths), num_classes)
        self._init_arch(alpha_init_std)

    # -- forward ----------------------------------------------------------------
    def forward(self, x):
        w_conv, e_conv = self.cell_weights("conv")
        w_en, e_en = self.cell_weights("enhance")
        s0, s1 = run_stems(self, x)
        gap, en = [], []
        for i, cell in enumerate(self.conv_cells):
            gap.append(self.gap_reduce[i](self.gap_taps[i](s1)))
            s0, s1 = s1, cell(s0, s1, w_conv, e_conv)
            en.append(self.en_reduce[i](self.en_taps[i](s1)))
        outs = []
        for j, cell in enumerate(self.en_cells):
            a, b = (en[0], en[-1]) if j == 0 else (s0, s1)
            s0, s1 = s1, cell(a, b, w_en, e_en)
            outs.append(self.en_out_taps[j](s1))
        feats = torch.cat(gap + outs, dim=1)
        return self.classifier(F.adaptive_avg_pool2d(feats, 1).flatten(1))


class DartsSearchNetwork(TwoCellSearchNetwork):
    """DARTS' search network: ``layers`` stacked :class:`SearchCell` (quark0/darts ``cnn/model_search.py``).

    ``forward(x)``: ``[N, 3, H, W]`` -> logits ``[N, num_classes]`` (``H``, ``W`` multiples of 4).
    Stem 3x3 conv to ``3C`` + BN; cells from :func:`~nasbench.ops.darts.cell_plan` (the channel
    plan of the evaluation networks) with reductions at ``layers // 3`` and ``2 * layers // 3``;
    normal cells share ``alpha_normal``, reduction cells ``alpha_reduce`` (``[14, 8]`` each; the
    reference's ``alphas_normal``/``alphas_reduce``); global average pooling and a linear classifier.
    With ``partial = K > 1`` it is PC-DARTS' search network (Xu et al., arXiv 1907.05737; K = 4):
    every edge runs on ``1/K`` of the channels and the edges into a node are weighted by the
    edge normalisation of ``beta_normal``/``beta_reduce``.

    Args:
        C: base width (16); num_classes; layers: cells (8); partial: PC-DARTS' K (1 = DARTS);
        alpha_init_std: std of the initial alpha/beta (1e-3).

    Raises:
        ValueError: ``layers < 3`` or a width not divisible by ``partial``.
    """

    cell_kinds = ("normal", "reduce")

    def __init__(self, C: int = 16, num_classes: int = 10, layers: int = 8, partial: int = 1,
                 alpha_init_std: float = 1e-3):
        super().__init__()
        if layers < 3:
            raise ValueError(f"DARTS' search network needs layers >= 3, got {layers}")
        self.C, self.layers, self.partial = C, layers, int(partial)
        add_stems(self, "cifar", 3 * C)
        plan = cell_plan(C, layers, (layers // 3, 2 * layers // 3), 3 * C, False)
        self.cells = nn.ModuleList(SearchCell(*spec, partial=self.partial) for spec in plan)
        self.classifier = nn.Linear(4 * plan[-1][2], num_classes)
        self._init_arch(alpha_init_std)

    def forward(self, x):
        w = {kind: self.cell_weights(kind) for kind in self.cell_kinds}
        s0, s1 = run_stems(self, x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1, *w["reduce" if cell.reduction else "normal"])
        return self.classifier(F.adaptive_avg_pool2d(s1, 1).flatten(1))


def parameter_free_share(weights: torch.Tensor) -> float:
    """Mean softmax weight on the parameter-free operations (pools, skip) over the edges of ``weights`` ``[14, 8]``.

    DARTS' performance collapse shows as this share growing; BNAS-v2's CLR is meant to hold it down.
    """
    idx = [PRIMITIVES.index(n) for n in ("max_pool_3x3", "avg_pool_3x3", "skip_connect")]
    return float(weights[:, idx].sum(dim=1).mean())


__all__ = ["BroadSearchNetwork", "DartsSearchNetwork", "TwoCellSearchNetwork", "SearchCell", "parameter_free_share", "STEPS", "NUM_EDGES"]
