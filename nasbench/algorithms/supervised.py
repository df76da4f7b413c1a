"""Supervised training and evaluation of a fixed network (standalone retraining).

:class:`StandardAlgorithm` is the algorithm of ``tools/retrain.py``: one
forward, cross-entropy with the run's label smoothing (plus the weighted loss of an
auxiliary head, if the network has one; against timm's mixup/cutmix soft targets when
``retrain.mixup`` / ``retrain.cutmix`` are set), one backward.
:func:`evaluate_accuracy` measures top-1 on the test set.
"""
from __future__ import annotations

import contextlib
from typing import Iterable

import torch
import torch.nn as nn

from ..engine import dist as D
from ..engine.optim import resolve_amp
from ..errors import ConfigError
from .base import Algorithm, SupervisedMixin

__all__ = ["StandardAlgorithm", "evaluate_accuracy"]


class StandardAlgorithm(SupervisedMixin, Algorithm):
    """Plain supervised training of a fixed network: one forward, criterion, backward.

    Used for standalone retraining. Stateless (empty ``state_dict``). A network with an
    auxiliary head returns ``(logits, aux_logits)`` in training mode (DARTS' evaluation
    networks, :class:`~nasbench.spaces.darts.DartsNetwork`); the loss is then
    ``CE(logits) + auxiliary_weight * CE(aux_logits)`` with ``auxiliary_weight`` from the
    training section (``retrain.auxiliary_weight``, 0.4 as DARTS' ``cnn/train.py``).
    """

    auxiliary_weight = 0.4
    mixup = None

    def __init__(self, num_classes: int | None = None):
        self.num_classes = num_classes

    def setup(self, module, train_cfg) -> None:
        """Build the criterion; read ``auxiliary_weight`` and the mixup/cutmix keys from ``train_cfg``.

        With ``mixup`` or ``cutmix`` > 0 (``retrain`` section), every batch goes through timm's
        ``Mixup`` (batch mode: one lambda per batch, cutmix instead of mixup with
        ``mixup_switch_prob``, applied with ``mixup_prob``; DeiT's recipe) and the loss is the
        cross-entropy against its soft targets, which carry the label smoothing. Its random
        draws come from numpy's global generator, which checkpoints save, so a resumed run
        mixes exactly as an uninterrupted one.

        Raises:
            ConfigError: mixup or cutmix without ``num_classes``.
        """
        super().setup(module, train_cfg)
        get = train_cfg.get if train_cfg is not None else (lambda k, d=None: d)
        if get("auxiliary_weight") is not None:
            self.auxiliary_weight = float(get("auxiliary_weight"))
        mix, cut = float(get("mixup") or 0.0), float(get("cutmix") or 0.0)
        if mix > 0 or cut > 0:
            from timm.data import Mixup
            from timm.loss import SoftTargetCrossEntropy
            if not self.num_classes:
                raise ConfigError("retrain.mixup / retrain.cutmix need the number of classes (data.num_classes)")
            prob = get("mixup_prob")
            switch = get("mixup_switch_prob")
            self.mixup = Mixup(mixup_alpha=mix, cutmix_alpha=cut, prob=1.0 if prob is None else float(prob),
                               switch_prob=0.5 if switch is None else float(switch), mode="batch",
                               label_smoothing=float(get("label_smoothing") or 0.0), num_classes=int(self.num_classes))
            self.criterion = SoftTargetCrossEntropy()

    def train_step(self, ctx, batch) -> dict:
        """``batch`` = (images float [b, 3, H, W], targets int64 [b]) -> ``{'loss': 0-dim tensor, 'top1': %}``
        (+ ``aux_loss`` when the network returns auxiliary logits). With mixup/cutmix the
        images are mixed and the loss is taken against soft targets ``[b, num_classes]``;
        ``top1`` is then against the unmixed labels."""
        images, targets = batch
        labels = targets
        if self.mixup is not None:
            images, targets = self.mixup(images, targets)
        out = {}
        with ctx.autocast():
            logits = ctx.model(images)
            if isinstance(logits, (tuple, list)):
                logits, aux = logits
                aux_loss = self.criterion(aux, targets)
                out["aux_loss"] = aux_loss.detach()
                loss = self.criterion(logits, targets) + self.auxiliary_weight * aux_loss
            else:
                loss = self.criterion(logits, targets)
        ctx.backward(loss)
        with torch.no_grad():
            top1 = (logits.argmax(1) == labels).float().mean() * 100.0
        return {"loss": loss.detach(), "top1": top1, **out}

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, d: dict) -> None:
        pass


@torch.no_grad()
def evaluate_accuracy(model: nn.Module, loader: Iterable, device: torch.device | str,
                      amp: str = "none") -> dict:
    """Top-1 accuracy (percent) and mean cross-entropy of ``model`` over ``loader``.

    ``loader`` is either a nasbench loader (``loader.epoch(0)`` is iterated) or any
    iterable of ``(images [b,3,H,W], targets int64 [b])``. Sums are all-reduced
    over ranks when distributed, so each rank must see its own shard. The model is
    put in eval mode and its previous mode restored.

    Returns:
        ``{'top1': float %, 'loss': float, 'n': int images}``.
    """
    device = torch.device(device)
    dtype = resolve_amp(amp, device)
    was_training = model.training
    model.eval()
    sums = torch.zeros(3, dtype=torch.float64, device=device)  # correct, loss sum, count
    batches = loader.epoch(0) if hasattr(loader, "epoch") else loader
    try:
        for images, targets in batches:
            images = images.to(device, non_blocking=True)
            targets = targets.to(device, non_blocking=True)
            ctx = (torch.autocast(device_type=device.type, dtype=dtype) if dtype
                   else contextlib.nullcontext())
            with ctx:
                logits = model(images)
            logits = logits.float()
            sums[0] += (logits.argmax(1) == targets).sum()
            sums[1] += nn.functional.cross_entropy(logits, targets, reduction="sum")
            sums[2] += targets.numel()
    finally:
        model.train(was_training)
    sums = D.all_reduce_sum(sums)
    n = max(sums[2].item(), 1.0)
    return {"top1": 100.0 * sums[0].item() / n, "loss": sums[1].item() / n, "n": int(sums[2].item())}
