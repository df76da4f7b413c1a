"""DARTS-style search result: the architecture a differentiable supernet's parameters select.

A DARTS supernet (BNAS-v2, :class:`~nasbench.supernets.darts.BroadSearchNetwork`)
is not scored architecture by architecture: its architecture parameters
already rank every operation of every edge, and the found architecture is
their argmax under DARTS' rule (``supernet.genotype()``, METHODS.md 4.3). This
evaluator therefore answers :meth:`best_architecture` and no searcher runs.
"""
from __future__ import annotations

import torch

from ..errors import ConfigError
from ..registry import EVALUATORS
from .base import EvalContext, Evaluator

__all__ = ["GenotypeEvaluator"]


@EVALUATORS.register("genotype")
class GenotypeEvaluator(Evaluator):
    """The argmax architecture of a :class:`~nasbench.supernets.base.DifferentiableSupernet`.

    :meth:`best_architecture` returns ``(arch, extras)`` with ``extras`` =
    ``{"searcher": "argmax", "genotype": {"conv": [[op, input], ...], "enhance": ...},
    "weights": {cell: [14][8] softmax weights}, "edge_weights": {cell: [14]}}``
    (edge weights only with partial channels; the cell names are the supernet's ``cell_kinds``:
    ``conv``/``enhance`` for BNAS-v2, ``normal``/``reduce`` for DARTS' search network). A supernet with ``found_arch()``
    (:class:`~nasbench.supernets.nas_bench_201.NB201SearchNetwork`) answers itself.
    """

    def __init__(self, supernet):
        self.supernet = supernet
        self.space = supernet.space

    @classmethod
    def check(cls, supernet) -> None:
        from ..supernets.base import DifferentiableSupernet
        if not isinstance(supernet, DifferentiableSupernet):
            raise ConfigError(f"eval.type genotype needs a differentiable (DARTS) supernet, not "
                              f"{type(supernet).__name__}: other supernets are searched by an evaluator "
                              "(eval.type auto, accuracy or bn_indicator)")

    @classmethod
    def from_config(cls, settings: dict, ctx: EvalContext) -> "GenotypeEvaluator":
        return cls(ctx.supernet)

    def evaluate(self, archs):
        raise ConfigError("a DARTS supernet has no per-architecture evaluator; its architecture is the "
                          "argmax of its parameters (tools/search.py reads it)")

    @torch.no_grad()
    def best_architecture(self):
        if hasattr(self.supernet, "found_arch"):  # a supernet that reads its own encoding (NAS-Bench-201 cells)
            return self.supernet.found_arch()
        genotype = self.supernet.genotype()
        arch = self.space.from_genotype(genotype)
        kinds = tuple(getattr(self.supernet, "cell_kinds", ("conv", "enhance")))
        extras = {"searcher": "argmax",
                  "genotype": {kinds[0]: [list(e) for e in genotype.normal],
                               kinds[1]: [list(e) for e in genotype.reduce]},
                  "weights": {}, "edge_weights": {}}
        for cell in kinds:
            w, e = self.supernet.cell_weights(cell)
            extras["weights"][cell] = w.cpu().tolist()
            if e is not None:
                extras["edge_weights"][cell] = e.cpu().tolist()
        return arch, extras
