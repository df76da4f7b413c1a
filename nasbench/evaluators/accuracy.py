"""Supernet evaluator: BN recalibration, then accuracy on the search-validation split.

For each architecture and each scored path (BCNet: left and right, METHODS.md
1.4; unilateral baselines and SPOS: one path) the evaluator activates the path, resets
the BN running statistics, forwards ``recal_batches`` training batches in train
mode with cumulative averaging (``momentum=None``), and measures top-1 accuracy
and cross-entropy on the validation batches. ``score`` is the mean top-1 over
the scored paths.

The recalibration and validation batches are materialised once, so every
architecture is judged on exactly the same images.
"""
from __future__ import annotations

import contextlib

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import ConfigError
from ..registry import EVALUATORS, Key
from .base import EvalContext, Evaluator


def _bn_modules(model):
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


@torch.no_grad()
def recalibrate_bn(model: nn.Module, batches, autocast=contextlib.nullcontext) -> None:
    """Reset BN running statistics and re-estimate them on ``batches``.

    ``batches``: iterable of image tensors ``[b, 3, H, W]`` (already on the
    model's device). Uses cumulative averaging; the model is left in eval mode.
    """
    bns = _bn_modules(model)
    saved = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    for x in batches:
        with autocast():
            model(x)
    for m, mom in zip(bns, saved):
        m.momentum = mom
    model.eval()


@torch.no_grad()
def accuracy(model: nn.Module, batches, autocast=contextlib.nullcontext) -> tuple[float, float]:
    """``(top-1 accuracy in %, mean cross-entropy)`` of ``model`` on ``(x, y)`` batches."""
    model.eval()
    correct, loss, n = 0, 0.0, 0
    for x, y in batches:
        with autocast():
            logits = model(x)
        logits = logits.float()
        loss += float(F.cross_entropy(logits, y, reduction="sum"))
        correct += int((logits.argmax(1) == y).sum())
        n += y.numel()
    return 100.0 * correct / max(n, 1), loss / max(n, 1)


@EVALUATORS.register("accuracy")
class SupernetEvaluator(Evaluator):
    """Scores architectures by BN recalibration + validation accuracy of a trained supernet.

    Args:
        supernet: the supernet (on ``device``), a
            :class:`~nasbench.supernets.width.WidthSupernet` or a
            :class:`~nasbench.supernets.choice.ChoiceSupernet` (anything with
            ``space`` and ``set_active(arch, side)``).
        recal_batches: list of image tensors ``[b, 3, H, W]`` for BN recalibration.
        val_batches: list of ``(images, targets)`` from the search-validation split.
        sides: paths to average, e.g. ``("left", "right")`` for BCNet.
        autocast: context-manager factory (e.g. bf16 autocast) or ``None``.
    ``evaluate(archs)`` returns per arch ``score`` (mean top-1 %, higher is
    better), ``acc``, ``acc_<side>``, ``loss`` (mean CE over sides), ``flops``
    (MACs) and ``params``.
    """

    KEYS = {
        "recal_batches": Key(20, "training batches to recalibrate BN statistics", int, (1, None), unit="count"),
        "recal_batch_size": Key(256, "images per BN-recalibration batch", int, (1, None), unit="images"),
        "val_batches": Key(None, "validation batches evaluated (null = the whole validation split)", int,
                           (1, None), unit="count"),
    }
    needs_data = True

    @classmethod
    def check(cls, supernet) -> None:
        """Needs a single-path supernet (``supernet.single_path``: width or operator choices)."""
        if not getattr(supernet, "single_path", False):
            raise ConfigError(f"eval.type accuracy cannot score {type(supernet).__name__}: it runs one subnet "
                              "at a time (set_active); a DARTS supernet is searched by its architecture "
                              "parameters (eval.type genotype)")

    @classmethod
    def from_config(cls, settings: dict, ctx: EvalContext) -> "SupernetEvaluator":
        """Fixed BN-recalibration batches (``recal_batches`` x ``recal_batch_size`` augmented
        training images, loader seed offset 7919) and ``val_batches`` validation batches,
        scored on the algorithm's ``eval_sides``."""
        recal = make_batches(ctx.make_loader("train", True, batch_size=settings["recal_batch_size"],
                                             seed_offset=7919),
                             settings["recal_batches"], ctx.device, with_targets=False)
        val = make_batches(ctx.make_loader("val", False), settings["val_batches"], ctx.device)
        return cls(ctx.supernet, recal, val, sides=getattr(ctx.algorithm, "eval_sides", ("left",)),
                   autocast=ctx.autocast)

    def __init__(self, supernet, recal_batches, val_batches, sides=("left",), autocast=None):
        self.supernet = supernet
        self.space = supernet.space
        self.recal_batches, self.val_batches = list(recal_batches), list(val_batches)
        self.sides = tuple(sides)
        self.autocast = autocast or contextlib.nullcontext

    def evaluate(self, archs) -> list[dict]:
        out = []
        for arch in archs:
            arch = self.space.validate(arch)
            flops, params = self.space.cost(arch)
            rec = {"flops": flops, "params": params}
            accs, losses = [], []
            for side in self.sides:
                self.supernet.set_active(arch, side)
                recalibrate_bn(self.supernet, self.recal_batches, self.autocast)
                acc, loss = accuracy(self.supernet, self.val_batches, self.autocast)
                rec[f"acc_{side}"] = acc
                accs.append(acc)
                losses.append(loss)
            rec["acc"] = rec["score"] = sum(accs) / len(accs)
            rec["loss"] = sum(losses) / len(losses)
            out.append(rec)
        return out


def make_batches(loader, num_batches, device, with_targets=True, epoch=0):
    """First ``num_batches`` batches (all if ``None``) of ``loader.epoch(epoch)`` on ``device``."""
    out = []
    for i, (x, y) in enumerate(loader.epoch(epoch)):
        if num_batches is not None and i >= num_batches:
            break
        x = x.to(device, non_blocking=True)
        out.append((x, y.to(device, non_blocking=True)) if with_targets else x)
    return out
