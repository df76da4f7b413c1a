"""BN-NAS: SPOS supernet training with only the operators' last BatchNorm trained.

Chen et al., "BN-NAS: Neural Architecture Search with Batch Normalization"
(arXiv 2108.07375), section 3; METHODS.md section 2.3. Sampling is SPOS's
(one uniform path per step, identical on every rank). Before the optimizer is
built, :meth:`BNNAS.setup` freezes every parameter of the supernet and
makes trainable only the affine parameters (gamma, beta) of the *last* BN of
every candidate operator, found through the operators' ``last_bn`` module
references rather than parameter names. Convolutions, the stem, the head, the
classifier and the other BNs keep their random initialisation (BN running
statistics still update in training mode).

With ``zero_grad(set_to_none=True)`` the BNs of operators that were not on the
step's path keep ``grad = None``, so SGD skips their momentum and weight-decay
update, as the reference code does by setting zero gradients to None.
The default evaluator is the data-free BN indicator
(:class:`~nasbench.evaluators.indicator.BNIndicatorEvaluator`).
"""
from __future__ import annotations

import torch.nn as nn

from ..registry import ALGORITHMS
from .spos import SPOS


def last_bn_modules(supernet) -> list[nn.Module]:
    """The last BN of every candidate operator of an operator-choice supernet (each once).

    Includes the downsample BN of a shape-changing identity (NAS-Bench-Macro's
    stride-2 identity has one); parameter-free identities have none.
    """
    seen, out = set(), []
    for _, _, op in supernet.candidate_ops():
        bn = getattr(op, "last_bn", None)
        if bn is not None and id(bn) not in seen:
            seen.add(id(bn))
            out.append(bn)
    return out


def freeze_all_but_last_bn(supernet) -> int:
    """Set ``requires_grad`` so only the last BNs' affine parameters train; returns their count.

    Raises:
        ValueError: the supernet has no candidate with an affine ``last_bn``.
    """
    for p in supernet.parameters():
        p.requires_grad_(False)
    n = 0
    for bn in last_bn_modules(supernet):
        for p in (bn.weight, bn.bias):
            if p is not None:
                p.requires_grad_(True)
                n += p.numel()
    if n == 0:
        raise ValueError(f"{supernet.space.name}: no candidate operator has an affine last BN to train")
    return n


@ALGORITHMS.register("bnnas")
class BNNAS(SPOS):
    """SPOS sampling + BN-only training; scored by the BN indicator by default."""

    default_evaluator = "bn_indicator"

    def setup(self, model, train_cfg) -> None:
        """Build the loss and freeze ``model`` (a :class:`~nasbench.supernets.choice.ChoiceSupernet`)
        except the last BN of every candidate operator."""
        super().setup(model, train_cfg)
        self.trainable_params = freeze_all_but_last_bn(model)
