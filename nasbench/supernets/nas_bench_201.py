"""The NAS-Bench-201 cell space as a differentiable (DARTS) supernet.

Dong & Yang, "NAS-Bench-201" (ICLR 2020, arXiv 2001.00326), section 2.1 (the
macro skeleton and the cell) and section 5 (DARTS on the cell space); the
search network of the reference code ``D-X-Y/AutoDL-Projects``
(``xautodl/models/cell_searchs/search_model_darts.py``, ``search_cells.py``),
written anew here.

Skeleton, input ``[N, 3, H, W]``, base width ``C`` (16 in the benchmark), ``N``
cells per stage (5 in the benchmark; fewer for a CPU search):

* stem: 3x3 conv ``3 -> C`` (no bias) + BN;
* stage 1: ``N`` search cells at ``C`` channels, ``H x W``;
* residual reduction block ``C -> 2C`` (ResNet basic block, stride 2:
  ReLU-conv3x3(s2)-BN, ReLU-conv3x3-BN, shortcut avg-pool 2x2 + 1x1 conv);
* stage 2: ``N`` cells at ``2C``; reduction block ``2C -> 4C``; stage 3: ``N`` cells at ``4C``;
* BN + ReLU, global average pooling, linear classifier ``4C -> num_classes``.

A cell is a DAG on 4 nodes; node ``i`` = sum over ``j < i`` of the mixed
operation of edge ``i <- j`` applied to node ``j``; its output is node 3. The
6 edges are in the NAS-Bench-201 gene order (``1<-0, 2<-0, 2<-1, 3<-0, 3<-1,
3<-2``, :data:`~nasbench.spaces.nas_bench_201.EDGES`) and every edge mixes the
5 operations of :data:`~nasbench.spaces.nas_bench_201.OPS` (gene order: none,
skip_connect, nor_conv_1x1, nor_conv_3x3, avg_pool_3x3) by the softmax of its
row of :attr:`NB201SearchNetwork.alpha` (``[6, 5]``, shared by all cells, as
in the reference). ``nor_conv_kxk`` is ReLU-conv-BN; the search network's BN
layers inside cells have no affine parameters (DARTS' search setting). The
operations, the reduction block and the skeleton are those of the standalone
network (:mod:`nasbench.ops.nas_bench_201`), which has affine BN in its cells.

With ``partial = K > 1`` (PC-DARTS, Xu et al., arXiv 1907.05737): every edge
runs its operations on the first ``C/K`` channels, passes the rest on
unchanged and shuffles the channels (as
:class:`~nasbench.ops.darts.MixedOp`); the edges into a node are weighted by
the softmax of :attr:`beta` over that node's incoming edges (edge
normalisation; node 1 has one edge, so its weight is 1).

The found cell (:meth:`NB201SearchNetwork.genotype`) is the argmax operation
per edge over all 5 operations, ``none`` included (the reference's rule for this
space; edge normalisation scales a whole edge and does not change it).
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..ops.darts import channel_shuffle
from ..ops.nas_bench_201 import macro_layers, make_op
from ..spaces.nas_bench_201 import EDGES, NUM_EDGES, NUM_OPS, OPS
from .base import DifferentiableSupernet

__all__ = ["NB201SearchNetwork", "PARAMETER_FREE"]

#: operations without parameters (gene values), in OPS order: none, skip_connect, avg_pool_3x3
PARAMETER_FREE = tuple(i for i, op in enumerate(OPS) if op in ("none", "skip_connect", "avg_pool_3x3"))


class _MixedEdge(nn.Module):
    """``sum_o w[o] * op_o(x)`` over the 5 operations, on ``1/partial`` of the channels (PC-DARTS)."""

    def __init__(self, C: int, partial: int = 1):
        super().__init__()
        if C % partial:
            raise ValueError(f"channels {C} not divisible by the partial-channel factor {partial}")
        self.partial = partial
        self.ops = nn.ModuleList(make_op(op, C // partial, affine=False) for op in OPS)

    def forward(self, x, w):
        if self.partial == 1:
            return sum(wi * op(x) for wi, op in zip(w, self.ops))
        k = x.shape[1] // self.partial
        mixed = sum(wi * op(x[:, :k]) for wi, op in zip(w, self.ops))
        return channel_shuffle(torch.cat([mixed, x[:, k:]], 1), self.partial)


class _SearchCell(nn.Module):
    """NB201 cell with a mixed edge on each of the 6 edges: ``[N, C, H, W] -> [N, C, H, W]``."""

    def __init__(self, C: int, partial: int = 1):
        super().__init__()
        self.edges = nn.ModuleList(_MixedEdge(C, partial) for _ in EDGES)

    def forward(self, x, weights, edge_weights):
        nodes = [x]
        for i in (1, 2, 3):
            nodes.append(sum(edge_weights[e] * self.edges[e](nodes[j], weights[e])
                             for e, (to, j) in enumerate(EDGES) if to == i))
        return nodes[3]


class NB201SearchNetwork(DifferentiableSupernet):
    """DARTS supernet of the NAS-Bench-201 cell space (module doc).

    Args:
        C: stem / first-stage width (16 in the benchmark).
        N: search cells per stage (5 in the benchmark).
        num_classes: classifier outputs.
        partial: PC-DARTS partial-channel factor K (1 = all channels, no edge normalisation).

    ``forward``: ``[N, 3, H, W]`` (``H, W`` divisible by 4) -> logits ``[N, num_classes]``.

    Raises:
        ValueError: a non-positive ``C``/``N`` or ``C`` not divisible by ``partial``.
    """

    def __init__(self, C: int = 16, N: int = 5, num_classes: int = 10, partial: int = 1):
        super().__init__()
        if C <= 0 or N <= 0 or partial <= 0:
            raise ValueError(f"C, N and partial must be positive, got {C}, {N}, {partial}")
        self.C, self.N, self.partial = int(C), int(N), int(partial)
        self.stem, self.layers, self.lastact, c = macro_layers(self.C, self.N, lambda ch: _SearchCell(ch, partial))
        self.classifier = nn.Linear(c, num_classes)
        self.alpha = nn.Parameter(1e-3 * torch.randn(NUM_EDGES, NUM_OPS))
        self.beta = nn.Parameter(1e-3 * torch.randn(NUM_EDGES)) if partial > 1 else None

    def arch_parameters(self) -> list[nn.Parameter]:
        """``[alpha [6, 5]]``, plus ``beta [6]`` with partial channels."""
        return [self.alpha] if self.beta is None else [self.alpha, self.beta]

    def edge_weights(self) -> torch.Tensor:
        """``[6]``: softmax of :attr:`beta` over each node's incoming edges (ones without partial channels)."""
        if self.beta is None:
            return torch.ones(NUM_EDGES, dtype=self.alpha.dtype, device=self.alpha.device)
        out = []
        for i in (1, 2, 3):
            idx = [e for e, (to, _) in enumerate(EDGES) if to == i]
            out.append(F.softmax(self.beta[idx], dim=0))
        return torch.cat(out)

    def forward(self, x):
        weights, edge_w = F.softmax(self.alpha, dim=-1), self.edge_weights()
        x = self.stem(x)
        for layer in self.layers:
            x = layer(x, weights, edge_w) if isinstance(layer, _SearchCell) else layer(x)
        x = self.lastact(x)
        return self.classifier(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))

    @torch.no_grad()
    def genotype(self) -> tuple:
        """The found cell: per edge (gene order) the argmax operation index over all 5 operations."""
        return tuple(int(i) for i in self.alpha.argmax(dim=-1).tolist())

    @torch.no_grad()
    def parameter_free_shares(self) -> dict:
        """``pfree``: mean softmax weight on the parameter-free operations (none, skip, avg pool)
        over the 6 edges; ``pfree_argmax``: their share among the found cell's 6 operations."""
        w = F.softmax(self.alpha, dim=-1)
        free = list(PARAMETER_FREE)
        return {"pfree": float(w[:, free].sum(dim=-1).mean()),
                "pfree_argmax": sum(g in PARAMETER_FREE for g in self.genotype()) / NUM_EDGES}

    def found_arch(self):
        """``(arch, extras)`` for ``tools/search.py``: the argmax cell and the softmax weights."""
        arch = self.genotype()
        extras = {"searcher": "argmax", "weights": F.softmax(self.alpha, -1).detach().cpu().tolist(),
                  **self.parameter_free_shares()}
        if self.beta is not None:
            extras["edge_weights"] = self.edge_weights().detach().cpu().tolist()
        return arch, extras
