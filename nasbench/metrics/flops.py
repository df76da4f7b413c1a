"""Counting FLOPs (multiply-accumulates) and parameters of a built network.

``count_macs`` counts what Channel-Bench-Macro and NAS-Bench-Macro count:
multiply-accumulates of ``nn.Conv2d`` and ``nn.Linear`` layers for one input
(BN, activations, pooling and bias additions are not counted). It measures
the actual modules with forward hooks, so it is an independent check of the
spaces' analytic cost models. Works on the ``meta`` device (no memory, no
compute), which makes counting thousands of networks cheap.
"""
from __future__ import annotations

import torch
import torch.nn as nn


def count_params(model: nn.Module) -> int:
    """Number of parameters (every ``nn.Parameter``, BN affine ones included)."""
    return sum(p.numel() for p in model.parameters())


def auxiliary_params(model: nn.Module) -> int:
    """Parameters of ``model.auxiliary_head`` (0 without one).

    An auxiliary head is a second classifier that only the training loss sees (DARTS' and
    NASNet's auxiliary tower, ``cnn/model.py``); by convention a network's size excludes it
    (DARTS ``utils.count_parameters_in_MB`` skips every parameter named ``auxiliary``).
    """
    head = getattr(model, "auxiliary_head", None)
    return count_params(head) if isinstance(head, nn.Module) else 0


def count_macs(model: nn.Module, input_size=(3, 32, 32), bn: bool = False, bias: bool = False) -> int:
    """MACs of conv and linear layers for one input of ``input_size`` (C, H, W).

    The model runs one forward pass on a ``[1, C, H, W]`` tensor on the
    model's device (use ``with torch.device('meta'):`` to build it for free).
    ``bn=True, bias=True`` gives thop's convention (2 ops per BatchNorm2d
    output element, one per conv/linear bias element), used by NAS-Bench-MR.
    A module that multiplies activations by activations (attention) counts its
    own products through a ``forward_macs(inputs, output) -> int`` method
    (e.g. :class:`~nasbench.ops.hytra.MHSA`).
    """
    total = 0

    def conv_hook(m, inp, out):
        nonlocal total
        k = m.kernel_size[0] * m.kernel_size[1]
        total += out.numel() * (m.in_channels // m.groups) * k
        if bias and m.bias is not None:
            total += out.numel()

    def linear_hook(m, inp, out):
        nonlocal total
        total += out.numel() * m.in_features
        if bias and m.bias is not None:
            total += out.numel()

    def bn_hook(m, inp, out):
        nonlocal total
        total += 2 * out.numel()

    def own_hook(m, inp, out):
        nonlocal total
        total += int(m.forward_macs(inp, out))

    hooks = []
    for m in model.modules():
        if callable(getattr(m, "forward_macs", None)):
            hooks.append(m.register_forward_hook(own_hook))
        if isinstance(m, nn.Conv2d):
            hooks.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            hooks.append(m.register_forward_hook(linear_hook))
        elif bn and isinstance(m, nn.BatchNorm2d):
            hooks.append(m.register_forward_hook(bn_hook))
    try:
        p = next(model.parameters(), None)
        device = p.device if p is not None else "cpu"
        was_training = model.training
        model.eval()
        with torch.no_grad():
            model(torch.empty(1, *input_size, device=device))
        model.train(was_training)
    finally:
        for h in hooks:
            h.remove()
    return int(total)
