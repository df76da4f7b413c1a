"""BN-NAS's BN-based indicator: a data-free score of subnets of an operator-choice supernet.

METHODS.md 2.4 (BN-NAS ``search/ea.py``): the score of operator ``o`` at layer
``l`` is the mean absolute BN scale ``mean_c |gamma_{l,o,c}|`` of that
operator's last BN; the identity operator scores 0; a subnet scores the sum
over layers. No forward pass, no data and no BN recalibration are involved.
"""
from __future__ import annotations

import torch

from ..errors import ConfigError
from ..registry import EVALUATORS
from .base import EvalContext, Evaluator


@torch.no_grad()
def bn_score_table(supernet) -> list[dict]:
    """``table[l][v]``: mean |gamma| of the last BN of operator ``v`` at layer ``l``.

    The identity (``space.identity_value``) and operators without an affine
    last BN score 0.0.
    """
    ident = getattr(supernet.space, "identity_value", None)
    table = [dict() for _ in range(supernet.space.num_genes)]
    for layer, v, op in supernet.candidate_ops():
        bn = getattr(op, "last_bn", None)
        if v == ident or bn is None or bn.weight is None:
            table[layer][v] = 0.0
        else:
            table[layer][v] = float(bn.weight.detach().abs().mean())
    return table


@EVALUATORS.register("bn_indicator")
class BNIndicatorEvaluator(Evaluator):
    """Scores architectures by the summed BN indicator (higher is better).

    Args:
        supernet: a :class:`~nasbench.supernets.choice.ChoiceSupernet`. The
            score table is read once, at construction.
    ``evaluate(archs)`` returns per arch ``score`` (sum of mean |gamma|,
    dimensionless), ``flops`` (MACs) and ``params``.

    Raises:
        ArchError: an illegal architecture.
    """

    @classmethod
    def check(cls, supernet) -> None:
        """Needs an operator-choice supernet (one with ``candidate_ops()``)."""
        if not callable(getattr(supernet, "candidate_ops", None)):
            raise ConfigError(f"eval.type bn_indicator needs an operator-choice supernet, not "
                              f"{type(supernet).__name__} of {supernet.space.name}")

    @classmethod
    def from_config(cls, settings: dict, ctx: EvalContext) -> "BNIndicatorEvaluator":
        return cls(ctx.supernet)

    def __init__(self, supernet):
        self.space = supernet.space
        self.table = bn_score_table(supernet)

    def score(self, arch) -> float:
        arch = self.space.validate(arch)
        return float(sum(self.table[i][v] for i, v in enumerate(arch)))

    def evaluate(self, archs) -> list[dict]:
        out = []
        for arch in archs:
            arch = self.space.validate(arch)
            flops, params = self.space.cost(arch)
            out.append({"score": self.score(arch), "flops": flops, "params": params})
        return out
