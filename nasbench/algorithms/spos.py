"""SPOS: single-path one-shot supernet training with uniform sampling.

Guo et al., "Single Path One-Shot Neural Architecture Search with Uniform
Sampling" (arXiv 1904.00420), section 3.2: at every step one operator per
layer is drawn uniformly and only that path is trained (all its weights).
The draw comes from the algorithm's generator, seeded identically on every
rank, so all processes train the same path without communication. A subnet
is scored by BN recalibration + validation accuracy (the width-search
evaluator, :class:`~nasbench.evaluators.accuracy.SupernetEvaluator`).
"""
from __future__ import annotations

from ..registry import ALGORITHMS
from .base import SupernetAlgorithm


@ALGORITHMS.register("spos")
class SPOS(SupernetAlgorithm):
    """One uniform random path per step on an operator-choice supernet.

    ``find_unused_parameters``: the inactive candidates get no gradient, so
    DDP must look for unused parameters.
    """

    eval_sides = ("left",)
    find_unused_parameters = True

    def __init__(self, space, seed=0):
        if space.family != "op_choice":
            from ..errors import ConfigError
            raise ConfigError(f"algorithm spos needs an operator-choice space, got {space.name} "
                              "(for width spaces use 'uniform')")
        super().__init__(space, seed=seed)

    def paths(self):
        return [(self.sample(), "left")]
